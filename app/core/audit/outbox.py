"""The outbox sender: delivers journaled entries upstream, exactly once per destination, in the background.

All state lives in the journal's outbox rows, so a restart simply carries on. Each destination is
drained by its own task, so a practice that is down or slow never holds up another. A delivery ends
in one of three ways:

- delivered: the destination has it (a repeat is harmless: every destination deduplicates by entry id;
  a 412 from a conditional create, "several copies match", also means the practice has it);
- retry: a network failure, timeout, 5xx, 408, 429, 401 or "not signed in": tried again after an
  exponential backoff with full jitter, and the destination itself rests for a growing while;
- refused: a 4xx that no retry can cure (400, 403, 404, 422 …) or a destination Mosaic cannot serve:
  kept in the journal, counted in the status and exportable. Nothing is ever dropped.

Blocking work (SQLite, the central database) runs in worker threads: the loop, and the window on it,
never wait on disk. Times come from an injectable clock and jitter from an injectable Random.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from adapters.base import Adapter, AdapterError
from app.core.audit import destinations
from app.core.audit.balp import audit_event, entry_identifier
from app.core.audit.journal import DestinationStatus, Journal, JournalError, OutboxItem
from app.core.audit.model import CENTRAL_DESTINATION, PRACTICE_PREFIX
from app.core.model import Practice
from app.core.server_identity import ServerIdentity, identity_of
from app.core.text import clean_text

if TYPE_CHECKING:
    from app.core.audit.central import CentralStore

log = logging.getLogger("mosaic.audit.outbox")

Deliver = Callable[[OutboxItem], Awaitable[None]]
StatusListener = Callable[[list[DestinationStatus]], None]
Clock = Callable[[], datetime]


class DeliveryRefused(Exception):
    """The destination will never accept this entry: keep it, show it, stop trying."""


class DeliveryDeferred(Exception):
    """The destination cannot be tried now (not signed in, not configured): try again later."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


def classify(exc: BaseException) -> Verdict:
    """What a delivery failure means. Only a clear, lasting "no" from the destination is a refusal."""
    if isinstance(exc, DeliveryRefused):
        return Verdict.REFUSED
    if isinstance(exc, AdapterError):
        status = getattr(exc, "status", None)
        if status == 412:  # conditional create matched several copies: the practice has it already
            return Verdict.DELIVERED
        if status is not None and 400 <= status < 500 and status not in (401, 408, 429):
            return Verdict.REFUSED
        if status is None and exc.kind == "unsupported":
            return Verdict.REFUSED
    return Verdict.RETRY  # network, timeouts, 5xx, 401, not signed in, and anything unexpected


