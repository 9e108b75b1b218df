"""Plain-text rendering of a record for `mosaic show` (banner first, then every section's state)."""

from __future__ import annotations

from app.core.display import (
    GROUP_TITLES,
    access_notes,
    display_name,
    entry_group,
    flag_words,
    format_born,
    format_datetime,
    format_partial_date,
    format_patient_nhs_number,
    format_range,
    format_sex,
    format_value,
    measurement_flag,
    severity_words,
    status_words,
)
from app.core.model import SECTION_TITLES, Entry, PatientRecord, Practice, SectionName
from app.core.patient_facts import (
    address_text,
    born_text,
    deceased_text,
    incomplete_text,
    registration_text,
)


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
    if (incomplete := incomplete_text(record)) is not None:  # as the banner says it: never read as the whole record
        lines.append(f"! {incomplete.upper()}. This does not mean none are recorded.")
    if address_text(p):
        lines.append(f"Address {address_text(p)}")
    if registration_text(p, practice.name):
        lines.append(f"Registered {registration_text(p, practice.name)}")
    for name in SectionName:
        section = record.sections.get(name)
        lines.append("")
        lines.append(f"== {SECTION_TITLES[name]} ==")
        if section is None:  # never sent: as a failure (app/core/patient_facts.py), never as "not provided"
            lines.append("   COULD NOT LOAD: the practice's system sent nothing for it. This does not mean none are "
                         "recorded.")
        elif section.status == "unsupported":
            lines.append("   Not provided by this practice's system.")
        elif section.status == "failed":
            lines.append(f"   COULD NOT LOAD: {section.error}. This does not mean none are recorded.")
        elif section.status == "withheld":
            lines.append("   Withheld for this study." if p.pseudonym
                         else "   Not shown under the access policy for your role.")
        elif not section.entries:
            lines.append("   None recorded.")
        else:
            for e in section.entries:
                parts = [format_partial_date(e.when).ljust(17), e.text]
                tags = [t for t in (_group_title(name, e), status_words(name.value, e.status)) if t]
                if tags:  # in clinical words ("Repeat medication", "Stopped"), never the sender's codes
                    parts.append(f"[{'; '.join(tags)}]")
                reaction = e.reaction if e.reaction and e.reaction not in (e.detail or "") else None
                if reaction or e.severity:
                    parts.append("- " + ", ".join(t for t in (reaction, severity_words(e.severity)) if t))
                if e.detail:
                    parts.append(f"- {e.detail}")
                lines.append("   " + " ".join(parts))
                lines.extend(f"{' ' * 21}{row}" for row in (e.notes or "").splitlines() if row.strip())
                lines.extend(f"{' ' * 21}{row}" for row in _abnormal(e))
    return "\n".join(lines)


def _group_title(section: SectionName, entry: Entry) -> str:
    group = entry_group(section.value, entry.group, entry.status)
    return GROUP_TITLES.get((section.value, group), "") if group else ""


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
