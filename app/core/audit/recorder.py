"""Turning what the core did into journal entries, committed before anything reaches the user.

Every face of the app (window, CLI) goes through MosaicCore, and MosaicCore through this recorder:
a record or a practice's search results are handed on only after their entry has been durably
committed, together with the outbox rows that will carry it upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app import __version__
from app.core.audit.errors import AuditError
from app.core.audit.journal import Journal, JournalError
from app.core.audit.model import (
    CENTRAL_DESTINATION,
    Action,
    AuditUser,
    JournalEntry,
    Outcome,
    is_flagged,  # noqa: F401 - re-exported: callers import it from here
    practice_destination,
)
from app.core.model import PatientQuery, PatientRecord, PatientSummary, Practice

__all__ = ["AuditError", "AuditRecorder"]


class AuditRecorder:
    def __init__(self, journal: Journal, user: AuditUser, *, central: bool = False,
                 on_appended: Callable[[], None] | None = None,
                 journal_form: Callable[[JournalEntry, Practice], JournalEntry] | None = None) -> None:
        """`journal_form`: every entry passes through it as it is committed (the research view's reduction,
        app/core/research.py: a research role's journal holds no direct identifier of a patient without consent)."""
        self.journal = journal
        self.user = user
        self.central = central
        self.on_appended = on_appended
        self.journal_form = journal_form
        #: commits waiting for the one in flight to return: they go to the journal together, next
        self._waiting: list[tuple[JournalEntry, list[str], asyncio.Future[JournalEntry]]] = []
        self._writer: asyncio.Task[None] | None = None

    def destinations(self, practice: Practice) -> list[str]:
        from adapters.base import available_adapters

        adapter = available_adapters().get(practice.adapter)
        found = [practice_destination(practice)] if adapter is None or adapter.accepts_audit_events else []
        if self.central:
            found.append(CENTRAL_DESTINATION)
        return found

    async def commit(self, entry: JournalEntry, practice: Practice) -> JournalEntry:
        """Durably append `entry` (off the loop thread); raise AuditError if it cannot be recorded.
        A denied access goes to the central store only: it never reaches the practice. An intent stays in the
        journal: its outcome goes upstream."""
        if self.journal_form is not None:
            entry = self.journal_form(entry, practice)
        destinations = self.destinations(practice) if entry.action is not Action.INTENT else []
        if entry.outcome is Outcome.DENIED:
            destinations = [d for d in destinations if d == CENTRAL_DESTINATION]
        try:
            stored = await self._append(entry, destinations)
        except JournalError as exc:
            raise AuditError(f"Nothing from {practice.name} is shown because this access could not be "
                             f"recorded in the audit journal: {exc}") from exc
        if self.on_appended is not None:
            self.on_appended()
        return stored

    async def commit_central_only(self, entry: JournalEntry, practice_name: str) -> JournalEntry:
        """`commit`, upstream to the central store only (when there is one): for an entry about a practice no
        longer configured on this computer (its server is never guessed from its id), or one the practice
        must not hear of (the review of an access that was denied)."""
        if self.journal_form is not None:
            from app.core.model import Practice

            entry = self.journal_form(entry, Practice(id=entry.practice_id or "", name=practice_name,
                                                      ods_code=entry.practice_ods or "", adapter="", base_url=""))
        try:
            stored = await self._append(entry, [CENTRAL_DESTINATION] if self.central else [])
        except JournalError as exc:
            raise AuditError(f"This could not be recorded in the audit journal: {exc}") from exc
        if self.on_appended is not None:
            self.on_appended()
        return stored

    async def _append(self, entry: JournalEntry, destinations: list[str]) -> JournalEntry:
        """Append off the loop thread. Commits made while another is being written wait for it, then go to
        the journal together in one worker-thread call and one transaction (a search across twenty
        practices journals twenty entries within a few milliseconds; one thread hand-off each cost the
        loop the replies are read on more than the writes themselves)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[JournalEntry] = loop.create_future()
        self._waiting.append((entry, destinations, done))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_waiting(), name="audit-journal-writer")
        return await done

    async def _write_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while batch := [item for item in self._waiting if item[2].get_loop() is loop]:
            self._waiting = [item for item in self._waiting if item[2].get_loop() is not loop]
            try:
                results: list[JournalEntry | BaseException] = await asyncio.to_thread(
                    self.journal.append_each, [(entry, destinations) for entry, destinations, _done in batch])
            except asyncio.CancelledError:
                for _entry, _destinations, done in batch:
                    done.cancel()
                raise
            except Exception as exc:  # the journal itself broke: every commit in the batch hears of it
                results = [exc] * len(batch)
            for (_entry, _destinations, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    def read(self, practice: Practice, local_id: str, record: PatientRecord | None = None,
             error: str | None = None, nhs_number: str | None = None, purpose: str | None = None,
             trace_id: str | None = None, flags: tuple[str, ...] = ()) -> JournalEntry:
        """A record open. `flags` (from the access policy: "break-glass", "self-or-family") mark the entry
        for review; a break-glass open is journaled with action BREAK_GLASS."""
        shown = tuple(name.value for name, s in record.sections.items() if s.status == "loaded") if record else ()
        details: dict[str, object] = {}
        if record is not None:
            failed = sorted(name.value for name, s in record.sections.items() if s.status == "failed")
            if failed:
                details["sections_failed"] = failed
        if record is not None and (name := patient_name(record.patient)):
            details["patient_name"] = name  # the access history names the patient (a research form drops it)
        if trace_id:
            details["trace_id"] = trace_id
        details.update(flag_details(flags))
        return JournalEntry(
            action=Action.BREAK_GLASS if "break-glass" in flags else Action.READ, user=self.user,
            practice_id=practice.id, practice_ods=practice.ods_code,
            patient_local_id=local_id,
            patient_nhs_number=record.patient.nhs_number if record else nhs_number,
            sections=shown, purpose=purpose,
            outcome=Outcome.SUCCESS if record is not None else Outcome.FAILURE, outcome_detail=error,
            details=details, app_version=__version__,
        )

    def intent(self, practice: Practice, doing: Action, *, local_id: str | None = None,
               nhs_number: str | None = None, purpose: str | None = None, query: PatientQuery | None = None,
               flags: tuple[str, ...] = ()) -> JournalEntry:
        """The attempt, committed before its request leaves: `doing` (READ, BREAK_GLASS, SEARCH) is what the
        outcome entry will be. The outcome names this entry's id in its details ("intent")."""
        details: dict[str, object] = {"doing": str(doing)}
        if query is not None:
            details["query"] = self.search(practice, query, None).details["query"]
        if flags:
            details["flags"] = list(flags)  # not "flagged": the outcome entry is what review lists
        return JournalEntry(
            action=Action.INTENT, user=self.user, practice_id=practice.id, practice_ods=practice.ods_code,
            patient_local_id=local_id, patient_nhs_number=nhs_number or (query.nhs_number if query else None),
            purpose=purpose, outcome=Outcome.SUCCESS, outcome_detail="request sent; the outcome follows",
            details=details, app_version=__version__,
        )

    def search(self, practice: Practice, query: PatientQuery, results: int | None,
               error: str | None = None, trace_id: str | None = None) -> JournalEntry:
        searched = {k: v for k, v in (("nhs_number", query.nhs_number), ("family", query.family),
                                      ("given", query.given),
                                      ("birth_date", query.birth_date.isoformat() if query.birth_date else None),
                                      ("condition", query.condition), ("age", _age_text(query)),
                                      ("practices", ",".join(query.practices)))
                    if v}
        return JournalEntry(
            action=Action.SEARCH, user=self.user, practice_id=practice.id, practice_ods=practice.ods_code,
            patient_nhs_number=query.nhs_number,
            outcome=Outcome.SUCCESS if error is None else Outcome.FAILURE, outcome_detail=error,
            details={"query": searched, "results": results, **({"trace_id": trace_id} if trace_id else {})},
            app_version=__version__,
        )

    def denied(self, practice: Practice, why: str, *, local_id: str | None = None, nhs_number: str | None = None,
               purpose: str | None = None, action: Action = Action.READ, flags: tuple[str, ...] = (),
               query: PatientQuery | None = None) -> JournalEntry:
        """An access the access policy refused before any request left for the practice."""
        details: dict[str, object] = {"flagged": True, "denied": True, **flag_details(flags)}
        details.setdefault("flag", "denied")
        if query is not None:
            details["query"] = self.search(practice, query, None).details["query"]
        return JournalEntry(
            action=action, user=self.user, practice_id=practice.id, practice_ods=practice.ods_code,
            patient_local_id=local_id, patient_nhs_number=nhs_number, purpose=purpose,
            outcome=Outcome.DENIED, outcome_detail=why, details=details, app_version=__version__,
        )


def patient_name(patient: PatientSummary) -> str:
    """"FAMILY, Given" as the window names a patient; "" for a pseudonymised one (the research view)."""
    if patient.pseudonym:
        return ""
    from app.core.display import display_name

    return display_name(patient)


def _age_text(query: PatientQuery) -> str | None:
    """A criteria search's age band as it was typed: "40-60", "65+", "50"."""
    low, high = query.age_min, query.age_max
    if low is None and high is None:
        return None
    if high is None:
        return f"{low}+"
    return str(high) if low == high else f"{low or 0}-{high}"


def flag_details(flags: tuple[str, ...]) -> dict[str, object]:
    """Review flags as journal details: {"flagged": true, "flag": <the first>, "flags": [...]}."""
    if not flags:
        return {}
    return {"flagged": True, "flag": flags[0], "flags": list(flags)}


