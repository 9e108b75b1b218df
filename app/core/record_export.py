"""A record summary leaving Mosaic (a PDF file, a printer): journaled as an export, with the reason given,
before a byte of it is written; and the summary itself, as HTML any face can render.

The summary is made from the record as the user was shown it: in the research view that record is already
pseudonymised by the core (app/core/research.py), so the summary names the pseudonym, the year of birth and
coded terms only, by construction.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Literal

from app import __version__
from app.core import patient_facts as facts
from app.core.display import display_name, format_datetime, format_partial_date, format_patient_nhs_number, format_sex
from app.core.model import SECTION_TITLES, Entry, PatientRecord, Practice

if TYPE_CHECKING:
    from app.core.audit.model import JournalEntry
    from app.core.service import MosaicCore

ExportKind = Literal["pdf", "print"]


class ExportRefused(Exception):
    """The export cannot go ahead (no reason given): nothing was journaled and nothing written."""


async def journal_export(core: MosaicCore, record: PatientRecord, practice: Practice, reason: str,
                         kind: ExportKind, target: str) -> JournalEntry:
    """Commit the export's journal entry (Action.EXPORT, the reason as its purpose); raise AuditError when it
    cannot be recorded, and then nothing may be written. Runs on the core's loop, like every journal write."""
    from app.core.audit.model import Action, JournalEntry, Outcome

    reason = reason.strip()
    if not reason:
        raise ExportRefused("Give a reason for exporting this record summary.")
    audit = await core.audit()
    patient = record.patient
    local_id: str | None = patient.local_id
    number = patient.nhs_number
    view = core.research_view()
    if view is not None:  # the journal keeps the real ids (its research form reduces them as it commits)
        local_id = view.local_id(practice.id, patient.local_id)
        known = core._known.get((practice.id, local_id or ""))  # noqa: SLF001 - the core's own package
        number = known.nhs_number if known is not None else None
    entry = JournalEntry(
        action=Action.EXPORT, user=audit.user, practice_id=practice.id, practice_ods=practice.ods_code,
        patient_local_id=local_id, patient_nhs_number=number,
        sections=tuple(name.value for name, s in record.sections.items() if s.status == "loaded"),
        purpose=reason, outcome=Outcome.SUCCESS,
        outcome_detail="record summary saved as PDF" if kind == "pdf" else "record summary printed",
        details={"export": kind, "target": target}, app_version=__version__)
    return await audit.commit(entry, practice)


ROWS_PER_PART = 40  # a long section's table goes into the document in parts, each quick to lay out

SUMMARY_CSS = ("body { font-family: sans-serif; font-size: 10pt; color: #212b32; }"
               "h1 { font-size: 16pt; margin: 0; } h2 { font-size: 12pt; margin: 14px 0 4px 0; }"
               "td, th { padding: 2px 6px; vertical-align: top; } th { text-align: left; background: #e8edee; }"
               ".alert { background: #fbe9e7; padding: 4px; font-weight: bold; }"
               ".muted { color: #4c6272; }")


def summary_html(record: PatientRecord, practice: Practice) -> str:
    """The record summary as one HTML document (see `summary_parts`)."""
    return (f"<html><head><meta charset='utf-8'><style>{SUMMARY_CSS}</style></head><body>"
            + "".join(summary_parts(record, practice)) + "</body></html>")


def summary_parts(record: PatientRecord, practice: Practice) -> list[str]:
    """The record summary as HTML fragments in reading order (styled by SUMMARY_CSS): the banner's facts, then
    every section in its state (a failed section says it could not be loaded, never "none recorded"). A long
    table is cut into parts of ROWS_PER_PART rows, so a renderer can take it a part at a time."""
    patient = record.patient
    rows = [("Born", facts.born_text(patient))]
    if (died := facts.deceased_text(patient)) is not None:
        rows.append(("Died", died))
    rows += [("Sex", format_sex(patient.sex)), ("NHS No.", format_patient_nhs_number(patient))]
    if (address := facts.address_text(patient)) is not None:
        rows.append(("Address", address))
    if (registration := facts.registration_text(patient, practice.name)) is not None:
        rows.append(("Registered", registration))
    rows.append(("Practice", f"{practice.name} ({practice.ods_code})"))
    rows.append(("Retrieved", format_datetime(record.retrieved_at)))
    allergies = facts.allergy_summary(record)
    parts = [
        f"<h1>{escape(display_name(patient))}{' — DECEASED' if patient.is_deceased else ''}</h1>",
        "<table>" + "".join(f"<tr><td class='muted'>{escape(k)}</td><td><b>{escape(v)}</b></td></tr>"
                            for k, v in rows) + "</table>",
        f"<p class='alert'>{escape(allergies.text)}</p>",
    ]
    if (incomplete := facts.incomplete_text(record)) is not None:
        parts.append(f"<p class='alert'>{escape(incomplete)}. This summary is not the whole record.</p>")
    for note in record.warnings:
        parts.append(f"<p class='muted'>{escape(note)}</p>")
    for name, title in SECTION_TITLES.items():
        section = record.sections.get(name)
        parts.append(f"<h2>{escape(title)}</h2>")
        if section is None or section.status == "failed":
            why = section.error if section is not None and section.error else "nothing was sent"
            parts.append(f"<p class='alert'>Could not be loaded from {escape(practice.name)}: {escape(why)}. "
                         "This does not mean none are recorded.</p>")
        elif section.status == "unsupported":
            parts.append("<p class='muted'>Not provided by this practice's system.</p>")
        elif section.status == "withheld":  # by the policy: for a study only in the research view
            parts.append("<p class='muted'>Withheld for this study.</p>" if patient.pseudonym
                         else "<p class='muted'>Not shown under the access policy for your role.</p>")
        elif not section.entries:
            parts.append("<p class='muted'><i>None recorded.</i></p>")
        else:
            entries = section.entries
            for start in range(0, len(entries), ROWS_PER_PART):
                heading = ("<tr><th>Date</th><th>Description</th><th>Status</th><th>Detail</th></tr>"
                           if start == 0 else "")
                body = "".join(
                    f"<tr><td width='14%'>{escape(format_partial_date(e.when))}</td><td width='40%'>{escape(e.text)}"
                    f"</td><td width='14%'>{escape(_status(e.group, e.status))}</td><td>{escape(_detail(e))}</td></tr>"
                    for e in entries[start:start + ROWS_PER_PART])
                parts.append(f"<table width='100%' cellspacing='0'>{heading}{body}</table>")
    parts.append(f"<p class='muted'>Printed from Mosaic {escape(__version__)} — confidential patient "
                 "information: keep it as you would the record itself.</p>")
    return parts


def _status(group: str | None, status: str | None) -> str:
    return " · ".join(p for p in (group, status) if p)


def _detail(entry: Entry) -> str:
    bits = [b for b in (entry.detail, entry.reaction, entry.severity) if b]
    for m in entry.measurements:
        value = m.text if m.value is None else f"{m.value:g}"
        bits.append(" ".join(p for p in (m.name + ":", value or "", m.unit or "", f"[{m.flag}]" if m.flag else "")
                             if p))
    return "; ".join(bits)