#: A search across twenty practices journals twenty entries within a fraction of a second, and a sign-in
#: brings twenty practices online: each wakes the sender. Woken, it waits until the wake-ups have stopped for
#: SETTLE_S (at most SETTLE_MAX_S), then reads the outbox once and sends, instead of reading it and sending
#: while the practices' replies are still arriving (the entries are already durable in the journal). In
#: tests/perf/bench_signin_search at 20 practices, Mosaic used 257 ms of CPU per sign-in + search with the sender
#: looking at every wake-up and 121 ms with it stopped; settling (and one outbox_status query instead of one
#: per destination) brought it to ~105 ms with the sender running.
SETTLE_S = 0.1
SETTLE_MAX_S = 1.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: a delay drawn from [0, min(cap, base * 2**attempts)]."""

    base_s: float = 2.0
    cap_s: float = 600.0

    def ceiling(self, attempts: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** min(max(attempts, 0), 40))

    def delay(self, attempts: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempts))


@dataclass
class _Destination:
    """What the sender remembers about one destination between passes (lost on restart, by design)."""

    failures: int = 0  # consecutive failed batches: how long the destination rests
    blocked_until: datetime | None = None  # resting after a failure; notify() does not end it
    idle_until: datetime | None = None  # nothing due before then (as far as this process knows)
    retries: list[datetime] = field(default_factory=list)  # heap of retry times this process set
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Failure:
    retry_at: datetime
    rest_hint_s: float | None  # the deliverer's own idea of how long to wait (e.g. not signed in)


class OutboxSender:
    """Drains the journal's outbox. Create on the core loop, `start()`, `notify()` after appends, `stop()`.

    `deliverers` maps a destination prefix ("practice:", "central") to a delivery function, which
    returns when the destination has the entry and raises otherwise (see `classify`).
    """

    def __init__(self, journal: Journal, deliverers: Mapping[str, Deliver], *,
                 clock: Clock | None = None, rng: random.Random | None = None, backoff: Backoff | None = None,
                 on_status: StatusListener | None = None, batch: int = 100, concurrency: int = 4,
                 poll_s: float = 30.0, delivery_timeout_s: float = 120.0, settle_s: float = SETTLE_S,
                 settle_max_s: float = SETTLE_MAX_S) -> None:
        """`settle_s`: after a wake-up, the sender waits until wake-ups have stopped for this long (but at most
        `settle_max_s`) before it looks, so a burst of appends is read and sent in one pass (see SETTLE_S)."""
        self._journal = journal
        self._deliverers = dict(deliverers)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self.backoff = backoff or Backoff()
        self._on_status = on_status
        self._batch = batch
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._delivery_timeout_s = delivery_timeout_s
        self._settle_s = settle_s
        self._settle_max_s = settle_max_s
        self._destinations: dict[str, _Destination] = {}
        self._due_now: set[str] = set()  # destinations whose waiting entries are to be made due now (retry_now)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        #: the latest status, for a UI that asks rather than listens
        self.status: list[DestinationStatus] = []

    @property
    def sending(self) -> list[str]:
        """Destinations being delivered to right now."""
        return [name for name, state in self._destinations.items() if state.task is not None]

    # --- control -------------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name="audit-outbox")
        return self._task

    def notify(self) -> None:
        """Something was appended: look now (a destination resting after a failure keeps resting)."""
        for state in self._destinations.values():
            state.idle_until = None
        self._wake.set()

    def retry_now(self, destination: str | None = None) -> None:
        """End the rest of one destination (or all), e.g. when its practice has just signed in: its waiting
        entries become due now, whatever back-off their earlier attempts were given."""
        for name, state in self._destinations.items():
            if destination is None or name == destination:
                state.blocked_until = state.idle_until = None
                state.failures = 0
        self._due_now.update(self._destinations if destination is None else (destination,))
        self._wake.set()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let deliveries in flight finish (up to `timeout_s`), then stop. Unmarked items go next time."""
        self._stopping = True
        self._wake.set()
        tasks = [s.task for s in self._destinations.values() if s.task is not None]
        if self._task is not None:
            tasks.append(self._task)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._task = None

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("audit outbox sender started")
        try:
            while not self._stopping:
                self._wake.clear()
                await self._pass()
                if self._stopping:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), self._sleep_s())
                except TimeoutError:
                    continue  # a retry or the poll is due: look now
                await self._settle()
        finally:
            log.info("audit outbox sender stopped")

    async def _settle(self) -> None:
        """Woken: wait for the burst of wake-ups to end (quiet for settle_s, at most settle_max_s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_max_s
        while not self._stopping and self._settle_s > 0:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(self._settle_s, left))
            except TimeoutError:
                return  # quiet: the burst is over

    async def _pass(self) -> None:
        """Publish the status, and start a drain for each destination with something that may be due."""
        while self._due_now:
            destination = self._due_now.pop()
            try:
                await asyncio.to_thread(self._journal.make_due, destination, self._clock())
            except JournalError as exc:
                log.warning("audit outbox: could not bring %s's entries forward (%s)", destination, exc.kind)
        try:
            status = await asyncio.to_thread(self._journal.outbox_status)
        except JournalError as exc:
            log.warning("audit outbox: cannot read the outbox (%s); trying again shortly", exc.kind)
            return
        self.status = status
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:
                log.exception("audit outbox: the status listener failed")
        now = self._clock()
        for item in status:
            state = self._destinations.setdefault(item.destination, _Destination())
            if item.waiting and state.task is None and not self._resting(state, now):
                state.task = asyncio.get_running_loop().create_task(self._drain(item.destination, state),
                                                                    name=f"audit-outbox:{item.destination}")
                state.task.add_done_callback(functools.partial(self._drained, state))

    def _drained(self, state: _Destination, _task: asyncio.Task[None]) -> None:
        state.task = None
        self._wake.set()  # publish the new counts, and look again

    def _resting(self, state: _Destination, now: datetime) -> bool:
        return any(until is not None and now < until for until in (state.blocked_until, state.idle_until))

    def _sleep_s(self) -> float:
        """Real seconds until something may be due: the nearest rest's end, at most `poll_s`."""
        now = self._clock()
        ends = [until for s in self._destinations.values() if s.task is None
                for until in (s.blocked_until, s.idle_until) if until is not None]
        if not ends:
            return self._poll_s
        return min(self._poll_s, max(0.05, (min(ends) - now).total_seconds()))

    # --- one destination -----------------------------------------------------------------------------

    async def _drain(self, destination: str, state: _Destination) -> None:
        try:
            await self._drain_batches(destination, state)
        except JournalError as exc:
            log.warning("audit outbox: journal unavailable while delivering to %s (%s)", destination, exc.kind)
            state.blocked_until = self._clock() + timedelta(seconds=self.backoff.delay(state.failures, self._rng))
        except Exception:
            log.exception("audit outbox: delivery to %s failed unexpectedly", destination)
            state.blocked_until = self._clock() + timedelta(seconds=self.backoff.cap_s)

    async def _drain_batches(self, destination: str, state: _Destination) -> None:
        deliver = self._deliverer(destination)
        while not self._stopping:
            items = await asyncio.to_thread(self._journal.due, self._clock(), self._batch, destination)
            if not items:
                state.idle_until = self._next_known_retry(state, self._clock())
                return
            failed = asyncio.Event()
            gate = asyncio.Semaphore(self._concurrency)
            results = await asyncio.gather(*(self._one(item, deliver, gate, failed) for item in items),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result  # the journal failed (or a bug): _drain rests the destination
                if result is not None:
                    heapq.heappush(state.retries, result.retry_at)
            if failed.is_set():
                state.failures += 1
                rest = self.backoff.delay(state.failures - 1, self._rng)
                hints = [r.rest_hint_s for r in results if isinstance(r, _Failure) and r.rest_hint_s is not None]
                state.blocked_until = self._clock() + timedelta(seconds=min([rest, *hints]))
                return
            state.failures = 0
            if len(items) < self._batch:
                state.idle_until = self._next_known_retry(state, self._clock())
                return

    async def _one(self, item: OutboxItem, deliver: Deliver | None, gate: asyncio.Semaphore,
                   failed: asyncio.Event) -> _Failure | None:
        """Deliver one item and record the outcome in the journal; a _Failure when it is to be retried."""
        async with gate:
            if failed.is_set() or self._stopping:
                return None  # the destination just failed (or we are stopping): leave the item due, untouched
            try:
                if deliver is None:
                    raise DeliveryRefused(f"Mosaic does not know how to deliver to '{item.destination}'.")
                if not item.intact:  # never send (or sign a checkpoint of) an entry altered in the file
                    raise DeliveryRefused("This entry no longer matches its hash under the journal's key: the journal "
                                          "was altered. Run `mosaic audit verify` and tell your Information "
                                          "Governance lead.")
                async with asyncio.timeout(self._delivery_timeout_s):
                    await deliver(item)
                verdict, error, hint = Verdict.DELIVERED, "", None
            except Exception as exc:
                verdict, error = classify(exc), _describe(exc)
                hint = exc.retry_after_s if isinstance(exc, DeliveryDeferred) else None
            if verdict is Verdict.DELIVERED:
                await asyncio.to_thread(self._journal.mark_delivered, item.id)
                return None
            if verdict is Verdict.REFUSED:
                log.warning("audit outbox: %s refused entry %s: %s", item.destination, item.entry.entry_id, error)
                await asyncio.to_thread(self._journal.mark_refused, item.id, error)
                return None
            failed.set()
            when = self._clock() + timedelta(seconds=self.backoff.delay(item.attempts, self._rng))
            log.info("audit outbox: delivery to %s failed (attempt %d), next try at %s", item.destination,
                     item.attempts + 1, when.isoformat(timespec="seconds"))
            await asyncio.to_thread(self._journal.mark_retry, item.id, error, when)
            return _Failure(when, hint)

    def _deliverer(self, destination: str) -> Deliver | None:
        matches = [p for p in self._deliverers if destination == p or (p.endswith(":") and destination.startswith(p))]
        return self._deliverers[max(matches, key=len)] if matches else None

    def _next_known_retry(self, state: _Destination, now: datetime) -> datetime:
        """When to look at this destination again: its next retry this process scheduled, or a poll.

        Retries scheduled before a restart are not known here; the poll finds them.
        """
        while state.retries and state.retries[0] <= now:
            heapq.heappop(state.retries)
        poll = now + timedelta(seconds=self._poll_s)
        return min(state.retries[0], poll) if state.retries else poll


def _describe(exc: BaseException) -> str:
    """A failure in words fit for the user and the journal: never SQL parameters or record content."""
    if isinstance(exc, AdapterError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "The destination did not answer in time; Mosaic will try again."
    text = clean_text(str(exc)).strip() or type(exc).__name__  # a destination's words: no control characters
    return text.splitlines()[0][:300]


# --- delivery functions ----------------------------------------------------------------------------------

#: the signed-in adapter of a configured practice at this server; None when none is signed in; LookupError
#: when no configured practice has this server identity
ServerLookup = Callable[[ServerIdentity], "Adapter | None"]
#: how long to wait before trying a practice that is not signed in
NOT_SIGNED_IN_RETRY_S = 30.0
#: how long entries for a server no configured practice has (or whose server was never recorded) rest
NOT_CONFIGURED_RETRY_S = 300.0


def adapter_at_server(practices: Callable[[], Iterable[Practice]],
                      online_adapter: Callable[[str], Adapter | None]) -> ServerLookup:
    """A ServerLookup over the practice directory as it is now: only a practice whose server identity equals
    the one an entry was committed for may carry it, whatever its local id."""

    def lookup(server: ServerIdentity) -> Adapter | None:
        at_server = [p for p in practices() if identity_of(p) == server]
        if not at_server:
            raise LookupError(str(server))
        for practice in at_server:
            adapter = online_adapter(practice.id)
            if adapter is not None:
                return adapter
        return None

    return lookup


def practice_delivery(adapter_at: ServerLookup) -> Deliver:
    """Deliver to `practice:<id>@<server>` as a BALP AuditEvent, only through a signed-in practice at exactly
    that server (app/core/audit/destinations.py); otherwise the entry waits, never sent anywhere else."""

    async def deliver(item: OutboxItem) -> None:
        parsed = destinations.parse(item.destination)
        if parsed is None or parsed.server is None:
            practice_id = parsed.practice_id if parsed is not None else item.destination
            raise DeliveryDeferred(f"The server these entries for practice '{practice_id}' were meant for was not "
                                   "recorded (queued by an older Mosaic); they are kept here and not sent.",
                                   retry_after_s=NOT_CONFIGURED_RETRY_S)
        try:
            adapter = adapter_at(parsed.server)
        except LookupError as exc:
            raise DeliveryDeferred(f"No practice at {parsed.server} is configured on this computer now; its audit "
                                   "entries wait here and go only to that server.",
                                   retry_after_s=NOT_CONFIGURED_RETRY_S) from exc
        if adapter is None:
            raise DeliveryDeferred(f"Not signed in to the practice at {parsed.server}; its audit entries will go up "
                                   "once it is.", retry_after_s=NOT_SIGNED_IN_RETRY_S)
        practice = adapter.practice
        if identity_of(practice) != parsed.server:  # a lookup that got it wrong still sends nothing elsewhere
            raise DeliveryDeferred(f"The practice offered for {parsed.server} is at another server; the entries wait.",
                                   retry_after_s=NOT_CONFIGURED_RETRY_S)
        await adapter.send_audit_event(audit_event(item.entry, practice, practice.base_url),
                                       entry_identifier(item.entry))

    return deliver


def central_delivery(store: CentralStore) -> Deliver:
    """Deliver to the central store (blocking SQL in a worker thread); data the store rejects is refused."""
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError

    async def deliver(item: OutboxItem) -> None:
        try:
            await asyncio.to_thread(store.insert, item.entry, item.checkpoint)
        except (DataError, IntegrityError) as exc:
            raise DeliveryRefused(f"The central audit store rejected this entry: {_driver_message(exc)}") from exc
        except OperationalError as exc:
            raise DeliveryDeferred(f"The central audit store could not be reached: {_driver_message(exc)}") from exc
        except Exception as exc:  # permissions, missing table: for IT to fix; keep trying meanwhile
            raise DeliveryDeferred(f"The central audit store failed: {_driver_message(exc)} Tell IT.") from exc

    return deliver


def _driver_message(exc: BaseException) -> str:
    """The database's primary message only: its DETAIL lines can quote the row (patient data)."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return text.rstrip(".")[:300] + "."


def default_deliverers(adapter_at: ServerLookup, central: CentralStore | None = None) -> dict[str, Deliver]:
    """Practices through their adapters (by server identity), and the central store (entries for it wait when
    none is set)."""
    return {PRACTICE_PREFIX: practice_delivery(adapter_at),
            CENTRAL_DESTINATION: central_delivery(central) if central is not None else _no_central}


async def _no_central(item: OutboxItem) -> None:
    """Entries journaled for a central store that is no longer configured wait (not refused): the
    setting may come back, and until then they stay counted and exportable."""
    raise DeliveryDeferred("No central audit store is configured on this PC; these entries wait here.")
