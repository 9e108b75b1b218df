"""How the FHIR R4 adapter signs its requests: none, basic, bearer, or OAuth2 client credentials."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Mapping

import httpx

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

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {}

    def invalidate(self, used: Mapping[str, str]) -> None:
        """The server rejected the credentials in `used`; forget them so the next call fetches anew."""


class StaticAuth(Auth):
    """Basic or bearer: the same Authorization header on every request."""

    def __init__(self, authorization: str) -> None:
        self._value = authorization

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": self._value}


class ClientCredentialsAuth(Auth):
    """OAuth2 client-credentials grant, token cached until shortly before it expires.

    Concurrent requests share one token fetch (a lock), and a token rejected by several requests at
    once is only refreshed once (invalidate compares the rejected value with the current one).
    """

    refreshable = True

    def __init__(self, practice: Practice, client_id: str, secret: str) -> None:
        self._practice = practice
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

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        async with self._get_lock():
            if self._token is None or time.monotonic() >= self._expires_at:
                await self._fetch(client)
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self, used: Mapping[str, str]) -> None:
        if self._token is not None and used.get("Authorization") == f"Bearer {self._token}":
            self._token = None

    async def _fetch(self, client: httpx.AsyncClient) -> None:
        practice = self._practice
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._secret}
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
        self._expires_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_S)
        self.fetches += 1
        log.debug("practice=%s token fetched lifetime_s=%.0f", practice.id, lifetime)


def make_auth(practice: Practice, secret: str | None) -> Auth:
    """The Auth for this practice, or an AdapterError saying which setting or secret is missing."""
    kind = practice.auth
    if kind == "none":
        return Auth()
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
        return ClientCredentialsAuth(practice, client_id, secret)
    raise _config(practice, "auth", f"unknown sign-in method '{kind}' "
                  "(use none, basic, bearer or client-credentials)")


def _config(practice: Practice, key: str, message: str) -> AdapterError:
    where = practice.source or "the practice directory"
    return AdapterError(f"{practice.name}: {message}; set '{key}' for this practice in {where}.", "config")
