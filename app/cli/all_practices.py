"""`mosaic show --all-practices [--json] NHS_NUMBER`: one patient at every practice, in one timeline.

Each practice's record is opened through the core's normal path (MosaicCore.open_all_practices: the policy per
practice, one --reason for all, one journal entry per practice); a practice that fails or is refused is named
with why and the others are still shown. Exit status as `mosaic show`: 0 when every practice opened with every
section; 1 when a practice or section could not be read or the policy refused or wants more; 2 for usage.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from app.core.display import (
    access_notes,
    display_name,
    format_born,
    format_datetime,
    format_partial_date,
    format_patient_nhs_number,
    format_sex,
)
from app.core.model import SECTION_TITLES, Practice
from app.core.nhs_number import format_nhs_number

if TYPE_CHECKING:
    from app.core.all_practices import AllPractices, PracticeOpen
    from app.core.timeline import Timeline

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(args: argparse.Namespace, practices: list[Practice]) -> int:
    from app.cli import _CLI_HINTS, _print_err, _run_open
    from app.core.service import MosaicCore

    if args.patient is not None or args.criteria is not None:
        _print_err("--all-practices takes one NHS number and no practice, patient or --criteria: "
                   "mosaic show --all-practices NHS_NUMBER")
        return EXIT_USAGE
    if args.break_glass and not (args.reason or "").strip():
        _print_err("--break-glass needs a written reason: add --reason TEXT")
        return EXIT_USAGE
    number = args.practice  # the one positional argument

    async def open_everywhere() -> AllPractices:
        core = MosaicCore(practices, central_url=args.central_url, policy=args.policy, notify=args.notify,
                          user=args.acting_user)
        try:
            await core.sign_in()
            opened = await core.open_all_practices(number, reason=args.reason, break_glass=args.break_glass)
            await core.flush_outbox(timeout_s=5)  # what does not go now waits in the journal's outbox
            return opened
        finally:
            await core.close()

    opened = _run_open(open_everywhere())
    if opened is None:
        return EXIT_FAILED
    timeline = opened.timeline()
    if args.json:
        print(json.dumps(all_practices_json(opened, timeline), indent=2))
    else:
        print(render_all_practices(opened, timeline))
    wanting = sorted({o.needs for o in opened.problems if o.status == "denied" and o.needs and o.needs in _CLI_HINTS})
    for needs in wanting:
        _print_err(f"access policy: a practice needs more to open this record ({_CLI_HINTS[needs]}); "
                   + ("a restricted record opens only by break-glass." if needs == "break-glass"
                      else "give a reason for access."))
    incomplete = any(s.status == "failed" for _, r in opened.records for s in r.sections.values())
    return EXIT_FAILED if opened.problems or incomplete else EXIT_OK


# --- JSON -------------------------------------------------------------------------------------------------

def all_practices_json(opened: AllPractices, timeline: Timeline) -> dict[str, Any]:
    """`practices` (each with id, name, status ok/failed/denied and why), `timeline` newest first (each entry
    with date, practice, section, text and the entry itself) and `differences`."""
    from app.cli import _patient_row
    from app.core.serialise import entry_json

    patient = opened.patient
    return {
        "nhs_number": opened.nhs_number,
        "patient": _patient_row(patient) if patient is not None else None,
        "practices": [_practice_json(o) for o in opened.opened],
        "not_registered": [p.id for p in opened.not_registered],
        "timeline": [{"date": i.date, "practice": i.practice.id, "practice_name": i.practice.name,
                      "section": i.section.value, "text": i.text, "entry": entry_json(i.entry)}
                     for i in timeline.items],
        "differences": [{"kind": d.kind, "section": d.section.value if d.section else None, "item": d.item,
                         "text": d.text, "practices": dict(d.states)} for d in timeline.differences],
    }


def _practice_json(o: PracticeOpen) -> dict[str, Any]:
    record = o.record
    data: dict[str, Any] = {"id": o.practice.id, "name": o.practice.name, "ods_code": o.practice.ods_code,
                            "status": o.status, "why": o.why}
    if o.needs:
        data["needs"] = o.needs
    if record is not None:
        failed = sorted(n.value for n, s in record.sections.items() if s.status == "failed")
        data.update(retrieved_at=record.retrieved_at.isoformat(), warnings=list(record.warnings),
                    failed_sections=failed,
                    access={"flags": list(record.access_flags), "reason": record.access_reason}
                    if record.access_flags else None)
    return data


# --- text -------------------------------------------------------------------------------------------------

_STATUS = {"ok": "opened", "failed": "FAILED", "denied": "REFUSED"}


def render_all_practices(opened: AllPractices, timeline: Timeline) -> str:
    """The patient, every practice's part, the differences, then the timeline newest first."""
    from app.core.all_practices import registered_at
    from app.core.patient_facts import address_text, born_text, deceased_text, registration_text
    from app.core.timeline import ENTRY_KIND, rows

    patient = opened.patient
    lines = []
    if patient is not None:  # the banner's words, as `mosaic show` writes them
        died = deceased_text(patient)
        born = born_text(patient) if patient.is_deceased else format_born(patient)
        lines += [display_name(patient) + ("   *** DECEASED ***" if died else ""),
                  f"Born {born}" + (f"   Died {died}" if died else "")
                  + f"   {format_sex(patient.sex)}   NHS No. {format_patient_nhs_number(patient)}"]
        if address_text(patient):
            lines.append(f"Address {address_text(patient)}")
    else:
        lines.append(f"NHS No. {format_nhs_number(opened.nhs_number)}: no practice's record could be opened")
    lines.append(registered_at(opened.opened))
    for _, record in opened.records[1:]:  # the practices' own spelling: a difference there is worth a look
        other = record.patient
        if patient is not None and (display_name(other), other.birth_date) != (display_name(patient),
                                                                               patient.birth_date):
            lines.append(f"! {_name_of(opened, other.practice_id)} records this patient as {display_name(other)}, "
                         f"born {format_born(other)}")
    letters = {o.practice.id: _letter(i) for i, o in enumerate(opened.opened)}
    lines += ["", "== Practices =="]
    width = max(len(o.practice.name) for o in opened.opened)
    for o in opened.opened:
        state = _STATUS[o.status]
        if o.record is not None:
            failed = [SECTION_TITLES[n].lower() for n, s in o.record.sections.items() if s.status == "failed"]
            why = f"retrieved {format_datetime(o.record.retrieved_at)}"
            registration = registration_text(o.record.patient, o.practice.name)
            if registration:
                why += f"; registered {registration}"
            if failed:
                why += f"; INCOMPLETE: {', '.join(failed)} could not be loaded"
        else:
            why = o.why or ""
        lines.append(f"   {letters[o.practice.id]}  {o.practice.name:<{width}}  {state:<8} {why}")
        if o.record is not None:
            lines += [f"      {'':<{width}}  ! {note}" for note in (*access_notes(o.record), *o.record.warnings)]
    if opened.not_registered:
        lines.append(f"   Not registered at: {', '.join(p.name for p in opened.not_registered)}")

    lines += ["", "== Differences (medicines reconciliation) =="]
    compared = [p.name for p, _ in opened.records]
    for o in opened.problems:
        why = "could not be opened" if o.status == "failed" else "was not opened under the access policy"
        lines.append(f"   ! {o.practice.name} {why}, so what it records is not known.")
    if len(compared) < 2:
        lines.append("   Nothing to compare: " + ("only the record from " + compared[0] + " could be read."
                                                  if compared else "no record could be read."))
    elif not timeline.differences:
        lines.append(f"   None: {' and '.join(compared)} agree on allergies, repeat medication and problems.")
    for d in timeline.differences:
        lines.append(f"   {'!' if d.kind in ('not-compared', 'partial') else '*'} {d.text}")

    lines += ["", "== Timeline, newest first (letters: the practices above; an entry the same at several "
              "practices is one line) =="]
    read = rows(timeline)
    if not read:
        lines.append("   No entries.")
    tag_width = max((len(" ".join(letters[m.id] for m in r.practices)) for r in read), default=1)
    for row in read:
        when = format_partial_date(row.date) or "undated"
        tags = " ".join(letters[m.id] for m in row.practices)
        lines.append(f"   {when:<17}  {tags:<{tag_width}}  {ENTRY_KIND[row.section]:<12} {row.words}")
    return "\n".join(lines)


def _letter(index: int) -> str:
    """A, B, ... Z, then AA, AB ...: a practice's mark on the timeline lines."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _name_of(opened: AllPractices, practice_id: str) -> str:
    return next((o.practice.name for o in opened.opened if o.practice.id == practice_id), practice_id)
