"""JSON shapes for the CLI's --json output (stable: scripts depend on them)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from app.core.model import Address, Entry, PatientRecord, PatientSummary, Registration, SectionName


def patient_json(patient: PatientSummary) -> dict[str, Any]:
    return {
        "practice": patient.practice_id,
        "id": patient.local_id,
        "nhs_number": patient.nhs_number,
        "family": patient.family,
        "given": list(patient.given),
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "postcode": patient.postcode,
        # ISO date of death; true when deceased with the date unknown; null when not recorded as deceased
        "deceased": patient.deceased.isoformat() if isinstance(patient.deceased, date) else (
            True if patient.deceased else None),
        "address": address_json(patient.address),
        "registration": registration_json(patient.registration),
    }


def address_json(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {"lines": list(address.lines), "city": address.city, "district": address.district,
            "postcode": address.postcode, "text": address.one_line()}


def registration_json(registration: Registration | None) -> dict[str, Any] | None:
    if registration is None:
        return None
    data = asdict(registration)
    data["since"] = registration.since.isoformat() if registration.since else None
    return data


def entry_json(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    return {key: value for key, value in data.items() if value is not None}


def record_json(record: PatientRecord) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for name in SectionName:
        section = record.sections.get(name)
        if section is None:  # never sent: a failure (as the banner counts it), never "not provided"
            sections[name.value] = {"status": "failed", "entries": [],
                                    "error": "the practice's system sent nothing for it"}
            continue
        sections[name.value] = {
            "status": section.status,
            "entries": [entry_json(e) for e in section.entries],
            "error": section.error,
            "retrieved_at": section.retrieved_at.isoformat() if section.retrieved_at else None,
        }
    return {
        "patient": patient_json(record.patient),
        "retrieved_at": record.retrieved_at.isoformat(),
        "warnings": list(record.warnings),
        "access": {"flags": list(record.access_flags), "reason": record.access_reason} if record.access_flags else None,
        "sections": sections,
    }
