"""Marking a flagged access reviewed: the reviewer (the signed-in user), the time and a note, journaled as an
entry of its own (Action.REVIEW) through the normal recorder, so it goes upstream where the reviewed entry went.

The reviewed entry is never changed (the journal is append-only and hash-chained): a review names it by id in
its details ("reviewed"), and every face shows the entry with its reviews (`reviews_of`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app import __version__
from app.core.audit.model import Action, JournalEntry, Outcome, is_flagged

if TYPE_CHECKING:
    from app.core.audit.journal import Journal

NOTE_MAX = 2000  # characters: a note, not a report


class ReviewRefused(Exception):
    """The review cannot be recorded (no such entry, not flagged, no note, the reviewer's own access); nothing
    was journaled."""


def review_entry(reviewed: JournalEntry, note: str, reviewer: Any) -> JournalEntry:
    """The REVIEW entry for `reviewed` by `reviewer` (an AuditUser), about the same practice and patient."""
    return JournalEntry(
        action=Action.REVIEW, user=reviewer, outcome=Outcome.SUCCESS, practice_id=reviewed.practice_id,
        practice_ods=reviewed.practice_ods, patient_local_id=reviewed.patient_local_id,
        patient_nhs_number=reviewed.patient_nhs_number,
        details={"reviewed": reviewed.entry_id, "reviewed_seq": reviewed.seq, "note": note},
        app_version=__version__)


def checked_note(note: str) -> str:
    note = " ".join((note or "").split())
    if not note:
        raise ReviewRefused("Write a note saying what was checked (for example: 'Confirmed with Dr Patel: "
                            "emergency admission').")
    if len(note) > NOTE_MAX:
        raise ReviewRefused(f"The note is {len(note):,} characters; keep it under {NOTE_MAX:,}.")
    return note


def find_entry(journal: Journal, entry_id: str) -> JournalEntry | None:
    """The entry with this id, or (a number) with this journal sequence number."""
    found = journal.query(entry_ids=[entry_id], limit=1)
    if not found and entry_id.isdigit():
        found = _by_seq(journal, int(entry_id))
    return found[0] if found else None


def _by_seq(journal: Journal, seq: int) -> list[JournalEntry]:
    from sqlalchemy import select

    from app.core.audit import chain
    from app.core.audit.schema import journal as table

    with journal._transaction("read the audit journal") as conn:  # noqa: SLF001 - the audit package's own journal
        row = conn.execute(select(table).where(table.c.seq == seq)).first()
    return [chain.from_row(row._mapping)] if row is not None else []


def reviews_of(journal: Journal, entry_ids: Iterable[str]) -> dict[str, list[JournalEntry]]:
    """The reviews of these entries, oldest first, by reviewed entry id."""
    ids = list(dict.fromkeys(entry_ids))
    found: dict[str, list[JournalEntry]] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        for review in journal.query(reviewed=ids[start:start + 500], newest_first=False):
            found.setdefault(str(review.details.get("reviewed")), []).append(review)
    return found


def review_text(review: JournalEntry, *, with_note: bool = True) -> str:
    """"Reviewed by Jo Bloggs on 03-Dec-2026 10:14: note" (local time)."""
    from app.core.display import format_datetime

    text = f"Reviewed by {review.user.display_name or review.user.login} on {format_datetime(review.recorded_at)}"
    note = str(review.details.get("note") or "")
    return f"{text}: {note}" if with_note and note else text


async def mark_reviewed(core: Any, entry_id: str, note: str) -> JournalEntry:
    """Journal the signed-in user's review of the flagged entry `entry_id` (an id, or a journal sequence
    number) with `note`; returns the committed REVIEW entry. ReviewRefused says why when it cannot be; AuditError
    when the journal cannot record it. Runs on the core's loop, like every journal write."""
    note = checked_note(note)
    audit = await core.audit()
    reviewed = await asyncio.to_thread(find_entry, audit.journal, entry_id)
    if reviewed is None:
        raise ReviewRefused(f"No entry {entry_id} in this computer's audit journal.")
    if not is_flagged(reviewed):
        raise ReviewRefused(f"Entry {entry_id} is not flagged for review (only break-glass, self or family, "
                            "and denied accesses are reviewed).")
    if reviewed.user.login == audit.user.login:  # four eyes: an access is never signed off by whoever made it
        raise ReviewRefused(f"Entry {entry_id} is your own access ({reviewed.user.login}): it must be reviewed by "
                            "someone else, such as the practice's privacy officer or Caldicott guardian.")
    entry = review_entry(reviewed, note, audit.user)
    practice = next((p for p in core.practices if p.id == reviewed.practice_id), None)
    if practice is None:  # no longer configured here: its server is never guessed from its id
        return await audit.commit_central_only(entry, reviewed.practice_id or "no practice")
    if reviewed.outcome is Outcome.DENIED:  # the practice never heard of a denied access: nor of its review
        return await audit.commit_central_only(entry, practice.name)
    return await audit.commit(entry, practice)
