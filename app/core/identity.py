"""Who is using Mosaic: one OpenID Connect sign-in (NHS CIS2, or the demo provider) for every practice.

    identity = Identity(load_identity_settings())          # on the core's loop
    user = await identity.sign_in()                         # opens the system browser
    core.set_user(user.audit_user())                        # audit, policy, the GP Connect JWT
    ...
    identity.sign_out()                                     # forgets every token

Tokens live in memory only (never on disk, never in a log, not in repr()). Python strings cannot be
wiped, so "forgets" means no reference is kept: they go with the next garbage collection.
"""

from __future__ import annotations

import logging
import secrets
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.core.audit.model import AuditUser
from app.core.config import IdentitySettings
from app.core.oidc import (
    DEFAULT_REDIRECT_TIMEOUT_S,
    LoopbackRedirect,
    OidcError,
    Pkce,
    ProviderMetadata,
    authorization_url,
    discover,
    exchange_code,
    fetch_jwks,
    fetch_userinfo,
    validate_id_token,
)

log = logging.getLogger("mosaic.identity")

__all__ = ["Identity", "IdentityError", "SignedInUser", "Tokens", "user_from_claims"]

IdentityError = OidcError


@dataclass(frozen=True)
class Tokens:
    """What the provider issued. repr() shows none of it."""

    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0  # time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at


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
        self._open_url = open_url or webbrowser.open
        self._timeout = redirect_timeout_s
        self._use_userinfo = use_userinfo
        self._meta: ProviderMetadata | None = None
        self.user: SignedInUser | None = None

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    async def sign_in(self) -> SignedInUser:
        """Run the whole flow: discovery, browser, loopback redirect, code exchange, ID token checks."""
        issuer, client_id = self.settings.issuer, self.settings.client_id
        assert issuer and client_id
        state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), Pkce.generate()
        async with httpx.AsyncClient(timeout=20.0, follow_redirects=False, trust_env=False) as client:
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
        try:
            lifetime = float(reply.get("expires_in", 300))
        except (TypeError, ValueError):
            lifetime = 300.0
        tokens = Tokens(access_token=reply["access_token"], id_token=reply["id_token"],
                        refresh_token=reply.get("refresh_token") if isinstance(reply.get("refresh_token"), str)
                        else None, expires_at=time.monotonic() + lifetime)
        self.user = user_from_claims(claims, meta.issuer, tokens)
        log.info("signed in login=%s role_profile=%s", self.user.login, self.user.sds_role_profile_id)
        return self.user

    def sign_out(self) -> None:
        """Forget the user and every token (kept nowhere but here)."""
        if self.user is not None:
            log.info("signed out login=%s", self.user.login)
        self.user = None
