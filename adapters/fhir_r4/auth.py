"""How the FHIR R4 adapter signs its requests: none, basic, bearer, OAuth2 client credentials, or SMART
Backend Services (client credentials with a private_key_jwt client assertion)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import stat
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2

from adapters.base import AdapterError
from adapters.http import HttpError, fetch_json
from app.core.model import Practice
from app.core.secrets import env_name

log = logging.getLogger("mosaic.adapters.fhir_r4")

#: a cached token is renewed this many seconds before the server says it expires
TOKEN_MARGIN_S = 30.0
#: assumed lifetime when a token reply carries no expires_in
DEFAULT_TOKEN_LIFETIME_S = 300.0


def credentials_hint(practice: Practice) -> str:
    return (f"Run `mosaic credentials set {practice.id}` to store the right one, or set "
            f"{env_name(practice.id)} for this session.")


class Auth:
    """Adds credentials to requests. The base class sends none."""

    #: can a 401 be cured by fetching fresh credentials (and retrying once)?
    refreshable = False

    async def headers(self, client: httpx2.AsyncClient) -> dict[str, str]:
        return {}

    def invalidate(self, used: Mapping[str, str]) -> None:
        """The server rejected the credentials in `used`; forget them so the next call fetches anew."""


class StaticAuth(Auth):
    """Basic or bearer: the same Authorization header on every request."""

    def __init__(self, authorization: str) -> None:
        self._value = authorization

    async def headers(self, client: httpx2.AsyncClient) -> dict[str, str]:
        return {"Authorization": self._value}


class ClientCredentialsAuth(Auth):
    """OAuth2 client-credentials grant, token cached until shortly before it expires.

    Concurrent requests share one token fetch (a lock), and a token rejected by several requests at
    once is only refreshed once (invalidate compares the rejected value with the current one).
    """

    refreshable = True

    def __init__(self, practice: Practice, client_id: str, secret: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` (seconds, monotonic) tells when a cached token is due for renewal."""
        self._practice = practice
        self._clock = clock
        self._client_id = client_id
        self._secret = secret
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0  # how many times a token was fetched (tests and diagnostics)

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def headers(self, client: httpx2.AsyncClient) -> dict[str, str]:
        async with self._get_lock():
            if self._token is None or self._clock() >= self._expires_at:
                await self._fetch(client)
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self, used: Mapping[str, str]) -> None:
        if self._token is not None and used.get("Authorization") == f"Bearer {self._token}":
            self._token = None

    def _client_auth(self) -> dict[str, str]:
        """How this client proves who it is at the token endpoint (form fields)."""
        return {"client_id": self._client_id, "client_secret": self._secret}

    def forget(self) -> None:
        """Drop the cached token (sign-out)."""
        self._token = None
        self._expires_at = 0.0

    async def _fetch(self, client: httpx2.AsyncClient) -> None:
        practice = self._practice
        form = {"grant_type": "client_credentials", **self._client_auth()}
        if practice.scope:
            form["scope"] = practice.scope
        assert practice.token_url is not None
        try:
            reply = await fetch_json(client, practice, "POST", practice.token_url, data=form,
                                     headers={"Accept": "application/json"}, logger=log)
        except HttpError as exc:
            if exc.status in (400, 401, 403):
                said = f": {exc.detail}" if exc.detail else ""
                raise AdapterError(f"{practice.name}'s sign-in service rejected Mosaic's client id or "
                                   f"secret (HTTP {exc.status}{said}). {credentials_hint(practice)}",
                                   "auth") from exc
            raise
        data = reply.data
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise AdapterError(f"{practice.name}'s sign-in service answered without an access token. "
                               "Tell your IT support.", "auth")
        try:
            lifetime = float(data.get("expires_in", DEFAULT_TOKEN_LIFETIME_S))
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME_S
        self._token = token
        # renewed before it runs out: TOKEN_MARGIN_S early, or half-way through a token shorter than that
        margin = TOKEN_MARGIN_S if lifetime > TOKEN_MARGIN_S else lifetime / 2
        self._expires_at = self._clock() + max(0.0, lifetime - margin)
        self.fetches += 1
        log.debug("practice=%s token fetched lifetime_s=%.0f", practice.id, lifetime)


#: RFC 7523 client assertion type
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART Backend Services: an assertion may live at most five minutes
ASSERTION_LIFETIME_S = 300
KEY_ALGS = ("RS384", "ES384")


