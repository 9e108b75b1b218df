"""Class 13: the central store accepted sslmode=disable to a remote host.

A central audit store on another machine is reached only with sslmode=verify-full (TLS, certificate checked
against the server's name); a URL that says otherwise is refused with a config error, and nothing outside
the URL (PGHOSTADDR, PGSSLMODE in the environment) can redirect the connection or drop TLS. Proved with a
real TCP listener on this machine's non-loopback address that records what a client sends first.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from app.core.audit.central import CentralStore, CentralStoreError, open_central

SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # what libpq sends first when it will only talk TLS


def non_loopback_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


class FirstBytes:
    """A TCP server that records the first 8 bytes each client sends, answers 'N' (no TLS here), and closes."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while len(data) < 8:
                    chunk = conn.recv(8 - len(data))
                    if not chunk:
                        break
                    data += chunk
                self.seen.append(data)
                if data == SSL_REQUEST:
                    conn.sendall(b"N")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def remote_server() -> Iterator[FirstBytes]:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand in for another machine")
    server = FirstBytes(address)
    yield server
    server.close()


def insert_something(store: CentralStore) -> None:
    with store._engine.connect():
        pass


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://ws@audit.example.nhs.uk/audit?sslmode=disable",
    "postgresql+psycopg://ws@audit.example.nhs.uk/audit?sslmode=prefer",
    "postgresql+psycopg://ws@audit.example.nhs.uk/audit?sslmode=require",
    "postgresql+psycopg://ws@audit.example.nhs.uk/audit?sslmode=verify-ca",
    "postgresql+psycopg://ws@10.1.2.3:5432/audit?sslmode=allow",
    "postgresql+psycopg://ws@localhost/audit?hostaddr=10.1.2.3&sslmode=disable",
    "postgresql+psycopg://ws@/audit?host=audit.example.nhs.uk&sslmode=disable",
    "postgresql+psycopg://ws@127.0.0.1,audit.example.nhs.uk/audit?sslmode=disable",
])
def test_a_remote_store_without_verified_tls_is_a_config_error(url: str) -> None:
    with pytest.raises(CentralStoreError, match="verify-full"):
        open_central(url)
    with pytest.raises(CentralStoreError, match="verify-full"):
        CentralStore(url)


@pytest.mark.parametrize("url", ["postgresql+psycopg://ws@/audit", "postgresql+psycopg://ws@/audit?service=pcn"])
def test_a_store_whose_server_comes_from_outside_the_url_is_refused(url: str) -> None:
    with pytest.raises(CentralStoreError):
        CentralStore(url)


def test_without_sslmode_a_remote_store_gets_tls_or_nothing(remote_server: FirstBytes,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "disable")  # the environment may not drop TLS either
    store = CentralStore(f"postgresql+psycopg://ws@{remote_server.host}:{remote_server.port}/audit",
                         connect_timeout_s=5)
    try:
        with pytest.raises(OperationalError, match="(?i)ssl"):
            insert_something(store)
    finally:
        store.close()
    assert remote_server.seen and all(first == SSL_REQUEST for first in remote_server.seen), remote_server.seen


def test_the_environment_cannot_send_a_local_store_elsewhere(remote_server: FirstBytes,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOSTADDR", remote_server.host)  # libpq would connect here instead of 127.0.0.1
    monkeypatch.setenv("PGPORT", str(remote_server.port))
    store = CentralStore("postgresql+psycopg://postgres@127.0.0.1/test", connect_timeout_s=2)
    try:
        with pytest.raises(OperationalError):  # nothing listens on 127.0.0.1 at that port
            insert_something(store)
    finally:
        store.close()
    assert remote_server.seen == [], "the connection went where the environment said"
