"""A demo OpenID Connect provider on loopback, shaped like NHS CIS2: discovery, JWKS (an RS256 key made at
start), /authorize (auto-approves the demo user, no login page), /token (authorization code + PKCE S256,
and refresh_token with rotation), /userinfo. Good enough for `mosaic demo` and the tests to run the real
flow end to end, renewals included.

    with DemoOidcProvider.start() as provider:
        settings = provider.settings      # IdentitySettings(issuer=..., client_id=...)

    DemoOidcProvider.start(access_token_lifetime_s=2, refresh_token_lifetime_s=60)   # a short day, for tests
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from app.core.config import IdentitySettings

DEMO_CLIENT_ID = "mosaic-desktop"
CODE_LIFETIME_S = 60
TOKEN_LIFETIME_S = 3600
ID_TOKEN_LIFETIME_S = 3600
REFRESH_TOKEN_LIFETIME_S = 12 * 3600  # a clinical day; then the user signs in again

#: the demo clinician, with CIS2-style claims (SDS user id, role profiles)
DEMO_USER: dict[str, Any] = {
    "sub": "demo-555021935107",
    "preferred_username": "clinician1",
    "name": "Dr Asha Patel",
    "given_name": "Asha",
    "family_name": "Patel",
    "nhsid_useruid": "555021935107",
    "selected_roleid": "555021936103",
    "nhsid_nrbac_roles": [{
        "person_orgid": "555021937108", "person_roleid": "555021936103", "org_code": "Y91001",
        "role_name": '"Clinical":"Clinical Provision":"GP"', "role_code": "S0050:G0100:R0260",
    }],
}


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scope: str
    expires: float


@dataclass
class _Refresh:
    """What a refresh token stands for: the sign-in (session) it continues."""

    session: str
    client_id: str
    nonce: str | None
    scope: str
    expires: float


@dataclass
class DemoOidcProvider:
    """The provider. `id_token_overrides` changes claims of the next ID tokens (tests of rejection).

    Lifetimes (seconds) are constructor arguments, so tests can live through a day in seconds; with
    `issue_refresh_tokens=False` a sign-in simply ends when its tokens do."""

    client_id: str = DEMO_CLIENT_ID
    user: dict[str, Any] = field(default_factory=lambda: dict(DEMO_USER))
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    tamper_id_token: bool = False
    access_token_lifetime_s: float = TOKEN_LIFETIME_S
    id_token_lifetime_s: float = ID_TOKEN_LIFETIME_S
    refresh_token_lifetime_s: float = REFRESH_TOKEN_LIFETIME_S
    issue_refresh_tokens: bool = True

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "demo-" + secrets.token_hex(4)
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._sessions: set[str] = set()  # sign-ins the provider still honours
        self._lock = threading.Lock()
        self.token_errors: list[str] = []  # why /token refused, newest last (tests)
        self.issued: Counter[str] = Counter()  # grant type -> tokens issued (tests)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.provider = self
        self.port = self._httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, **kwargs: Any) -> DemoOidcProvider:
        provider = cls(**kwargs)
        provider._thread = threading.Thread(target=provider._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="demo-oidc", daemon=True)
        provider._thread.start()
        return provider

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(2)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DemoOidcProvider:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def settings(self) -> IdentitySettings:
        return IdentitySettings(issuer=self.issuer, client_id=self.client_id, scopes=("openid", "profile"))

    # -- documents ----------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo", "jwks_uri": f"{i}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "profile"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def mint_id_token(self, nonce: str | None, **overrides: Any) -> str:
        """An ID token for the demo user (tests use it directly to check validation)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": self.user["sub"], "aud": self.client_id, "iat": now, "auth_time": now,
            "exp": now + max(1, round(self.id_token_lifetime_s)),
            **{k: v for k, v in self.user.items() if k != "nhsid_nrbac_roles"},
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(overrides)
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        return token

    # -- endpoints (called from the server's threads) -----------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        # RFC 8252 7.3: a loopback redirect may use any port; only http://127.0.0.1 is registered here
        if query.get("client_id") != self.client_id or target.scheme != "http" or \
                target.hostname != "127.0.0.1" or target.path != "/callback":
            return _text(400, "Unknown client or redirect_uri not registered.")
        state = query.get("state", "")

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            return 302, {"Location": f"{redirect_uri}?{urlencode({**params, 'state': state})}"}, b""

        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if "openid" not in query.get("scope", "").split():
            return back({"error": "invalid_scope"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back({"error": "invalid_request", "error_description": "PKCE S256 required"})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(self.client_id, redirect_uri, query["code_challenge"], query.get("nonce"),
                                       query.get("scope", ""), time.monotonic() + CODE_LIFETIME_S)
        return back({"code": code})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def refuse(error: str, why: str) -> tuple[int, dict[str, Any]]:
            self.token_errors.append(why)
            return 400, {"error": error, "error_description": why}

        if form.get("grant_type") == "refresh_token":
            return self._refresh_grant(form, refuse)
        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "only authorization_code and refresh_token")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # one use only, right or wrong
        if grant is None or time.monotonic() > grant.expires:
            return refuse("invalid_grant", "unknown, used or expired code")
        if form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            return refuse("invalid_grant", "client_id or redirect_uri does not match the authorization")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not (43 <= len(verifier) <= 128) or not secrets.compare_digest(digest, grant.challenge):
            return refuse("invalid_grant", "PKCE code_verifier does not match the code_challenge")
        return 200, self._tokens("authorization_code", grant.client_id, grant.nonce, grant.scope)

    def _refresh_grant(self, form: dict[str, str], refuse: Any) -> tuple[int, dict[str, Any]]:
        """RFC 6749 6, with rotation: each refresh token works once, and its successor comes with the
        new tokens."""
        with self._lock:
            grant = self._refresh.pop(form.get("refresh_token", ""), None)
        with self._lock:
            ended = grant is not None and grant.session not in self._sessions
        if grant is None or ended or time.monotonic() > grant.expires:
            return refuse("invalid_grant", "unknown, used, revoked or expired refresh token")
        if form.get("client_id") != grant.client_id:
            return refuse("invalid_grant", "the refresh token was issued to another client")
        return 200, self._tokens("refresh_token", grant.client_id, grant.nonce, grant.scope, grant.session)

    def _tokens(self, grant_type: str, client_id: str, nonce: str | None, scope: str,
                session: str | None = None) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32) if self.issue_refresh_tokens else None
        with self._lock:
            now = time.monotonic()
            if session is None:  # a new sign-in
                session = secrets.token_urlsafe(8)
                self._sessions.add(session)
            self._access = {t: e for t, e in self._access.items() if e > now}
            self._access[access] = now + self.access_token_lifetime_s
            if refresh is not None:
                self._refresh[refresh] = _Refresh(session, client_id, nonce, scope,
                                                  now + self.refresh_token_lifetime_s)
            self.issued[grant_type] += 1
        overrides = dict(self.id_token_overrides)
        id_token = self.mint_id_token(overrides.pop("nonce", nonce), **overrides)
        if self.tamper_id_token:  # change a claim, keep the signature
            head, body, sig = id_token.split(".")
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            claims["preferred_username"] = "someone-else"
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            id_token = f"{head}.{body}.{sig}"
        reply: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                 "expires_in": self.access_token_lifetime_s, "id_token": id_token, "scope": scope}
        if refresh is not None:
            reply["refresh_token"] = refresh
        return reply

    def revoke_refresh_tokens(self) -> int:
        """End every sign-in at the provider: each refresh token of theirs is refused from now on, even one
        issued by a renewal that was under way. Returns how many sign-ins ended."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            self._refresh.clear()
        return count

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        token = authorization[7:].strip() if authorization and authorization[:7].lower() == "bearer " else ""
        with self._lock:
            expiry = self._access.get(token)
        if expiry is None or time.monotonic() > expiry:
            return 401, {"error": "invalid_token"}
        return 200, dict(self.user)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: DemoOidcProvider


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silenced: codes in query strings
        pass

    def do_GET(self) -> None:  # noqa: N802
        provider = self.server.provider
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        if split.path == "/.well-known/openid-configuration":
            self._json(200, provider.discovery())
        elif split.path == "/jwks":
            self._json(200, provider.jwks())
        elif split.path == "/authorize":
            self._send(*provider.authorize(query))
        elif split.path == "/userinfo":
            self._json(*provider.userinfo(self.headers.get("Authorization")))
        else:
            self._send(*_text(404, "Not found"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 65536)).decode("utf-8", "replace")
        if urlsplit(self.path).path == "/token":
            self._json(*self.server.provider.token(dict(parse_qsl(body, keep_blank_values=True))))
        else:
            self._send(*_text(404, "Not found"))

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, {"Content-Type": "application/json", "Cache-Control": "no-store"},
                   json.dumps(data).encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


def _text(status: int, text: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode()


def demo_browser(url: str) -> None:
    """Stands in for the system browser in `mosaic demo`: the demo provider approves the demo user
    without a login page, so "signing in" is following its redirect back to Mosaic's loopback listener.
    Runs in a thread so the caller (the core's loop) is not blocked."""
    import threading

    import httpx2

    def follow() -> None:
        with httpx2.Client(timeout=10.0, follow_redirects=False, trust_env=False) as client:
            reply = client.get(url)
            location = reply.headers.get("Location")
            if reply.is_redirect and location:
                client.get(location)

    threading.Thread(target=follow, name="demo-browser", daemon=True).start()
