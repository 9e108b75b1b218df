"""SMART Backend Services for practice connections: client credentials with a private_key_jwt client
assertion (RS384, ES384), against a demo practice's real token endpoint on loopback."""

from __future__ import annotations

import os
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import jwt
import pytest

from adapters.base import AdapterError
from adapters.fhir_r4.adapter import FhirR4Adapter
from adapters.fhir_r4.auth import JWT_BEARER, TOKEN_MARGIN_S, PrivateKeyJwtAuth, make_auth
from app.core.config import ConfigError, load_directory
from app.core.model import PatientQuery
from app.core.secrets import store_secret
from app.core.sessions import PracticeStatus, SessionManager
from app.demo.auth import ClientCredentialsAuthenticator
from app.demo.network import DemoNetwork
from tests.core.test_secrets import MemoryKeyring

PRACTICE = "hillview"  # the demo practice with a token endpoint


@pytest.fixture(scope="module")
def network() -> Iterator[DemoNetwork]:
    with DemoNetwork.start(practices=5, patients=30, smart_backend=True) as net:
        yield net


def _authenticator(network: DemoNetwork) -> ClientCredentialsAuthenticator:
    auth = network.server(PRACTICE).auth
    assert isinstance(auth, ClientCredentialsAuthenticator)
    return auth


def _key_and_practice(network: DemoNetwork, alg: str):
    practice = network.enable_smart_backend(PRACTICE, alg)
    pem = network.smart_keys[PRACTICE][0]
    return pem, practice


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_assertion_is_accepted_and_carries_the_right_claims(network: DemoNetwork, alg: str) -> None:
    pem, practice = _key_and_practice(network, alg)
    assert practice.auth == "private-key-jwt" and practice.key_alg == alg
    server_auth = _authenticator(network)
    before = len(server_auth.assertions)
    adapter = FhirR4Adapter(practice, pem)
    try:
        info = await adapter.connect()
        assert info is not None
        assert await adapter.search(PatientQuery(family="a")) is not None
    finally:
        await adapter.close()
    header, claims = server_auth.assertions[before]
    assert header["alg"] == alg and header["kid"] == practice.key_id and header["typ"] == "JWT"
    assert claims["iss"] == claims["sub"] == practice.client_id
    assert claims["aud"] == practice.token_url
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["iat"] - time.time()) < 30
    assert str(uuid.UUID(claims["jti"])) == claims["jti"]


async def test_each_assertion_has_a_new_jti_and_a_replay_is_refused(network: DemoNetwork) -> None:
    pem, practice = _key_and_practice(network, "RS384")
    auth = make_auth(practice, pem)
    assert isinstance(auth, PrivateKeyJwtAuth)
    first, second = auth.assertion(), auth.assertion()
    jtis = {jwt.decode(a, options={"verify_signature": False})["jti"] for a in (first, second)}
    assert len(jtis) == 2
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": first}
    async with httpx2.AsyncClient(trust_env=False) as client:
        assert (await client.post(practice.token_url, data=form)).status_code == 200
        replay = await client.post(practice.token_url, data=form)
        assert replay.status_code == 401 and "replayed" in replay.json()["error_description"]
        # signed by a key the practice never registered
        from cryptography.hazmat.primitives.asymmetric import rsa
        stranger = jwt.encode({"iss": practice.client_id, "sub": practice.client_id, "aud": practice.token_url,
                               "jti": str(uuid.uuid4()), "exp": int(time.time()) + 300},
                              rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS384",
                              headers={"kid": practice.key_id})
        forged = await client.post(practice.token_url, data=form | {"client_assertion": stranger})
        assert forged.status_code == 401
        # for another audience, or living longer than five minutes
        for claims in ({"aud": "https://elsewhere.example/token"}, {"exp": int(time.time()) + 3600}):
            body = {"iss": practice.client_id, "sub": practice.client_id, "aud": practice.token_url,
                    "jti": str(uuid.uuid4()), "exp": int(time.time()) + 300} | claims
            from cryptography.hazmat.primitives import serialization
            key = serialization.load_pem_private_key(pem.encode(), None)
            bad = jwt.encode(body, key, algorithm="RS384", headers={"kid": practice.key_id})
            assert (await client.post(practice.token_url, data=form | {"client_assertion": bad})).status_code == 401


