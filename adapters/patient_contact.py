"""Reading how a patient may be contacted, and whether they must never be messaged, from a FHIR Patient.

Both adapters use it (R4 and GP Connect's STU3 share the telecom and extension shapes). The
do-not-notify mark is a Patient extension (`DO_NOT_NOTIFY_EXTENSION`, valueBoolean true) or an active
`Flag` whose code is `DO_NOT_NOTIFY_FLAG_CODE` in `DO_NOT_NOTIFY_FLAG_SYSTEM`. Either one is enough:
when in doubt, do not send (a message can endanger someone living with an abuser).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.model import PatientContact

DO_NOT_NOTIFY_EXTENSION = "https://fhir.mosaic.example.nhs.uk/StructureDefinition/do-not-notify"
DO_NOT_NOTIFY_FLAG_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/contact-restriction"
DO_NOT_NOTIFY_FLAG_CODE = "do-not-contact-sms-email"


def do_not_notify(patient: Mapping[str, Any], flags: Iterable[Any] = ()) -> bool:
    for ext in patient.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == DO_NOT_NOTIFY_EXTENSION and ext.get("valueBoolean"):
            return True
    for flag in flags:
        if not isinstance(flag, Mapping) or flag.get("resourceType", "Flag") != "Flag" \
                or flag.get("status", "active") != "active":
            continue
        for coding in (flag.get("code") or {}).get("coding") or []:
            if coding.get("system") == DO_NOT_NOTIFY_FLAG_SYSTEM and coding.get("code") == DO_NOT_NOTIFY_FLAG_CODE:
                return True
    return False


def phone_and_email(patient: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The patient's phone (mobile preferred) and email from `telecom`: current ones, not "old" or ended."""
    phones: list[tuple[int, str]] = []
    email = None
    for telecom in patient.get("telecom") or []:
        if not isinstance(telecom, Mapping) or not telecom.get("value") or telecom.get("use") == "old":
            continue
        if (telecom.get("period") or {}).get("end"):
            continue
        value = str(telecom["value"]).strip()
        if telecom.get("system") == "phone":
            phones.append((0 if telecom.get("use") == "mobile" else 1, value))
        elif telecom.get("system") == "email" and email is None:
            email = value
    return (min(phones)[1] if phones else None), email


def patient_contact(patient: Any, flags: Iterable[Any] = ()) -> PatientContact | None:
    """The contact as the record has it now; None when the Patient is not readable (nobody is messaged)."""
    if not isinstance(patient, Mapping):
        return None
    try:
        phone, email = phone_and_email(patient)
        return PatientContact(phone=phone, email=email, do_not_notify=do_not_notify(patient, flags))
    except (AttributeError, TypeError, ValueError):
        return None
