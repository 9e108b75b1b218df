"""Reading how a patient may be contacted, and whether they must never be messaged, from a FHIR Patient.

Both adapters use it (R4 and GP Connect's STU3 share the telecom and extension shapes). The
do-not-notify mark is a Patient extension (`DO_NOT_NOTIFY_EXTENSION`, valueBoolean true) or an active
`Flag` whose code is `DO_NOT_NOTIFY_FLAG_CODE` in `DO_NOT_NOTIFY_FLAG_SYSTEM`. Either one is enough:
when in doubt, do not send (a message can endanger someone living with an abuser). A mark that could not
be read is not "no mark": `patient_contact` then says None, and the core tells nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.core.model import PatientContact

DO_NOT_NOTIFY_EXTENSION = "https://fhir.mosaic.example.nhs.uk/StructureDefinition/do-not-notify"
DO_NOT_NOTIFY_FLAG_SYSTEM = "https://fhir.mosaic.example.nhs.uk/CodeSystem/contact-restriction"
DO_NOT_NOTIFY_FLAG_CODE = "do-not-contact-sms-email"


def do_not_notify(patient: Mapping[str, Any], flags: Iterable[Any] = ()) -> bool:
    """Whether the mark is there in any form: a Patient extension (at any depth, modifier extensions too),
    an active Flag among `flags`, or one contained in the Patient."""
    if any(_marks(ext) for ext in _extensions(patient)):
        return True
    contained = [r for r in patient.get("contained") or [] if isinstance(r, Mapping)
                 and r.get("resourceType") == "Flag"]
    return any(_flag_marks(flag) for flag in [*flags, *contained])


def _extensions(element: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for key in ("extension", "modifierExtension"):
        for ext in element.get(key) or []:
            if isinstance(ext, Mapping):
                yield ext
                yield from _extensions(ext)


def _marks(ext: Mapping[str, Any]) -> bool:
    value = ext.get("valueBoolean")
    return ext.get("url") == DO_NOT_NOTIFY_EXTENSION and value is not False and value not in (None, "false")


def _flag_marks(flag: Any) -> bool:
    if not isinstance(flag, Mapping) or flag.get("resourceType", "Flag") != "Flag" \
            or flag.get("status", "active") in ("inactive", "entered-in-error"):
        return False
    for coding in (flag.get("code") or {}).get("coding") or []:
        if coding.get("code") == DO_NOT_NOTIFY_FLAG_CODE and coding.get("system") in (DO_NOT_NOTIFY_FLAG_SYSTEM, None):
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


def patient_contact(patient: Any, flags: Iterable[Any] | None = ()) -> PatientContact | None:
    """The contact as the record has it now; None when the Patient is not readable (nobody is messaged).

    `flags` are every Flag the practice holds for the patient, or None when they could not all be read (the
    Flag search failed, is not offered, or part of the record did not arrive): then the mark is unknown
    (`do_not_notify` None) unless the Patient itself carries it, and nobody is told."""
    if not isinstance(patient, Mapping):
        return None
    try:
        phone, email = phone_and_email(patient)
        marked = do_not_notify(patient, flags or ())
    except (AttributeError, TypeError, ValueError, RecursionError):
        return None
    return PatientContact(phone=phone, email=email, do_not_notify=True if marked else None if flags is None else False)
