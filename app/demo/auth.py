"""How a demo practice checks who is calling: HTTP Basic, a static bearer token, or OAuth2 client
credentials (with its own token endpoint, which also takes SMART Backend Services `private_key_jwt`
client assertions from a client whose public key is registered)."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from app.demo.practices import PracticeSpec

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME_S = 300


@dataclass
class JwtClient:
    """A SMART backend client: its public key (by kid and alg) and the token URL it must name as aud."""

    client_id: str
    public_key: Any
    kid: str
    alg: str
    token_url: str
    seen_jti: dict[str, float] = field(default_factory=dict)  # jti -> exp (wall clock), against replay


@dataclass(frozen=True)
class Denied:
    """Why a request was refused, and the WWW-Authenticate challenge to send with the 401."""

    challenge: str
    message: str


class Authenticator:
    """Checks the Authorization header of FHIR requests."""

    kind = "none"

    def __init__(self, realm: str) -> None:
        self.realm = realm.replace('"', "'")

    def check(self, authorization: str | None) -> Denied | None:
        return None

    def challenge(self) -> str:
        return f'Basic realm="{self.realm}"'


class BasicAuthenticator(Authenticator):
    kind = "basic"

    def __init__(self, realm: str, username: str, password: str) -> None:
        super().__init__(realm)
        self.username, self.password = username, password

    def challenge(self) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'

    def check(self, authorization: str | None) -> Denied | None:
        pair = _basic_pair(authorization)
        if pair is None:
            return Denied(self.challenge(), "This server needs a username and password (HTTP Basic).")
        user_ok = hmac.compare_digest(pair[0].encode(), self.username.encode())
        password_ok = hmac.compare_digest(pair[1].encode(), self.password.encode())
        if user_ok and password_ok:
            return None
        return Denied(self.challenge(), "The username or password is not right.")


class BearerAuthenticator(Authenticator):
    """A fixed access token, as some gateways issue to a named client."""

    kind = "bearer"

    def __init__(self, realm: str, token: str) -> None:
        super().__init__(realm)
        self.token = token

    def challenge(self, error: str | None = None) -> str:
        return f'Bearer realm="{self.realm}"' + (f', error="{error}"' if error else "")

    def check(self, authorization: str | None) -> Denied | None:
        token = _bearer(authorization)
        if token is None:
            return Denied(self.challenge(), "This server needs a bearer access token.")
        if hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        return Denied(self.challenge("invalid_token"), "The access token is not valid.")


class ClientCredentialsAuthenticator(BearerAuthenticator):
    """OAuth2 client credentials: tokens from `issue`, good for `token_ttl_s` seconds."""

    kind = "client-credentials"

    def __init__(self, realm: str, client_id: str, client_secret: str, token_ttl_s: float = 300.0) -> None:
        super().__init__(realm, "")
        self.client_id, self.client_secret = client_id, client_secret
        self.token_ttl_s = token_ttl_s
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._lock = threading.Lock()
        self.issued = 0
        self.refused = 0  # requests refused for an unknown or expired token (tests of silent renewal)
        self.jwt_clients: dict[str, JwtClient] = {}
        self.assertions: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (header, claims) accepted

    def register_public_key(self, client_id: str, public_key: Any, kid: str, alg: str, token_url: str) -> None:
        """Accept `private_key_jwt` assertions signed by this key (SMART Backend Services registration)."""
        self.jwt_clients[client_id] = JwtClient(client_id, public_key, kid, alg, token_url)

    def _check_assertion(self, form: Mapping[str, str]) -> str | None:
        """None when the client assertion is good, else why not (RFC 7523 3, SMART Backend Services)."""
        import jwt

        if form.get("client_assertion_type") != JWT_BEARER:
            return "client_assertion_type must be " + JWT_BEARER
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "client_assertion is not a JWT"
        client = self.jwt_clients.get(str(unverified.get("iss")))
        if client is None:
            return "unknown client"
        if header.get("kid") != client.kid or header.get("alg") != client.alg:
            return "kid or alg does not match the registered key"
        try:
            claims = jwt.decode(assertion, client.public_key, algorithms=[client.alg], audience=client.token_url,
                                issuer=client.client_id, options={"require": ["iss", "sub", "aud", "exp", "jti"]})
        except jwt.PyJWTError as exc:
            return f"client_assertion rejected ({type(exc).__name__})"
        if claims["sub"] != client.client_id:
            return "sub must equal iss (the client id)"
        now = time.time()
        if claims["exp"] - now > ASSERTION_MAX_LIFETIME_S + 5:
            return "exp is more than five minutes ahead"
        with self._lock:
            client.seen_jti = {j: e for j, e in client.seen_jti.items() if e > now}
            if claims["jti"] in client.seen_jti:
                return "jti already used (replayed assertion)"
            client.seen_jti[claims["jti"]] = float(claims["exp"])
            self.assertions.append((header, claims))
        return None

    def check(self, authorization: str | None) -> Denied | None:
        token = _bearer(authorization)
        if token is None:
            return Denied(self.challenge(), "This server needs a bearer access token from its token endpoint.")
        with self._lock:
            expiry = self._tokens.get(token)
            known, expired = expiry is not None, expiry is not None and time.monotonic() >= expiry
            if not known or expired:
                self.refused += 1
        if not known:
            return Denied(self.challenge("invalid_token"), "The access token is not known here.")
        if expired:
            return Denied(self.challenge("invalid_token"), "The access token has expired.")
        return None

    def issue(self, form_body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, object], dict[str, str]]:
        """The token endpoint: (status, JSON body, extra headers) per RFC 6749 section 4.4."""
        form = dict(parse_qsl(form_body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Only grant_type=client_credentials is supported."}, {}
        if "client_assertion" in form or "client_assertion_type" in form:
            problem = self._check_assertion(form)
            if problem is not None:
                return 401, {"error": "invalid_client", "error_description": problem}, {}
            return self._token_reply(form)
        pair = _basic_pair(headers.get("authorization"), form_encoded=True)
        client_id, secret = pair if pair else (form.get("client_id", ""), form.get("client_secret", ""))
        if not (hmac.compare_digest(client_id.encode(), self.client_id.encode())
                and hmac.compare_digest(secret.encode(), self.client_secret.encode())):
            extra = {"WWW-Authenticate": f'Basic realm="{self.realm}"'} if pair else {}
            return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret."}, extra
        return self._token_reply(form)

    def _token_reply(self, form: Mapping[str, str]) -> tuple[int, dict[str, object], dict[str, str]]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + self.token_ttl_s
            self.issued += 1
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer",
                                   "expires_in": int(self.token_ttl_s)}
        if form.get("scope"):
            body["scope"] = form["scope"]
        return 200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def expire_tokens(self) -> None:
        """Make every issued token expired now (tests of token renewal)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)


def authenticator_for(spec: PracticeSpec, secret: str) -> Authenticator:
    if spec.auth == "basic":
        return BasicAuthenticator(spec.name, spec.username or "", secret)
    if spec.auth == "bearer":
        return BearerAuthenticator(spec.name, secret)
    if spec.auth == "client-credentials":
        return ClientCredentialsAuthenticator(spec.name, spec.client_id or "", secret)
    return Authenticator(spec.name)


def _basic_pair(authorization: str | None, *, form_encoded: bool = False) -> tuple[str, str] | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    if form_encoded:  # RFC 6749 2.3.1: OAuth client credentials are form-urlencoded inside Basic
        return unquote_plus(user), unquote_plus(password)
    return user, password


def _bearer(authorization: str | None) -> str | None:
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None
