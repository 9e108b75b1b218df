"""Audit entries as files an auditor or an Information Governance lead can use: CSV or a FHIR Bundle."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.core.audit.balp import audit_event
from app.core.audit.model import JournalEntry
from app.core.model import Practice

CSV_COLUMNS = (
    "recorded_at", "entry_id", "seq", "action", "outcome", "outcome_detail", "user_login", "user_name",
    "user_role", "workstation", "practice_id", "practice_ods", "patient_local_id", "patient_nhs_number",
    "sections", "purpose", "details", "hash",
)


def entry_row(entry: JournalEntry) -> dict[str, Any]:
    """A flat, JSON-friendly view of an entry (the CLI's --json lines and the CSV rows)."""
    return {
        "recorded_at": entry.recorded_at.astimezone(UTC).isoformat(),
        "entry_id": entry.entry_id, "seq": entry.seq, "action": str(entry.action), "outcome": str(entry.outcome),
        "outcome_detail": entry.outcome_detail, "user_login": entry.user.login,
        "user_name": entry.user.display_name, "user_role": entry.user.role, "workstation": entry.workstation,
        "practice_id": entry.practice_id, "practice_ods": entry.practice_ods,
        "patient_local_id": entry.patient_local_id, "patient_nhs_number": entry.patient_nhs_number,
        "sections": list(entry.sections), "purpose": entry.purpose, "details": entry.details, "hash": entry.hash,
    }


def to_csv(entries: Iterable[JournalEntry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        row = entry_row(entry)
        row["sections"] = ";".join(row["sections"])
        row["details"] = json.dumps(row["details"], sort_keys=True) if row["details"] else ""
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def to_fhir_bundle(entries: Iterable[JournalEntry], practices: Mapping[str, Practice]) -> dict[str, Any]:
    """A FHIR R4 collection Bundle of BALP AuditEvents, as each practice received (or will receive) them."""
    items = []
    for entry in entries:
        practice = practices.get(entry.practice_id or "")
        event = audit_event(entry, practice, practice.base_url if practice else "")
        items.append({"fullUrl": f"urn:uuid:{entry.entry_id}", "resource": event})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": datetime.now(UTC).isoformat(),
            "entry": items}


def day_start(day: date) -> datetime:
    """The start of a local calendar day, as an aware time (what `--since 2026-11-01` means to a person)."""
    return datetime.combine(day, time.min).astimezone()


def day_end(day: date) -> datetime:
    """The start of the next local day: `--until 2026-11-30` includes the whole of the 30th."""
    return day_start(day + timedelta(days=1))
