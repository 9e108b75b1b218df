"""TLS trust never comes from the environment: SSL_CERT_FILE and SSL_CERT_DIR are the user's (or malware's) to
set, and honoured they would let a certificate of their choosing stand in for a practice's server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from adapters.http import HttpError, fetch_json, make_client
from app.core import net
from app.core.model import Practice
from tests.tls_server import JsonHandler, self_signed_server


class _Metadata(JsonHandler):
    def get_body(self) -> dict[str, object]:
        return {"resourceType": "CapabilityStatement"}


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A practice server on 127.0.0.1 whose certificate no trusted CA signed; yields its URL and certificate."""
    with self_signed_server(_Metadata, tmp_path) as (origin, cert_file):
        yield f"{origin}/fhir", cert_file


@pytest.fixture
def fresh_tls_context() -> Iterator[None]:
    net.tls_context.cache_clear()  # built once per process: build it under this test's environment
    yield
    net.tls_context.cache_clear()


def _practice(base: str) -> Practice:
    return Practice(id="tls-practice", name="TLS Surgery", ods_code="X00002", adapter="fhir-r4", base_url=base,
                    timeout_s=5.0)


async def _metadata(practice: Practice) -> object:
    client = make_client(practice)
    try:
        return (await fetch_json(client, practice, "GET", f"{practice.base_url}/metadata")).data
    finally:
        await client.aclose()


def test_a_certificate_the_environment_trusts_is_still_refused(
        tls_server: tuple[str, Path], fresh_tls_context: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """SSL_CERT_FILE here; SSL_CERT_DIR goes with it (the same trust_env=False in adapters/http.py)."""
    base, cert_file = tls_server
    # the control: a context that does trust this certificate reaches the server, so a refusal below is the trust
    with httpx2.Client(verify=ssl.create_default_context(cafile=str(cert_file)), trust_env=False) as client:
        assert client.get(f"{base}/metadata").json() == {"resourceType": "CapabilityStatement"}
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with pytest.raises(HttpError) as refused:
        asyncio.run(_metadata(_practice(base)))
    assert "certificate" in str(refused.value).lower()
