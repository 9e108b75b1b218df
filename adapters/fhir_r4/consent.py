"""Research consent from FHIR R4 Consent resources (read with the record, for the research view)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"


def _codes(concept: Any, system: str) -> set[str]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return {c["code"] for c in codings or [] if isinstance(c, dict) and c.get("system") == system
            and isinstance(c.get("code"), str)}


def is_research(consent: dict[str, Any]) -> bool:
    return "research" in _codes(consent.get("scope"), CONSENT_SCOPE_SYSTEM)


def _permits(consent: dict[str, Any]) -> bool:
    provision = consent.get("provision")
    if provision is None:
        return True
    return isinstance(provision, dict) and provision.get("type", "permit") == "permit"


def research_consent(resources: Iterable[Any]) -> bool | None:
    """True: an active research Consent that permits (or has no provision) and none that denies.
    False: research Consents exist but none grants (rejected, inactive, deny). None: none recorded."""
    research = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "Consent" and is_research(r)]
    if not research:
        return None
    active = [r for r in research if r.get("status") == "active"]
    if any(not _permits(r) for r in active):
        return False  # an active refusal wins over any permit
    return any(_permits(r) for r in active)
