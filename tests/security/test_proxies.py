"""Class 9: proxies from the environment.

HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (either case), with NO_PROXY cleared, name a real loopback "proxy"
that records every connection. Practice traffic (FHIR R4 with basic, bearer and SMART token endpoints, GP
Connect), the sign-in (OIDC discovery, token, JWKS, renewal) and GOV.UK Notify deliveries must all reach
their own servers and never the proxy. Every client is made by app/core/net.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.core.config import NotifySettings
from app.core.identity import Identity
from app.core.model import PatientQuery
from app.core.notify.sender import notify_client
from app.core.service import MosaicCore
from app.core.sessions import PracticeStatus
from app.demo.notify_server import DemoNotify
from app.demo.oidc_provider import DemoOidcProvider, demo_browser

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class RecordingProxy:
    """A TCP listener on 127.0.0.1 that stands in for a proxy: records each connection's first line and
    answers 502, so a client that used it fails and the test can say so."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    first = "(no request line)"
                self.seen.append(first)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, server.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.close()


async def test_practice_traffic_never_goes_through_an_environment_proxy(network, proxy: RecordingProxy) -> None:
    core = MosaicCore(network.practices)
    try:
        states = await core.sign_in()
        holder = next((p for p in network.practices if p.adapter == "gp-connect"), network.practices[0])
        wanted = next(p.nhs_number for p in network.server(holder.id).population if p.nhs_number)
        outcome = await core.search(PatientQuery(nhs_number=wanted))  # every practice, GP Connect included
    finally:
        await core.close()
    assert proxy.seen == [], f"practice traffic went to the proxy: {proxy.seen}"
    assert [s.status for s in states] == [PracticeStatus.ONLINE] * len(network.practices), \
        [(s.practice.id, s.detail) for s in states]
    assert any(r.patients for r in outcome.results)


async def test_the_sign_in_never_goes_through_an_environment_proxy(proxy: RecordingProxy) -> None:
    provider = DemoOidcProvider.start()
    try:
        identity = Identity(provider.settings, open_url=demo_browser)
        user = await identity.sign_in()
        await identity.renew()
    finally:
        provider.stop()
    assert user.subject
    assert proxy.seen == [], f"the sign-in went to the proxy: {proxy.seen}"


def test_notify_deliveries_never_go_through_an_environment_proxy(proxy: RecordingProxy) -> None:
    with DemoNotify() as notify:
        template = notify.add_template("((accesses))")
        settings = NotifySettings(rule="cross-practice", sms_template_id=template, base_url=notify.base_url)
        client = notify_client(settings, notify.api_key)
        client.send_sms_notification("07700900123", template, personalisation={"accesses": "x"})
    assert proxy.seen == [], f"a digest went to the proxy: {proxy.seen}"
