"""Plain-text rendering of a record for `mosaic show` (banner first, then every section's state)."""

from __future__ import annotations

from app.core.display import (
    access_notes,
    display_name,
    flag_words,
    format_born,
    format_datetime,
    format_partial_date,
    format_patient_nhs_number,
    format_range,
    format_sex,
    format_value,
    measurement_flag,
)
from app.core.model import SECTION_TITLES, Entry, PatientRecord, Practice, SectionName
from app.core.patient_facts import address_text, born_text, deceased_text, registration_text


def render_record(record: PatientRecord, practice: Practice) -> str:
    p = record.patient
    died = deceased_text(p)
    born = born_text(p) if p.is_deceased else format_born(p)
    lines = [
        f"{display_name(p)}" + ("   *** DECEASED ***" if died else ""),
        f"Born {born}" + (f"   Died {died}" if died else "")
        + f"   {format_sex(p.sex)}   NHS No. {format_patient_nhs_number(p)}",
        f"{practice.name} ({practice.ods_code})   Retrieved {format_datetime(record.retrieved_at)}",
    ]
    for warning in (*access_notes(record), *record.warnings):  # first, under the banner's three lines
        lines.append(f"! {warning}")
    if address_text(p):
        lines.append(f"Address {address_text(p)}")
    if registration_text(p, practice.name):
        lines.append(f"Registered {registration_text(p, practice.name)}")
    for name in SectionName:
        section = record.sections.get(name)
        lines.append("")
        lines.append(f"== {SECTION_TITLES[name]} ==")
        if section is None or section.status == "unsupported":
            lines.append("   Not provided by this practice's system.")
        elif section.status == "failed":
            lines.append(f"   COULD NOT LOAD: {section.error}. This does not mean none are recorded.")
        elif section.status == "withheld":
            lines.append("   Withheld under the access policy for your role.")
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
                lines.extend(f"{' ' * 21}{row}" for row in _abnormal(e))
    return "\n".join(lines)


def _abnormal(entry: Entry) -> list[str]:
    """'! ABNORMAL ▲ High: Total cholesterol 6.4 mmol/L (range < 5)': each value outside its range, in words."""
    rows = []
    for m in entry.measurements:
        words, level = flag_words(measurement_flag(m.flag, m.value, m.low, m.high))
        if level:
            limits = format_range(m.low, m.high, m.range_text)
            rows.append(f"! {'CRITICAL' if level > 1 else 'ABNORMAL'} {words}: {m.name} "
                        f"{format_value(m.value, m.unit, m.text)}" + (f" (range {limits})" if limits else ""))
    return rows