class PrivateKeyJwtAuth(ClientCredentialsAuth):
    """SMART Backend Services: client credentials with a signed JWT instead of a secret (RFC 7523,
    `private_key_jwt`). Token caching and silent renewal are ClientCredentialsAuth's."""

    def __init__(self, practice: Practice, client_id: str, private_key: Any, key_id: str, alg: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(practice, client_id, "", clock=clock)
        self._key = private_key
        self._kid = key_id
        self._alg = alg

    def __repr__(self) -> str:
        return f"PrivateKeyJwtAuth(practice={self._practice.id!r}, kid={self._kid!r}, alg={self._alg!r})"

    def assertion(self) -> str:
        """A fresh client assertion: iss = sub = client id, aud = the token URL, a new jti, 5-minute life."""
        import jwt

        now = int(time.time())
        claims = {"iss": self._client_id, "sub": self._client_id, "aud": self._practice.token_url,
                  "jti": str(uuid.uuid4()), "iat": now, "exp": now + ASSERTION_LIFETIME_S}
        return jwt.encode(claims, self._key, algorithm=self._alg, headers={"kid": self._kid, "typ": "JWT"})

    def _client_auth(self) -> dict[str, str]:
        return {"client_assertion_type": JWT_BEARER, "client_assertion": self.assertion()}


def load_private_key(practice: Practice, secret: str | None) -> Any:
    """The practice's signing key: from `key_file` (machine configuration; must be readable only by this
    user) or else the keyring / environment (`secret`, PEM text). Checked against `key_alg`."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    alg = practice.key_alg or "RS384"
    if practice.key_file:
        path = Path(practice.key_file).expanduser()
        try:
            info = path.stat()
        except OSError as exc:
            raise _config(practice, "key_file", f"the key file {path} cannot be read ({exc.strerror})") from exc
        if sys.platform != "win32":
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise AdapterError(f"{practice.name}: the key file {path} can be read by other users "
                                   f"(mode {stat.filemode(info.st_mode)}); Mosaic will not use it. Make it "
                                   f"readable only by you: chmod 600 {path}", "config")
            if info.st_uid != os.getuid():
                raise AdapterError(f"{practice.name}: the key file {path} belongs to another user; Mosaic "
                                   "uses only a key file that you own and only you can read.", "config")
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise _config(practice, "key_file", f"the key file {path} cannot be read ({exc.strerror})") from exc
    elif secret:
        pem = secret.encode("utf-8")
    else:
        raise AdapterError(f"{practice.name}: no private key is stored for this practice. "
                           f"Store the PEM with `mosaic credentials set {practice.id}` or name a key_file "
                           "in the machine-wide directory (ask IT).", "auth")
    try:
        key = _parsed_key(pem)
    except (ValueError, TypeError):
        raise AdapterError(f"{practice.name}: the stored private key is not an unencrypted PEM private key. "
                           f"{credentials_hint(practice)}", "auth") from None  # no key text in tracebacks
    if alg == "RS384" and not (isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048):
        raise AdapterError(f"{practice.name}: key_alg is RS384 but the key is not an RSA key of 2048 bits or "
                           "more.", "config")
    if alg == "ES384" and not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"):
        raise AdapterError(f"{practice.name}: key_alg is ES384 but the key is not an EC P-384 key.", "config")
    return key


_PARSED_KEYS: OrderedDict[bytes, Any] = OrderedDict()  # sha256 of the PEM -> the key it parsed to
_PARSED_KEYS_LIMIT = 16
_PARSED_KEYS_LOCK = threading.Lock()


def _parsed_key(pem: bytes) -> Any:
    """The private key in `pem`, parsed once per process. Parsing checks an RSA key's consistency: 28 ms of CPU
    for 2,048 bits and 89 ms for 3,072, holding the interpreter lock, so the window froze that long each time a
    practice on private-key JWT was signed in to again (Retry, a practice coming back; issue 9's soak). Keyed by
    the PEM's digest: a changed key file or keyring entry is parsed afresh. The parsed key lives as long as the
    process, as the secret it came from lives in the practice's adapter."""
    from cryptography.hazmat.primitives import serialization

    digest = hashlib.sha256(pem).digest()
    with _PARSED_KEYS_LOCK:
        key = _PARSED_KEYS.get(digest)
        if key is not None:
            _PARSED_KEYS.move_to_end(digest)
            return key
    key = serialization.load_pem_private_key(pem, password=None)
    with _PARSED_KEYS_LOCK:
        _PARSED_KEYS[digest] = key
        while len(_PARSED_KEYS) > _PARSED_KEYS_LIMIT:
            _PARSED_KEYS.popitem(last=False)
    return key


def make_auth(practice: Practice, secret: str | None, *, clock: Callable[[], float] = time.monotonic) -> Auth:
    """The Auth for this practice, or an AdapterError saying which setting or secret is missing. `clock`
    (monotonic seconds) times a cached token's renewal."""
    kind = practice.auth
    if kind == "none":
        return Auth()
    if kind == "private-key-jwt":
        for key in ("token_url", "client_id", "key_id"):
            if not getattr(practice, key):
                raise _config(practice, key, f"private-key-jwt sign-in needs a {key}")
        alg = practice.key_alg or "RS384"
        if alg not in KEY_ALGS:
            raise _config(practice, "key_alg", f"key_alg must be one of {', '.join(KEY_ALGS)}")
        assert practice.client_id and practice.key_id
        return PrivateKeyJwtAuth(practice, practice.client_id, load_private_key(practice, secret),
                                 practice.key_id, alg, clock=clock)
    if not secret:
        what = {"basic": "password", "bearer": "access token"}.get(kind, "client secret")
        raise AdapterError(f"{practice.name}: no {what} is stored for this practice. "
                           f"{credentials_hint(practice)}", "auth")
    if kind == "basic":
        if not practice.username:
            raise _config(practice, "username", "basic sign-in needs a username")
        raw = f"{practice.username}:{secret}".encode()
        return StaticAuth("Basic " + base64.b64encode(raw).decode("ascii"))
    if kind == "bearer":
        return StaticAuth(f"Bearer {secret}")
    if kind == "client-credentials":
        if not practice.token_url:
            raise _config(practice, "token_url", "client-credentials sign-in needs a token_url")
        client_id = practice.client_id or practice.username
        if not client_id:
            raise _config(practice, "client_id", "client-credentials sign-in needs a client_id")
        return ClientCredentialsAuth(practice, client_id, secret, clock=clock)
    raise _config(practice, "auth", f"unknown sign-in method '{kind}' "
                  "(use none, basic, bearer, client-credentials or private-key-jwt)")


def _config(practice: Practice, key: str, message: str) -> AdapterError:
    where = practice.source or "the practice directory"
    return AdapterError(f"{practice.name}: {message}; set '{key}' for this practice in {where}.", "config")
