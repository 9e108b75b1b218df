"""Reading what the notifier needs from a FHIR R4 Patient (and its Flags) at the time of the access.

The do-not-notify mark is a Patient extension (`DO_NOT_NOTIFY_EXTENSION`, valueBoolean true) or an
active `Flag` whose code is `DO_NOT_NOTIFY_FLAG_CODE` in `DO_NOT_NOTIFY_FLAG_SYSTEM`. Either one is
enough: when in doubt, do not send (a message can endanger someone living with an abuser).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.notify.notifier import Contact

DO_NOT_NOTIFY_EXTENSION = "https://fhir.mosaic.example.nhs.uk/StructureDefinition/do-not-notify"
DO_NOT_NOTIFY_FLAG_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/contact-restriction"
DO_NOT_NOTIFY_FLAG_CODE = "do-not-contact-sms-email"


def do_not_notify(patient: Mapping[str, Any], flags: Iterable[Mapping[str, Any]] = ()) -> bool:
    for ext in patient.get("extension") or []:
        if isinstance(ext, Mapping) and ext.get("url") == DO_NOT_NOTIFY_EXTENSION and ext.get("valueBoolean"):
            return True
    for flag in flags:
        if flag.get("resourceType", "Flag") != "Flag" or flag.get("status", "active") != "active":
            continue
        for coding in (flag.get("code") or {}).get("coding") or []:
            if coding.get("system") == DO_NOT_NOTIFY_FLAG_SYSTEM and coding.get("code") == DO_NOT_NOTIFY_FLAG_CODE:
                return True
    return False


def contact_from_patient(patient: Mapping[str, Any]) -> Contact:
    """The patient's mobile number and email from `telecom` (current, not "old"; mobile use preferred)."""
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
    phone = min(phones)[1] if phones else None
    return Contact(phone=phone, email=email)
