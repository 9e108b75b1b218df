"""Federated search: one query to every online practice at once, answers as each practice replies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.base import AdapterError
from app.core.boundary import adapter_call
from app.core.model import PatientQuery, PatientSummary
from app.core.sessions import PracticeStatus, SessionManager

if TYPE_CHECKING:
    from app.core.policy import PolicyDecision

log = logging.getLogger("mosaic.search")


@dataclass(frozen=True)
class PracticeResults:
    """One practice's answer: patients, or why there are none from it. Never silently missing."""

    practice_id: str
    patients: tuple[PatientSummary, ...] = ()
    error: str | None = None
    note: str | None = None  # e.g. "searches by NHS number only"
    elapsed_ms: float = 0.0
    queried: bool = True  # False when no request left for this practice (not signed in, unsupported)
    trace_id: str | None = None  # the request's id at the practice, where its own audit keys on it
    refused_by_policy: bool = False  # the access policy keeps this user from this practice: not searched
    #: this kind of search is not one the practice's system can take, in words after the practice's name
    #: ("can only be searched by NHS number"): not asked, so counted apart from the practices that answered
    unsupported: str | None = None
    #: entries of the practice's answer that could not be read: counted and named (`unreadable_text`), never
    #: dropped silently (the patients shown may not be all the practice holds)
    unreadable: int = 0
    practice_name: str = ""  # for `unreadable_text`
    #: the AdapterError kind behind `error` ("timeout", "server", "bad-reply" …), for the log when the text
    #: itself may not be shown (the research view shows none of a practice's own words)
    error_kind: str | None = None
    #: local id -> what the access policy says about opening that result (decided on the core's thread, so
    #: the window marks results without reading the core's state from its own thread); empty: no policy
    access: Mapping[str, PolicyDecision] = field(default_factory=dict, compare=False)


    @property
    def unreadable_text(self) -> str | None:
        """E.g. "3 entries from Riverside Surgery could not be read"; None when every entry was read."""
        if not self.unreadable:
            return None
        n = self.unreadable
        return f"{n} {'entry' if n == 1 else 'entries'} from {self.practice_name or self.practice_id} could not be read"


@dataclass
class SearchOutcome:
    query: PatientQuery
    results: list[PracticeResults] = field(default_factory=list)

    @property
    def patients(self) -> list[PatientSummary]:
        return [p for r in self.results for p in r.patients]

    @property
    def failures(self) -> list[PracticeResults]:
        return [r for r in self.results if r.error]


@dataclass(frozen=True)
class PatientGroup:
    """The same person (by NHS number) as registered at one or more practices."""

    nhs_number: str | None
    members: tuple[PatientSummary, ...]


ResultListener = Callable[[PracticeResults], None]
#: runs on each practice's answer before anyone sees it (the audit journal commits here)
ResultGate = Callable[[PracticeResults], Awaitable[PracticeResults]]
#: runs just before a practice is asked (the audit journal commits the intent here); raising keeps the
#: request from leaving, and the practice's answer is the error
BeforeAsking = Callable[[str], Awaitable[None]]


async def federated_search(sessions: SessionManager, query: PatientQuery,
                           on_result: ResultListener | None = None, gate: ResultGate | None = None,
                           before: BeforeAsking | None = None) -> SearchOutcome:
    """Ask every practice at once. `on_result` is called as each practice answers (or fails),
    after `gate` has passed that answer; `before` runs just before a request leaves for a practice."""
    outcome = SearchOutcome(query)

    def deliver(result: PracticeResults) -> None:
        outcome.results.append(result)
        if on_result is not None:
            on_result(result)

    async def one(practice_id: str) -> None:
        result = await _search_one(sessions, practice_id, query, before)
        deliver(await gate(result) if gate is not None else result)

    await asyncio.gather(*(one(p.id) for p in sessions.practices))
    return outcome


async def _search_one(sessions: SessionManager, practice_id: str, query: PatientQuery,
                      before: BeforeAsking | None = None) -> PracticeResults:
    practice = sessions.practice(practice_id)
    state = sessions.state(practice_id)
    adapter = sessions.online_adapter(practice_id)
    if adapter is None:
        if state.status is PracticeStatus.FAILED:
            why = state.detail
        elif state.status is PracticeStatus.RETRYING:
            why = f"it is offline and Mosaic is trying again by itself ({state.detail})"
        elif state.status is PracticeStatus.SIGN_IN_NEEDED:
            why = "your sign-in has ended; sign in again to carry on"
        else:
            why = f"not signed in ({state.status})"
        return PracticeResults(practice_id, error=f"{practice.name} was not searched: {why}", queried=False)
    if query.is_criteria and not adapter.supports_criteria_search:  # "not provided", never "0 patients"
        return PracticeResults(practice_id, note=f"{practice.name} cannot be searched by study criteria: this is not "
                               "provided by this practice's system.", queried=False, practice_name=practice.name,
                               unsupported="cannot be searched by study criteria")
    if not adapter.supports_demographic_search and not query.nhs_number:
        return PracticeResults(practice_id, note=f"{practice.name} can only be searched by NHS number.",
                               queried=False, unsupported="can only be searched by NHS number")
    if before is not None:
        try:
            await before(practice_id)
        except Exception as exc:  # AuditError: without the intent in the journal, no request leaves
            return PracticeResults(practice_id, error=str(exc), queried=False, practice_name=practice.name)
    started = time.perf_counter()
    trace_id: str | None = None
    try:
        patients = await asyncio.wait_for(adapter_call(practice, adapter.search(query), "searching"),
                                          timeout=practice.timeout_s * 2 + 5)
    except AdapterError as exc:
        error, trace_id, kind = exc.message, exc.trace_id, exc.kind
    except TimeoutError:
        error, kind = f"{practice.name} did not answer the search in time.", "timeout"
    else:
        elapsed = (time.perf_counter() - started) * 1000
        log.info("practice=%s search results=%d elapsed_ms=%.0f", practice_id, len(patients), elapsed)
        return PracticeResults(practice_id, tuple(patients), elapsed_ms=elapsed, practice_name=practice.name,
                               trace_id=getattr(patients, "trace_id", None),  # Matches: this request's own id
                               unreadable=getattr(patients, "unreadable", 0))
    elapsed = (time.perf_counter() - started) * 1000
    log.info("practice=%s search failed elapsed_ms=%.0f", practice_id, elapsed)
    return PracticeResults(practice_id, error=error, elapsed_ms=elapsed, trace_id=trace_id,
                           practice_name=practice.name, error_kind=kind)


def group_by_person(patients: list[PatientSummary]) -> list[PatientGroup]:
    """Group results sharing an NHS number; patients without one stay alone. Order of first arrival."""
    groups: dict[str, list[PatientSummary]] = {}
    order: list[str | PatientSummary] = []
    for patient in patients:
        if patient.nhs_number:
            if patient.nhs_number not in groups:
                groups[patient.nhs_number] = []
                order.append(patient.nhs_number)
            groups[patient.nhs_number].append(patient)
        else:
            order.append(patient)
    return [PatientGroup(item, tuple(groups[item])) if isinstance(item, str) else PatientGroup(None, (item,))
            for item in order]
