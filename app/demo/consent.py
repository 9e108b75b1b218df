"""Research consent in the demo: about one generated patient in five has an active research Consent."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.demo.population import DemoPatient

CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"


def research_consent_demo(p: DemoPatient) -> bool:
    """Deterministic from the seed, and independent of the do-not-notify mark (seed % 10)."""
    return p.resource is None and (p.record_seed // 10) % 5 == 2


def consent_resources(p: DemoPatient) -> list[dict[str, Any]]:
    """The patient's research Consent (FHIR R4), or nothing."""
    if not research_consent_demo(p):
        return []
    given = date(2023, 1, 1) + timedelta(days=(p.record_seed // 50) % 700)
    return [{
        "resourceType": "Consent",
        "id": f"{p.local_id}-rc0",
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "research", "display": "Research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{p.local_id}"},
        "dateTime": given.isoformat(),
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit",
                      "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH",
                                   "display": "healthcare research"}]},
    }]
