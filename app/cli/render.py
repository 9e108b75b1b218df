"""Plain-text rendering of a record for `mosaic show` (banner first, then every section's state)."""

from __future__ import annotations

from app.core.display import (
    access_notes,
    display_name,
    format_born,
    format_datetime,
    format_partial_date,
    format_patient_nhs_number,
    format_sex,
)
from app.core.model import SECTION_TITLES, PatientRecord, Practice, SectionName


def render_record(record: PatientRecord, practice: Practice) -> str:
    p = record.patient
    lines = [
        f"{display_name(p)}",
        f"Born {format_born(p)}   {format_sex(p.sex)}   NHS No. {format_patient_nhs_number(p)}",
        f"{practice.name} ({practice.ods_code})   Retrieved {format_datetime(record.retrieved_at)}",
    ]
    for warning in (*access_notes(record), *record.warnings):
        lines.append(f"! {warning}")
    for name in SectionName:
        section = record.sections.get(name)
        lines.append("")
        lines.append(f"== {SECTION_TITLES[name]} ==")
        if section is None or section.status == "unsupported":
            lines.append("   Not provided by this practice's system.")
        elif section.status == "failed":
            lines.append(f"   COULD NOT LOAD: {section.error}. This does not mean none are recorded.")
        elif not section.entries:
            lines.append("   None recorded.")
        else:
            for e in section.entries:
                parts = [format_partial_date(e.when).ljust(17), e.text]
                if e.status:
                    parts.append(f"[{e.status}]")
                if e.detail:
                    parts.append(f"- {e.detail}")
                lines.append("   " + " ".join(parts))
    return "\n".join(lines)