class FakeClock:
    """Monotonic seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_cached_then_renewed_without_the_user_noticing(network: DemoNetwork) -> None:
    pem, practice = _key_and_practice(network, "ES384")
    server_auth = _authenticator(network)
    clock = FakeClock()
    adapter = FhirR4Adapter(practice, pem, clock=clock)
    ttl = server_auth.token_ttl_s
    assert ttl > TOKEN_MARGIN_S + 1
    try:
        await adapter.connect()
        fetched = adapter._token_fetches()
        assert fetched == 1
        clock.now += ttl - TOKEN_MARGIN_S - 1  # a second before it is due for renewal
        await adapter.search(PatientQuery(family="a"))
        assert adapter._token_fetches() == 1  # cached
        clock.now += 1  # renewed TOKEN_MARGIN_S before the server would refuse it
        await adapter.search(PatientQuery(family="a"))
        assert adapter._token_fetches() == 2  # renewed before it ran out, silently
        server_auth.expire_tokens()  # the server forgets it early: a 401, one renewal, the same answer
        await adapter.search(PatientQuery(family="a"))
        assert adapter._token_fetches() == 3
    finally:
        await adapter.close()
    assert adapter._token_fetches() == 0  # closed (signed out): no token kept


def _write_key(path: Path, pem: str, mode: int) -> Path:
    path.write_text(pem, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
async def test_key_file_readable_by_group_or_others_is_refused(network: DemoNetwork, tmp_path: Path) -> None:
    pem, practice = _key_and_practice(network, "RS384")
    for mode in (0o640, 0o604, 0o660):
        key_file = _write_key(tmp_path / "key.pem", pem, mode)
        with pytest.raises(AdapterError, match="can be read by other users") as info:
            make_auth(replace(practice, key_file=str(key_file)), None)
        assert "chmod 600" in str(info.value) and "BEGIN" not in str(info.value)
    key_file = _write_key(tmp_path / "key.pem", pem, 0o600)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    adapter = FhirR4Adapter(replace(practice, key_file=str(key_file)), None)
    try:
        await adapter.connect()
    finally:
        await adapter.close()


async def test_key_from_the_keyring(network: DemoNetwork, memory_keyring: MemoryKeyring) -> None:
    pem, practice = _key_and_practice(network, "RS384")
    store_secret(PRACTICE, pem)
    sessions = SessionManager([practice])
    try:
        state = await sessions.connect(PRACTICE)
        assert state.status is PracticeStatus.ONLINE, state.detail
    finally:
        await sessions.sign_out()
    memory_keyring.store.clear()
    sessions = SessionManager([practice])
    state = await sessions.connect(PRACTICE)
    assert state.status is PracticeStatus.FAILED and "no private key" in state.detail


def test_wrong_key_type_for_the_algorithm(network: DemoNetwork) -> None:
    pem, practice = _key_and_practice(network, "ES384")
    with pytest.raises(AdapterError, match="RS384"):
        make_auth(replace(practice, key_alg="RS384"), pem)
    with pytest.raises(AdapterError, match="not an unencrypted PEM") as info:
        make_auth(practice, "not a key")
    assert "not a key" not in str(info.value)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_signing_in_again_does_not_parse_the_key_again(network: DemoNetwork, alg: str) -> None:
    """A Retry or a practice coming back makes a new adapter; parsing an RSA key checks it (28 ms of CPU for
    2,048 bits, 89 ms for 3,072, holding the interpreter lock: the window froze that long), so a key is parsed
    once per process. Another key (a changed keyring entry or key file) is parsed afresh."""
    pem, practice = _key_and_practice(network, alg)
    first, again = make_auth(practice, pem), make_auth(practice, pem)
    assert isinstance(first, PrivateKeyJwtAuth) and isinstance(again, PrivateKeyJwtAuth)
    assert again._key is first._key  # noqa: SLF001 - the parsed key itself is what is kept
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    other_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS384"
                 else ec.generate_private_key(ec.SECP384R1()))
    other_pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    other = make_auth(practice, other_pem)
    assert isinstance(other, PrivateKeyJwtAuth) and other._key is not first._key  # noqa: SLF001
    assert other._key.private_numbers() == other_key.private_numbers()  # noqa: SLF001


def test_private_key_jwt_config(tmp_path: Path, mosaic_home: Path, machine_dir: Path) -> None:
    machine_dir.mkdir()
    machine = machine_dir / "practices.toml"
    machine.write_text('[[practice]]\nid = "hillview"\nname = "Hillview"\nods_code = "Y91149"\nadapter = "fhir-r4"\n'
                       'base_url = "https://fhir.example.nhs.uk/R4"\nauth = "private-key-jwt"\n'
                       'token_url = "https://fhir.example.nhs.uk/token"\nclient_id = "mosaic"\nkey_id = "k1"\n'
                       'key_alg = "ES384"\nkey_file = "/etc/mosaic/hillview.pem"\n', encoding="utf-8")
    [practice] = load_directory()
    assert (practice.auth, practice.key_id, practice.key_alg, practice.key_file) == \
        ("private-key-jwt", "k1", "ES384", "/etc/mosaic/hillview.pem")
    user = mosaic_home / "practices.toml"
    user.write_text('[[practice]]\nid = "hillview"\nkey_file = "/home/me/other.pem"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="key_file"):
        load_directory()
    mine = ('[[practice]]\nid = "mine"\nname = "Mine"\nods_code = "Y1"\nadapter = "fhir-r4"\n'
            'base_url = "https://x.example/R4"\nauth = "private-key-jwt"\ntoken_url = "https://x.example/t"\n'
            'client_id = "c"\nkey_id = "k"\nkey_file = "{}"\n')
    user.write_text(mine.format("/etc/mosaic/hillview.pem"), encoding="utf-8")  # IT's key for another server
    with pytest.raises(ConfigError, match="key file of a machine-wide practice"):
        load_directory()
    user.write_text(mine.format("/tmp/k.pem"), encoding="utf-8")  # a key of its own (the adapter checks it is 0600)
    assert [p.key_file for p in load_directory()] == ["/etc/mosaic/hillview.pem", "/tmp/k.pem"]
    machine.write_text(machine.read_text().replace('"ES384"', '"HS256"'), encoding="utf-8")
    user.unlink()
    with pytest.raises(ConfigError, match="key_alg"):
        load_directory()


def test_demo_config_names_a_private_key_file_and_no_machine_settings(tmp_path: Path) -> None:
    with DemoNetwork.start(practices=5, patients=5, smart_backend=True, identity=True) as net:
        path = net.write_config(tmp_path / "demo.toml")
        [practice] = [p for p in load_directory(path) if p.id == PRACTICE]
        assert practice.auth == "private-key-jwt" and practice.key_file
        assert stat.S_IMODE(Path(practice.key_file).stat().st_mode) == 0o600
        assert "BEGIN" not in path.read_text() and "BEGIN" not in (tmp_path / "demo.toml.env").read_text()
        # a --config file is a per-user file: the demo writes no machine-only table but [gp_connect]
        assert "[identity]" not in path.read_text() and "[notify]" not in path.read_text()
