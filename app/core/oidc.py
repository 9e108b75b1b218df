"""OpenID Connect for a native app (RFC 8252): authorization code + PKCE (RFC 7636, S256) in the system
browser, with a one-shot loopback redirect listener on 127.0.0.1 and an ephemeral port.

The protocol pieces live here; app/core/identity.py puts them together into a sign-in. Nothing in this
module logs a token, an authorization code or a code verifier.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx2
import jwt

from app.core.text import clean_text

log = logging.getLogger("mosaic.identity")

#: how long the browser may take to come back, before sign-in gives up
DEFAULT_REDIRECT_TIMEOUT_S = 300.0
#: clock skew allowed when checking exp / iat / nbf
CLOCK_LEEWAY_S = 60
#: ID token algorithms accepted (never "none", never HMAC with a public client)
ID_TOKEN_ALGORITHMS = ("RS256",)

_DONE_PAGE = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Mosaic</title></head>"
              "<body><h1>{title}</h1><p>{text}</p></body></html>")


class OidcError(Exception):
    """Sign-in failed; the message says what happened and what to do, and carries no secret (nor a control or
    bidi character the sign-in service put in what it quotes: app/core/text.py)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(clean_text(message))


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None


@dataclass(frozen=True)
class Pkce:
    verifier: str = ""
    challenge: str = ""
    method: str = "S256"

    @classmethod
    def generate(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)[:96]  # 43-128 characters of [A-Za-z0-9-._~]
        return cls(verifier, s256(verifier))

    def __repr__(self) -> str:  # never show the verifier
        return f"Pkce(method={self.method!r})"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _https_or_loopback(url: object, what: str) -> str:
    if not isinstance(url, str) or not url:
        raise OidcError(f"The sign-in service's discovery document has no {what}. Tell your IT support.")
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise OidcError(f"The sign-in service's {what} ({parts.hostname}) is not https. Tell your IT support.")
    return url


