"""The GP Connect access token: an unsigned JWT (alg "none") describing who asks, from where, and why.

GP Connect does not trust the token's signature (the Spine Secure Proxy authenticates the calling
system by its TLS client certificate and ASID); the token is an audit statement that the provider
records. So it is built fresh for every request, names a real person (never a generic account), and
says "UNK" for an SDS identifier Mosaic does not know rather than inventing one.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import app
from app.core import os_account
from app.core.model import Requester

MOSAIC_SYSTEM_URL = "https://mosaic-gp.uk"  # Mosaic's requesting-system URL (the JWT's iss)
DEVICE_ID_SYSTEM = f"{MOSAIC_SYSTEM_URL}/Id/local-system-instance-id"
LOCAL_USER_SYSTEM = f"{MOSAIC_SYSTEM_URL}/Id/local-user-id"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE_SYSTEM = "https://fhir.nhs.uk/Id/sds-role-profile-id"
UNKNOWN = "UNK"
LIFETIME_S = 300
PATIENT_SCOPE = "patient/*.read"
ORGANIZATION_SCOPE = "organization/*.read"


def os_requester(org_ods: str | None = None) -> Requester:
    """Before sign-in: the person logged in to this PC, with unknown SDS identifiers."""
    login = os_account.os_login()
    return Requester(user_id=login, family=login, org_ods=org_ods)


def requester_from_user(user: Any, org_ods: str | None = None) -> Requester:
    """A Requester from the core's signed-in user (an AuditUser or SignedInUser: duck-typed)."""
    ids = getattr(user, "professional_ids", None) or {}
    login = getattr(user, "login", None) or os_account.os_login()
    display = getattr(user, "display_name", None) or login
    words = str(display).split()
    family, given = (words[-1], tuple(words[:-1])) if words else (login, ())
    return Requester(
        user_id=login, family=family, given=given,
        sds_user_id=getattr(user, "sds_user_id", None) or ids.get("sds_user_id"),
        sds_role_profile_id=getattr(user, "sds_role_profile_id", None) or ids.get("sds_role_profile_id"),
        org_ods=getattr(user, "org_ods", None) or ids.get("org_ods") or org_ods,
    )


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def claims_for(requester: Requester, audience: str, scope: str = PATIENT_SCOPE,
               now: int | None = None) -> dict[str, Any]:
    iat = int(time.time()) if now is None else now
    name: dict[str, Any] = {"family": requester.family}
    if requester.given:
        name["given"] = list(requester.given)
    if requester.prefix:
        name["prefix"] = list(requester.prefix)
    return {
        "iss": MOSAIC_SYSTEM_URL,
        "sub": requester.user_id,
        "aud": audience,
        "exp": iat + LIFETIME_S,
        "iat": iat,
        "reason_for_request": "directcare",
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": DEVICE_ID_SYSTEM, "value": "mosaic"}],
            "model": "Mosaic",
            "version": app.__version__,
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": requester.org_ods or UNKNOWN}],
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": requester.user_id,
            "identifier": [
                {"system": SDS_USER_SYSTEM, "value": requester.sds_user_id or UNKNOWN},
                {"system": SDS_ROLE_SYSTEM, "value": requester.sds_role_profile_id or UNKNOWN},
                {"system": LOCAL_USER_SYSTEM, "value": requester.user_id},
            ],
            "name": [name],
        },
    }


def build_token(claims: dict[str, Any]) -> str:
    """base64url(header) + "." + base64url(claims) + "." (an empty signature, as GP Connect requires)."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


__all__ = ["build_token", "claims_for", "os_requester", "requester_from_user", "MOSAIC_SYSTEM_URL",
           "DEVICE_ID_SYSTEM", "LIFETIME_S", "PATIENT_SCOPE", "ORGANIZATION_SCOPE", "UNKNOWN"]
