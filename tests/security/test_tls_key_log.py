"""TLS session keys never go where SSLKEYLOGFILE says: a key log lets whoever reads the file (it is made with the
user's umask, often world-readable) decrypt the traffic — patients' phone numbers to GOV.UK Notify, records from
practices. Python's ssl.create_default_context and urllib3's own context honour the variable; Mosaic's clients use
app/core/net.py's context instead. Each test makes a real TLS handshake with a server on 127.0.0.1 (the key log is
written at handshake time, whether or not the certificate is then accepted) and checks the file never appears."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import requests

from app.core import net
from app.core.config import NotifySettings
from app.core.notify.sender import notify_client
from tests.tls_server import JsonHandler, self_signed_server


class _Notify(JsonHandler):
    """Just enough of GOV.UK Notify: every POST is a 201 with an id."""

    def get_body(self) -> dict[str, object]:
        return {"notifications": [], "resourceType": "CapabilityStatement"}

    def post_body(self) -> dict[str, object]:
        return {"id": str(uuid.uuid4()), "reference": None}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with self_signed_server(_Notify, tmp_path) as found:
        yield found


@pytest.fixture
def key_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "sslkeys.log"
    path.parent.mkdir()
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    return path


API_KEY = f"test-{uuid.uuid4()}-{uuid.uuid4()}"


def _trusting(cert_file: Path) -> ssl.SSLContext:
    """A context that trusts the test server, made without ssl.create_default_context (which opens the key log)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert_file)
    return context


def test_the_test_sees_a_key_log(server: tuple[str, Path], key_log: Path) -> None:
    """The control: a plain requests session (urllib3's context) writes the keys, so an absent file below is the fix."""
    origin, cert_file = server
    with requests.Session() as session:
        assert session.get(f"{origin}/v2/notifications", verify=str(cert_file), timeout=5).status_code == 200
    assert key_log.exists()
    assert "TRAFFIC_SECRET" in key_log.read_text() or "CLIENT_RANDOM" in key_log.read_text()


def test_notify_writes_no_key_log(server: tuple[str, Path], key_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    origin, cert_file = server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))  # nor does the environment's CA bundle count
    settings = NotifySettings(rule="cross-practice", sms_template_id=str(uuid.uuid4()), base_url=origin)
    client = notify_client(settings, API_KEY)
    with pytest.raises(Exception) as refused:  # verified against the OS's trust: refused
        client.send_sms_notification("07700900123", settings.sms_template_id or "", personalisation={"a": "x"})
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.__cause__)  # the handshake was made, then refused
    assert not key_log.exists()
    adapter = client.request_session.get_adapter(origin)  # type: ignore[attr-defined]
    assert type(adapter).__name__ == "VerifiedAdapter"


def test_a_verified_notify_request_writes_no_key_log(server: tuple[str, Path], key_log: Path) -> None:
    """The whole handshake and a reply, through the same adapter given a context that trusts the server."""
    origin, cert_file = server
    settings = NotifySettings(rule="cross-practice", sms_template_id=str(uuid.uuid4()), base_url=origin)
    client = notify_client(settings, API_KEY)
    adapter = net.verified_adapter(_trusting(cert_file))
    client.request_session.mount("https://", adapter)  # type: ignore[attr-defined]
    sent = client.send_sms_notification("07700900123", settings.sms_template_id or "", personalisation={"a": "x"})
    assert sent["id"]
    assert not key_log.exists()
    with pytest.raises(requests.exceptions.SSLError):  # a request's verify=False does not weaken it
        requests_session = requests.Session()
        requests_session.mount("https://", net.verified_adapter())
        requests_session.get(f"{origin}/v2/notifications", verify=False, timeout=5)
    assert not key_log.exists()


def test_httpx_clients_write_no_key_log(server: tuple[str, Path], key_log: Path) -> None:
    """The sign-in and doctor's clients (net.async_client) and the practices' (adapters/http.py)."""
    origin, cert_file = server
    with httpx2.Client(verify=ssl.create_default_context(cafile=str(cert_file)), trust_env=False) as control:
        assert control.get(f"{origin}/metadata").status_code == 200
    assert key_log.exists()  # ssl.create_default_context honours SSLKEYLOGFILE: the control
    key_log.unlink()

    async def fetch(client: httpx2.AsyncClient) -> int:
        async with client:
            return (await client.get(f"{origin}/metadata")).status_code

    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(fetch(net.async_client(timeout=5)))
    assert asyncio.run(fetch(net.async_client(timeout=5, verify=_trusting(cert_file)))) == 200
    net.tls_context.cache_clear()
    try:
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(fetch(net.async_client(timeout=5, verify=net.tls_context())))
    finally:
        net.tls_context.cache_clear()
    assert not key_log.exists()


def test_a_context_that_logs_keys_is_refused(tmp_path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.keylog_filename = str(tmp_path / "planted.log")
    with pytest.raises(ValueError, match="key log"):
        net.async_client(verify=context)
    with pytest.raises(ValueError, match="key log"):
        net.verified_adapter(context)
    with pytest.raises(ValueError, match="always verify"):
        net.async_client(verify=False)
    mosaic = net.tls_context()
    assert mosaic.verify_mode == ssl.CERT_REQUIRED and mosaic.check_hostname and mosaic.keylog_filename is None