async def discover(client: httpx2.AsyncClient, issuer: str) -> ProviderMetadata:
    """`{issuer}/.well-known/openid-configuration`, checked: the issuer must be the one configured."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise OidcError(f"The sign-in service at {urlsplit(issuer).hostname} did not answer "
                        f"({type(exc).__name__}). Check the network, then try again.") from exc
    if response.status_code != 200:
        raise OidcError(f"The sign-in service at {urlsplit(issuer).hostname} answered HTTP "
                        f"{response.status_code} for its discovery document. Tell your IT support.")
    try:
        doc = response.json()
    except ValueError as exc:
        raise OidcError("The sign-in service's discovery document is not JSON. Tell your IT support.") from exc
    if not isinstance(doc, dict) or doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise OidcError("The sign-in service's discovery document names a different issuer than the one "
                        "configured. Tell your IT support.")
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise OidcError("The sign-in service does not support PKCE with S256. Tell your IT support.")
    userinfo = doc.get("userinfo_endpoint")
    return ProviderMetadata(
        issuer=doc["issuer"],
        authorization_endpoint=_https_or_loopback(doc.get("authorization_endpoint"), "authorization endpoint"),
        token_endpoint=_https_or_loopback(doc.get("token_endpoint"), "token endpoint"),
        jwks_uri=_https_or_loopback(doc.get("jwks_uri"), "key set (jwks_uri)"),
        userinfo_endpoint=_https_or_loopback(userinfo, "userinfo endpoint") if userinfo else None,
        end_session_endpoint=doc.get("end_session_endpoint") if isinstance(doc.get("end_session_endpoint"), str)
        else None,
    )


def authorization_url(meta: ProviderMetadata, *, client_id: str, redirect_uri: str, scopes: tuple[str, ...],
                      state: str, nonce: str, pkce: Pkce) -> str:
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": " ".join(scopes), "state": state, "nonce": nonce,
        "code_challenge": pkce.challenge, "code_challenge_method": pkce.method,
    })
    sep = "&" if urlsplit(meta.authorization_endpoint).query else "?"
    return f"{meta.authorization_endpoint}{sep}{query}"


# --- the loopback redirect -----------------------------------------------------------------------------


class LoopbackRedirect:
    """A one-shot HTTP listener on 127.0.0.1 (ephemeral port) for the browser's redirect.

    Only `GET /callback` with the expected `state` ends the wait; anything else gets 404/400 and the wait
    goes on (a stray request or a forged callback must not end a genuine sign-in). Use as:

        async with LoopbackRedirect(state) as redirect:
            ... open redirect.redirect_uri in the browser ...
            params = await redirect.wait(timeout_s)
    """

    path = "/callback"

    def __init__(self, state: str) -> None:
        self._state = state
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None
        self.port = 0
        self.rejected = 0  # callbacks refused (wrong state, wrong path): tests and diagnostics

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def __aenter__(self) -> LoopbackRedirect:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, host="127.0.0.1", port=0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._result is not None and not self._result.done():
            self._result.cancel()

    async def wait(self, timeout_s: float = DEFAULT_REDIRECT_TIMEOUT_S) -> dict[str, str]:
        assert self._result is not None, "use `async with`"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout_s)
        except TimeoutError:
            raise OidcError(f"Sign-in was not completed in the browser within {timeout_s:.0f} seconds. "
                            "Try again.") from None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            while True:  # headers: read and ignore, up to a limit
                line = await asyncio.wait_for(reader.readline(), 10)
                if line in (b"\r\n", b"\n", b""):
                    break
            status, page = self._answer(request_line.decode("latin-1"))
            body = page.encode("utf-8")
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                         f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\n\r\n".encode("ascii") + body)
            await writer.drain()
        except (TimeoutError, OSError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _answer(self, request_line: str) -> tuple[str, str]:
        parts = request_line.split()
        if len(parts) != 3 or parts[0] != "GET":
            self.rejected += 1
            return "405 Method Not Allowed", _page("Not here", "This address only takes Mosaic's sign-in.")
        target = urlsplit(parts[1])
        if target.path != self.path:
            return "404 Not Found", _page("Not here", "This address only takes Mosaic's sign-in.")
        params = dict(parse_qsl(target.query, keep_blank_values=True))
        if not secrets.compare_digest(params.get("state", "").encode(), self._state.encode()):
            self.rejected += 1
            log.warning("sign-in redirect with a wrong or missing state refused")
            return "400 Bad Request", _page("Sign-in not accepted",
                                            "This sign-in did not come from the request Mosaic made.")
        assert self._result is not None
        if self._result.done():
            return "400 Bad Request", _page("Already done", "This sign-in was already received.")
        self._result.set_result(params)
        if "error" in params:
            return "200 OK", _page("Sign-in did not finish", "You can close this window and return to Mosaic.")
        return "200 OK", _page("Signed in to Mosaic", "You can close this window and return to Mosaic.")


def _page(title: str, text: str) -> str:
    return _DONE_PAGE.format(title=html.escape(title), text=html.escape(text))


# --- the token endpoint and the ID token ----------------------------------------------------------------


async def exchange_code(client: httpx2.AsyncClient, meta: ProviderMetadata, *, client_id: str, code: str,
                        redirect_uri: str, verifier: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "code_verifier": verifier}
    try:
        response = await client.post(meta.token_endpoint, data=form, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise OidcError(f"The sign-in service's token endpoint did not answer ({type(exc).__name__}). "
                        "Try again.") from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        said = f" ({error})" if isinstance(error, str) else ""
        raise OidcError(f"The sign-in service refused to complete sign-in: HTTP {response.status_code}{said}. "
                        "Try again; if it keeps happening, tell your IT support.")
    if not isinstance(data.get("id_token"), str) or not isinstance(data.get("access_token"), str):
        raise OidcError("The sign-in service answered without an ID token. Tell your IT support.")
    return data


async def fetch_jwks(client: httpx2.AsyncClient, meta: ProviderMetadata) -> jwt.PyJWKSet:
    try:
        response = await client.get(meta.jwks_uri, headers={"Accept": "application/json"})
        response.raise_for_status()
        return jwt.PyJWKSet.from_dict(response.json())
    except (httpx2.HTTPError, ValueError, jwt.PyJWTError) as exc:
        raise OidcError("The sign-in service's signing keys could not be read. Tell your IT support.") from exc


async def refresh_tokens(client: httpx2.AsyncClient, meta: ProviderMetadata, *, client_id: str,
                         refresh_token: str) -> dict[str, Any]:
    """The refresh_token grant (RFC 6749 6): new tokens without the browser. RefreshRefused when the
    provider says no (the refresh token expired or was revoked: the user must sign in again); OidcError
    when it could not be asked (worth trying again)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    try:
        response = await client.post(meta.token_endpoint, data=form, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise OidcError(f"The sign-in service did not answer ({type(exc).__name__}); Mosaic will try again.") \
            from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code in (400, 401):
        error = data.get("error") if isinstance(data, dict) else None
        said = f" ({error})" if isinstance(error, str) else ""
        raise RefreshRefused(f"The sign-in service ended your session{said}. Sign in again to carry on.")
    if response.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise OidcError(f"The sign-in service could not renew your sign-in (HTTP {response.status_code}); "
                        "Mosaic will try again.")
    return data


class RefreshRefused(OidcError):
    """The provider refused to renew the sign-in: only signing in again helps."""


def validate_id_token(id_token: str, jwks: jwt.PyJWKSet, *, issuer: str, client_id: str,
                      nonce: str, nonce_required: bool = True) -> dict[str, Any]:
    """The ID token's claims, once signature (RS256, by the provider's key), iss, aud, exp, iat and nonce
    all check out (OpenID Connect Core 3.1.3.7). A token from a refresh (`nonce_required=False`) may leave
    the nonce out; if it has one, it must be the sign-in's (12.2)."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise OidcError("The sign-in service sent an ID token that is not a JWT.") from exc
    if header.get("alg") not in ID_TOKEN_ALGORITHMS:
        raise OidcError(f"The ID token is signed with {header.get('alg')!r}, which Mosaic does not accept.")
    kid = header.get("kid")
    keys = [k for k in jwks.keys if kid is None or k.key_id == kid]
    if not keys:
        raise OidcError("The ID token was signed with a key the sign-in service does not publish.")
    try:
        claims = jwt.decode(id_token, keys[0], algorithms=list(ID_TOKEN_ALGORITHMS), audience=client_id,
                            issuer=issuer, leeway=CLOCK_LEEWAY_S,
                            options={"require": ["iss", "sub", "aud", "exp", "iat"]})
    except jwt.ExpiredSignatureError as exc:
        raise OidcError("The ID token has expired (is this computer's clock right?). Sign in again.") from exc
    except jwt.InvalidAudienceError as exc:
        raise OidcError("The ID token was issued for another application.") from exc
    except jwt.InvalidIssuerError as exc:
        raise OidcError("The ID token was issued by another sign-in service.") from exc
    except jwt.InvalidSignatureError as exc:
        raise OidcError("The ID token's signature does not verify: it was altered or forged.") from exc
    except jwt.PyJWTError as exc:
        raise OidcError(f"The ID token is not valid ({type(exc).__name__}).") from exc
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise OidcError("The ID token was issued for another application (azp).")
    token_nonce = claims.get("nonce")
    if token_nonce is None and not nonce_required:
        return _clean_claims(claims)
    if not isinstance(token_nonce, str) or not secrets.compare_digest(token_nonce.encode(), nonce.encode()):
        raise OidcError("The ID token does not answer this sign-in (nonce mismatch): it may be replayed.")
    return _clean_claims(claims)


def _clean_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The claims with control and bidi characters taken out of their text (a name reaches the window's
    status bar, the terminal and the journal)."""
    return {key: clean_text(value) if isinstance(value, str) else value for key, value in claims.items()}


async def fetch_userinfo(client: httpx2.AsyncClient, meta: ProviderMetadata, access_token: str) -> dict[str, Any]:
    assert meta.userinfo_endpoint is not None
    try:
        response = await client.get(meta.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                                     "Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise OidcError("The sign-in service's user details could not be read. Try again.") from exc
    if not isinstance(data, dict):
        raise OidcError("The sign-in service's user details are not a JSON object.")
    return _clean_claims(data)
