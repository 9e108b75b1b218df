"""Who is using Mosaic: one OpenID Connect sign-in (NHS CIS2, or the demo provider) for every practice.

    identity = Identity(load_identity_settings())          # on the core's loop
    user = await identity.sign_in()                         # opens the system browser
    core.set_user(user.audit_user())                        # audit, policy, the GP Connect JWT
    ...
    await identity.renew()                                  # before renew_in() runs out: no browser
    identity.sign_out()                                     # forgets every token

Tokens live in memory only (never on disk, never in a log, not in repr()). Python strings cannot be
wiped, so "forgets" means no reference is kept: they go with the next garbage collection.

A sign-in lasts as long as the provider lets it: with a refresh token, `renew()` gets new tokens silently
(MosaicCore calls it before they run out); when the provider refuses (RefreshRefused) or gave no refresh
token, the sign-in has *lapsed*: the tokens are dropped, the user is remembered (so that only the same
person can carry on: `sign_in()` refuses anyone else), and `needs_sign_in` is True until `sign_in()`
succeeds again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core import child_process, net
from app.core.audit.model import AuditUser
from app.core.config import IdentitySettings
from app.core.oidc import (
    DEFAULT_REDIRECT_TIMEOUT_S,
    LoopbackRedirect,
    OidcError,
    Pkce,
    ProviderMetadata,
    RefreshRefused,
    authorization_url,
    discover,
    exchange_code,
    fetch_jwks,
    fetch_userinfo,
    refresh_tokens,
    validate_id_token,
)

log = logging.getLogger("mosaic.identity")

__all__ = ["Identity", "IdentityError", "RefreshRefused", "SignedInUser", "Tokens", "user_from_claims"]

IdentityError = OidcError
#: tokens are renewed this long before they run out (at most: a fifth of their lifetime when shorter)
RENEW_MARGIN_S = 60.0


@dataclass(frozen=True)
class Tokens:
    """What the provider issued. repr() shows none of it."""

    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0  # time.monotonic(): the access token's or the ID token's end, whichever is first
    lifetime_s: float = 0.0

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at

    @property
    def renew_at(self) -> float:
        """time.monotonic() when these tokens should be renewed."""
        return self.expires_at - min(RENEW_MARGIN_S, self.lifetime_s / 5)


@dataclass(frozen=True)
class SignedInUser:
    """The person signed in, as the provider vouched for them."""

    login: str
    display_name: str
    role: str | None
    sds_user_id: str | None
    sds_role_profile_id: str | None
    org_ods: str | None
    subject: str
    issuer: str
    tokens: Tokens | None = field(default=None, repr=False, compare=False)
    given_name: str | None = None  # for the GP Connect JWT's requesting_practitioner
    family_name: str | None = None

    def audit_user(self) -> AuditUser:
        ids = {"sds_user_id": self.sds_user_id, "sds_role_profile_id": self.sds_role_profile_id,
               "org_ods": self.org_ods}
        return AuditUser(login=self.login, display_name=self.display_name, role=self.role,
                         professional_ids={k: v for k, v in ids.items() if v})


def user_from_claims(claims: dict[str, Any], issuer: str, tokens: Tokens | None = None) -> SignedInUser:
    """Map ID token + userinfo claims (NHS CIS2 names, with plain OIDC fallbacks) to a SignedInUser.

    CIS2: `nhsid_useruid` (the SDS user id), `selected_roleid` (the role profile chosen at sign-in), and
    `nhsid_nrbac_roles` (each role profile: `person_roleid`, `org_code`, `role_name`)."""
    sub = str(claims["sub"])
    login = str(claims.get("preferred_username") or claims.get("nhsid_useruid") or sub)
    name = claims.get("name") or " ".join(str(claims[k]) for k in ("given_name", "family_name") if claims.get(k))
    role_profile = claims.get("selected_roleid")
    role = org = None
    roles = claims.get("nhsid_nrbac_roles")
    if isinstance(roles, list):
        chosen = [r for r in roles if isinstance(r, dict) and role_profile and r.get("person_roleid") == role_profile]
        if not chosen and len(roles) == 1 and isinstance(roles[0], dict):
            chosen = roles
        if chosen:
            role_profile = role_profile or chosen[0].get("person_roleid")
            org = chosen[0].get("org_code")
            role_name = chosen[0].get("role_name")
            if isinstance(role_name, str):  # '"Clinical":"Clinical Provision":"General Medical Practitioner"'
                role = role_name.split(":")[-1].strip().strip('"') or None
    return SignedInUser(
        login=login, display_name=str(name or login), role=role or _str(claims.get("role")),
        sds_user_id=_str(claims.get("nhsid_useruid") or claims.get("uid")),
        sds_role_profile_id=_str(role_profile), org_ods=_str(org or claims.get("org_code")),
        subject=sub, issuer=issuer, tokens=tokens,
        given_name=_str(claims.get("given_name")), family_name=_str(claims.get("family_name")),
    )


def _str(value: object) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


class Identity:
    """Signs the user in and out. Lives on the core's asyncio loop."""

    def __init__(self, settings: IdentitySettings, *, open_url: Callable[[str], object] | None = None,
                 redirect_timeout_s: float = DEFAULT_REDIRECT_TIMEOUT_S, use_userinfo: bool = True) -> None:
        if not settings.configured:
            raise IdentityError("No sign-in service is configured: IT sets [identity] issuer and client_id "
                                "in the machine-wide practice directory.")
        self.settings = settings
        self._open_url = open_url or child_process.open_in_browser  # a scrubbed environment
        self._timeout = redirect_timeout_s
        self._use_userinfo = use_userinfo
        self._meta: ProviderMetadata | None = None
        self._nonce: str | None = None  # the sign-in's: an ID token from a refresh may only repeat it
        self._lapsed = False
        self._waiting: list[asyncio.Future[None]] = []  # wait_signed_in() callers
        self.user: SignedInUser | None = None
        self.renewals = 0  # silent renewals since sign-in (tests and diagnostics)

    @property
    def signed_in(self) -> bool:
        return self.user is not None and not self._lapsed

    @property
    def needs_sign_in(self) -> bool:
        """The sign-in lapsed (renewal refused or impossible): the user must sign in again."""
        return self.user is not None and self._lapsed

    def renew_in(self) -> float | None:
        """Seconds until the tokens should be renewed (<= 0: now); None when not signed in."""
        tokens = self.user.tokens if self.user is not None and not self._lapsed else None
        return None if tokens is None else tokens.renew_at - time.monotonic()

    async def wait_signed_in(self) -> None:
        """Return once the user is signed in (at once if they are)."""
        while not self.signed_in:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            await waiter

    @property
    def can_renew(self) -> bool:
        """Whether the provider gave a refresh token (else the sign-in ends with the tokens)."""
        return self.signed_in and self.user is not None and self.user.tokens is not None \
            and self.user.tokens.refresh_token is not None

    async def sign_in(self) -> SignedInUser:
        """Run the whole flow: discovery, browser, loopback redirect, code exchange, ID token checks."""
        issuer, client_id = self.settings.issuer, self.settings.client_id
        assert issuer and client_id
        state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), Pkce.generate()
        async with net.async_client(timeout=20.0, follow_redirects=False) as client:
            meta = self._meta or await discover(client, issuer)
            self._meta = meta
            async with LoopbackRedirect(state) as redirect:
                url = authorization_url(meta, client_id=client_id, redirect_uri=redirect.redirect_uri,
                                        scopes=self.settings.scopes, state=state, nonce=nonce, pkce=pkce)
                log.info("sign-in started issuer=%s port=%d", issuer, redirect.port)
                try:
                    self._open_url(url)
                except Exception as exc:
                    raise IdentityError(f"The web browser could not be opened ({type(exc).__name__}).") from exc
                params = await redirect.wait(self._timeout)
                redirect_uri = redirect.redirect_uri
            if "error" in params:
                error = params.get("error", "")[:64]
                raise IdentityError(f"Sign-in was not completed ({error}). Try again.")
            code = params.get("code")
            if not code:
                raise IdentityError("The sign-in service came back without an authorization code. Try again.")
            reply = await exchange_code(client, meta, client_id=client_id, code=code,
                                        redirect_uri=redirect_uri, verifier=pkce.verifier)
            jwks = await fetch_jwks(client, meta)
            claims = validate_id_token(reply["id_token"], jwks, issuer=meta.issuer, client_id=client_id,
                                       nonce=nonce)
            if self._use_userinfo and meta.userinfo_endpoint:
                info = await fetch_userinfo(client, meta, reply["access_token"])
                if info.get("sub") != claims["sub"]:  # OIDC Core 5.3.2: must match, or it is not this user
                    raise IdentityError("The sign-in service's user details are for someone else.")
                claims = {**info, **claims}
        user = user_from_claims(claims, meta.issuer, _tokens(reply, claims))
        lapsed = self.user if self._lapsed else None
        if lapsed is not None and (user.subject, user.issuer) != (lapsed.subject, lapsed.issuer):
            # what is open on screen is the lapsed user's: only they carry on
            log.warning("sign-in refused: another user signed in while a lapsed session was waiting")
            raise IdentityError(f"Signed in as {user.display_name}, but this session belongs to "
                                f"{lapsed.display_name}. {lapsed.display_name} signs in again to carry on; "
                                "anyone else signs out first (File, Sign out).")
        self._nonce = nonce
        self._lapsed = False
        self.renewals = 0
        self.user = user
        log.info("signed in login=%s role_profile=%s", self.user.login, self.user.sds_role_profile_id)
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)
        return self.user

    async def renew(self) -> SignedInUser:
        """New tokens from the refresh token, without the browser. RefreshRefused when the provider says
        no, or there is no refresh token (sign in again); IdentityError when it could not be asked."""
        user, meta = self.user, self._meta
        if user is None or self._lapsed or meta is None or user.tokens is None:
            raise RefreshRefused("You are not signed in. Sign in to carry on.")
        refresh_token = user.tokens.refresh_token
        if refresh_token is None:
            raise RefreshRefused("Your sign-in has ended (the sign-in service does not renew it). "
                                 "Sign in again to carry on.")
        client_id = self.settings.client_id
        assert client_id
        async with net.async_client(timeout=20.0, follow_redirects=False) as client:
            reply = await refresh_tokens(client, meta, client_id=client_id, refresh_token=refresh_token)
            claims: dict[str, Any] | None = None
            if isinstance(reply.get("id_token"), str):
                jwks = await fetch_jwks(client, meta)
                claims = validate_id_token(reply["id_token"], jwks, issuer=meta.issuer, client_id=client_id,
                                           nonce=self._nonce or "", nonce_required=False)
                if claims.get("sub") != user.subject:  # OIDC Core 12.2: the same person, or nothing
                    raise RefreshRefused("The sign-in service renewed the session for someone else. "
                                         "Sign in again.")
        if self.user is not user:  # signed out (or in again) meanwhile: these tokens are not wanted
            raise RefreshRefused("The sign-in changed while it was being renewed.")
        tokens = _tokens(reply, claims, previous=user.tokens)
        self.user = dataclasses.replace(user, tokens=tokens)
        self.renewals += 1
        log.info("sign-in renewed login=%s lifetime_s=%.0f", user.login, tokens.lifetime_s)
        return self.user

    def lapse(self) -> None:
        """The sign-in could not be renewed: drop every token, remember who it was."""
        if self.user is not None and not self._lapsed:
            log.info("sign-in lapsed login=%s", self.user.login)
            self.user = dataclasses.replace(self.user, tokens=None)
            self._lapsed = True

    def sign_out(self) -> None:
        """Forget the user and every token (kept nowhere but here)."""
        if self.user is not None:
            log.info("signed out login=%s", self.user.login)
        self.user = None
        self._nonce = None
        self._lapsed = False


def _tokens(reply: dict[str, Any], claims: dict[str, Any] | None, previous: Tokens | None = None) -> Tokens:
    """Tokens from a token endpoint's reply; a refresh that leaves out the ID token or a new refresh token
    keeps the previous ones (RFC 6749 6, OpenID Connect Core 12.2). They run out with the access token or
    the ID token, whichever is first."""
    try:
        lifetime = float(reply.get("expires_in", 300))
    except (TypeError, ValueError):
        lifetime = 300.0
    exp = claims.get("exp") if claims is not None else None
    if isinstance(exp, int | float):
        lifetime = max(0.0, min(lifetime, float(exp) - time.time()))
    refresh = reply.get("refresh_token")
    id_token = reply.get("id_token")
    return Tokens(access_token=reply["access_token"],
                  id_token=id_token if isinstance(id_token, str) else previous.id_token if previous else "",
                  refresh_token=refresh if isinstance(refresh, str) else previous.refresh_token if previous
                  else None,
                  expires_at=time.monotonic() + lifetime, lifetime_s=lifetime)
