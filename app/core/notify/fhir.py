"""Reading what the notifier needs from a FHIR Patient (see adapters/patient_contact.py, where the
adapters read it with the record)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.patient_contact import (
    DO_NOT_NOTIFY_EXTENSION,
    DO_NOT_NOTIFY_FLAG_CODE,
    DO_NOT_NOTIFY_FLAG_SYSTEM,
    do_not_notify,
    phone_and_email,
)
from app.core.notify.notifier import Contact

__all__ = ["DO_NOT_NOTIFY_EXTENSION", "DO_NOT_NOTIFY_FLAG_CODE", "DO_NOT_NOTIFY_FLAG_SYSTEM", "contact_from_patient",
           "do_not_notify"]


def contact_from_patient(patient: Mapping[str, Any]) -> Contact:
    """The patient's mobile number and email from `telecom` (current, not "old"; mobile use preferred)."""
    phone, email = phone_and_email(patient)
    return Contact(phone=phone, email=email)
