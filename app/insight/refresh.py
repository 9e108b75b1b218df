"""Refreshing the insight store from every practice's appointment book, through the core's sessions.

Each practice the access policy gives the user insight for is read (`Adapter.activity`, through `adapter_call`, the
one door that cleans what an adapter hands back; whole books READS_AT_ONCE at a time, what changed all at once),
only what changed since its last read unless `full`, and applied to the store in one transaction per practice. The
read is streamed (`Adapter.activity_parts`): each part (about a page) is cleaned as adapter_call would clean it and
staged in the store as it arrives, so a practice's book is never held whole in memory, and the staged parts are
applied only when the read has ended (a read failing part-way has its parts dropped). A practice ends ok, "not
provided" (its system carries no appointment book: never zero) or failed, with the reason naming it; a practice
that fails leaves the figures it had before standing (nothing of its failed read is applied), and the other
practices' figures stand whatever it did. The refresh is journaled before any request leaves, and its outcome
after.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from adapters.base import Adapter, AdapterError
from app.core.activity import Activity, ActivityPart
from app.core.boundary import adapter_call
from app.core.insight_access import InsightQuery
from app.core.sessions import PracticeStatus, is_transient
from app.core.text import clean_model, is_clean

if TYPE_CHECKING:
    from app.core.model import Practice
    from app.core.service import MosaicCore

log = logging.getLogger("mosaic.insight.refresh")

OK, NOT_PROVIDED, FAILED = "ok", "not provided", "failed"
#: practices whose whole books are read at once (each with adapters/fhir_r4/activity.py's 6 searches in flight).
#: The read is CPU-bound in this process (decoding, mapping, staging: the interpreter lock), so more at once only
#: makes them all end together, and their applies (a second or so each, DuckDB's own work, which lets go of the
#: lock) then queue at the end one after another; a few at a time, the first ones' applies overlap the others'
#: reads (tests/perf/bench_insight.py, five practices: the applies' tail from ~4-6 s to ~1-2 s). Three keep 18
#: searches in flight, ~3x what the CPU takes at 100 ms a reply, so a slow server still overlaps the rest. An
#: incremental read (a page or two a search, latency-bound) is never held back.
READS_AT_ONCE = 3


class RefreshTarget(Protocol):
    """What a refresh writes to (app/insight/store.py's InsightStore). Called from worker threads, one at a time."""

    def apply(self, activity: Activity) -> None: ...

    def stage_part(self, practice_id: str, part: ActivityPart) -> None: ...

    def apply_staged(self, activity: Activity) -> None: ...

    def discard_staged(self, practice_id: str) -> None: ...

    def cursor(self, practice_id: str) -> datetime | None: ...

    def set_status(self, practice_id: str, name: str, status: str, error: str | None = None,
                   refreshed_at: datetime | None = None) -> None: ...

    def prepare(self, period: str) -> int: ...


@dataclass(frozen=True)
class PracticeRefresh:
    """How one practice's refresh ended."""

    practice_id: str
    name: str
    status: str  # OK | NOT_PROVIDED | FAILED
    error: str | None = None  # why, naming the practice (failed and not provided)
    incremental: bool = False  # read only what changed since the previous refresh
    appointments: int = 0
    slots: int = 0
    encounters: int = 0
    unreadable: int = 0  # resources in the replies that could not be read
    seconds: float = 0.0


@dataclass(frozen=True)
class RefreshReport:
    start: date
    end: date
    full: bool
    practices: tuple[PracticeRefresh, ...] = ()
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def failed(self) -> tuple[PracticeRefresh, ...]:
        return tuple(p for p in self.practices if p.status == FAILED)

    @property
    def not_provided(self) -> tuple[PracticeRefresh, ...]:
        return tuple(p for p in self.practices if p.status == NOT_PROVIDED)

    def summary(self) -> str:
        """"3 practices refreshed, 1 not provided (Hillview), 1 failed: Riverside Surgery did not …" """
        ok = sum(1 for p in self.practices if p.status == OK)
        parts = [f"{ok} of {len(self.practices)} practices refreshed"]
        if self.not_provided:
            parts.append(f"{len(self.not_provided)} not provided by their system "
                         f"({', '.join(p.name for p in self.not_provided)})")
        if self.failed:
            parts.append(f"{len(self.failed)} failed: " + "; ".join(p.error or p.name for p in self.failed))
        return "; ".join(parts)


def period_text(start: date, end: date) -> str:
    """The period as the journal and figures name it: "2026-03", or "2025-01..2026-12"."""
    first, last = f"{start:%Y-%m}", f"{end:%Y-%m}"
    return first if first == last else f"{first}..{last}"


async def refresh(core: MosaicCore, store: RefreshTarget, *, start: date, end: date, full: bool = False,
                  on_progress: Callable[[PracticeRefresh], None] | None = None) -> RefreshReport:
    """Refresh `store` from every practice the user has insight for (PolicyError when they have none). Journaled
    first (AuditError: nothing is read), then each practice concurrently; `on_progress` hears each as it ends."""
    if end < start:
        raise ValueError(f"The period ends ({end}) before it starts ({start}).")
    practices = core.insight_practices()
    period = period_text(start, end)
    ids = tuple(p.id for p in practices)
    began = time.perf_counter()
    await core.journal_insight(InsightQuery("refresh", period=period, practices=ids, extra={"full": full}))
    writing = asyncio.Lock()  # the store takes one writer at a time (a DuckDB connection is not shared by threads)

    reading = asyncio.Semaphore(READS_AT_ONCE)  # see READS_AT_ONCE

    async def one(practice: Practice) -> PracticeRefresh:
        done = await _refresh_practice(core, store, practice, start, end, full, writing, reading)
        if on_progress is not None:
            on_progress(done)
        return done

    results = await asyncio.gather(*(one(p) for p in practices))
    async with writing:  # the changed months' and weeks' protected tables, worked out once and kept in the store
        await asyncio.to_thread(_prepare, store, period)
    report = RefreshReport(start, end, full, tuple(results), seconds=time.perf_counter() - began)
    outcomes = {r.practice_id: r.status for r in results}
    await core.journal_insight(InsightQuery("refresh", period=period, practices=ids,
                                            extra={"full": full, "outcomes": outcomes}),
                               outcome_detail=report.summary(), failed=bool(report.failed))
    return report


async def _refresh_practice(core: MosaicCore, store: RefreshTarget, practice: Practice, start: date, end: date,
                            full: bool, writing: asyncio.Lock, reading: asyncio.Semaphore) -> PracticeRefresh:
    began = time.perf_counter()
    since: datetime | None = None
    read = {"slots": 0, "appointments": 0, "encounters": 0}

    async def on_part(part: ActivityPart) -> None:
        part = clean_part(part)
        read["slots"] += len(part.slots)
        read["appointments"] += len(part.appointments)
        read["encounters"] += len(part.encounters)
        async with writing:
            await asyncio.to_thread(store.stage_part, practice.id, part)

    try:
        async with writing:
            since = None if full else await asyncio.to_thread(store.cursor, practice.id)
            await asyncio.to_thread(store.discard_staged, practice.id)  # anything left of an earlier failed read
        adapter = await _online_adapter(core, practice)
        try:
            async with reading if since is None else contextlib.nullcontext():  # what changed is a page or two
                activity = await adapter_call(practice, adapter.activity_parts(start, end, since, on_part),
                                              "reading the appointment book")
            if activity.practice_id != practice.id:  # never file one practice's figures under another
                raise AdapterError(f"{practice.name} answered with the appointment book of another practice "
                                   f"('{activity.practice_id}'), so nothing from it is kept.", "bad-reply")
            async with writing:
                await asyncio.to_thread(store.apply_staged, activity)
                await asyncio.to_thread(store.set_status, practice.id, practice.name, OK, None, _now())
        except BaseException:  # nothing of a read that did not end is applied
            async with writing:
                await asyncio.shield(asyncio.to_thread(store.discard_staged, practice.id))
            raise
    except AdapterError as exc:
        status = NOT_PROVIDED if exc.kind == "unsupported" else FAILED
        error = _naming(practice, exc.message)
        if status == FAILED:
            log.warning("practice=%s insight refresh failed (%s)", practice.id, exc.kind)
            if is_transient(exc):
                core.sessions.check_soon(practice.id)  # dropped? then it shows, and is retried
        return await _ended(store, practice, status, error, writing, began, since)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # the store could not take it: named, and the other practices carry on
        log.exception("practice=%s insight store failed", practice.id)
        error = f"{practice.name}: its figures could not be stored ({type(exc).__name__}: {exc})."
        return await _ended(store, practice, FAILED, error, writing, began, since)
    return PracticeRefresh(practice.id, practice.name, OK, incremental=since is not None,
                           appointments=read["appointments"], slots=read["slots"], encounters=read["encounters"],
                           unreadable=activity.unreadable, seconds=time.perf_counter() - began)


def _prepare(store: RefreshTarget, period: str) -> None:
    """The store's protected tables for the period made ahead (InsightStore.prepare), so that no query after
    the refresh works suppression out on the spot. Failing is logged, not the refresh's failure: a query then
    works out what it needs itself."""
    try:
        made = store.prepare(period)
    except Exception:
        log.exception("insight protections for %s not made ahead", period)
    else:
        log.info("insight protections for %s: %d unit tables made ahead", period, made)


def clean_part(part: ActivityPart) -> ActivityPart:
    """`part` with every string cleaned, as `adapter_call` cleans what an adapter returns (app/core/text.py),
    but checked a part at a time: its text fields joined and checked in one pass (a page of 2,000 rows in well
    under a millisecond, where walking each row's fields took ~8 s of a five-practice refresh). Only a part
    holding a control or bidi character is walked and cleaned field by field."""
    texts: list[str] = []
    for rows in (part.slots, part.appointments, part.encounters):
        if rows:
            plain, nested = _text_fields(type(rows[0]))
            texts.extend(filter(None, chain.from_iterable(map(attrgetter(*plain), rows))))
            for name in nested:
                texts.extend(chain.from_iterable(map(attrgetter(name), rows)))
    return part if set(map(type, texts)) <= {str} and is_clean("".join(texts)) else clean_model(part)


_TEXT_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _text_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fields holding a string or None, fields holding a tuple of strings) of a row class of app/core/activity,
    by their annotations: a field added to the contract is checked without a change here."""
    if cls not in _TEXT_FIELDS:
        fields = dataclasses.fields(cls)
        nested = tuple(f.name for f in fields if str(f.type).startswith("tuple[str"))
        plain = tuple(f.name for f in fields if f.name not in nested and "str" in str(f.type))
        _TEXT_FIELDS[cls] = plain, nested
    return _TEXT_FIELDS[cls]


async def _ended(store: RefreshTarget, practice: Practice, status: str, error: str, writing: asyncio.Lock,
                 began: float, since: datetime | None) -> PracticeRefresh:
    """Record a practice that did not refresh; its figures from before stay as they were."""
    try:
        async with writing:
            await asyncio.to_thread(store.set_status, practice.id, practice.name, status, error, _now())
    except Exception as exc:  # still reported: the status row is the store's, the report is the user's
        log.warning("practice=%s insight status not stored (%s)", practice.id, type(exc).__name__)
    return PracticeRefresh(practice.id, practice.name, status, error, incremental=since is not None,
                           seconds=time.perf_counter() - began)


async def _online_adapter(core: MosaicCore, practice: Practice) -> Adapter:
    """The practice's session, signing in to it first when it is not online yet (the CLI signs in only the
    practices a refresh needs); AdapterError naming the practice when it cannot be reached."""
    state = core.sessions.state(practice.id)
    if state.status is not PracticeStatus.ONLINE and not core.needs_sign_in:
        await core.start_outbox()
        state = await core.sessions.connect(practice.id)
    adapter = core.sessions.online_adapter(practice.id)
    if adapter is None:
        reason = state.detail or f"not signed in ({state.status})"
        raise AdapterError(f"{practice.name} is not available: {reason}", "network")
    return adapter


def _naming(practice: Practice, message: str) -> str:
    return message if practice.name in message else f"{practice.name}: {message}"


def _now() -> datetime:
    return datetime.now(UTC)
