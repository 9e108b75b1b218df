"""Sessions to every configured practice, opened concurrently; one slow practice delays nobody.

A practice that drops (refused connections, timeouts, 5xx) goes to RETRYING and is tried again by itself,
with exponential backoff and jitter, until it answers: the whole network going away and coming back is the
same, practice by practice. Online practices get a health check every `health_interval_s` (and at once
after a failed request), so the panel says which practices are live. Checks and retries read only the
server's metadata (and prove the credentials): no patient data, nothing journaled.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from adapters.base import Adapter, AdapterError, adapter_for
from app.core.model import Practice, ServerInfo
from app.core.secrets import SecretError, resolve_secret
from app.core.text import clean_model

log = logging.getLogger("mosaic.sessions")


class PracticeStatus(StrEnum):
    OFFLINE = "offline"  # not signed in (yet), or signed out
    CONNECTING = "connecting"
    ONLINE = "online"
    FAILED = "failed"  # needs someone to act (credentials, configuration); Retry tries again
    RETRYING = "retrying"  # dropped or unreachable: tried again by itself at retry_at
    SIGN_IN_NEEDED = "sign-in-needed"  # the user's sign-in ended and could not be renewed


@dataclass(frozen=True)
class PracticeState:
    practice: Practice
    status: PracticeStatus
    detail: str = ""  # the reason when failed
    server: ServerInfo | None = None
    since: datetime | None = None
    kind: str = ""  # the AdapterError kind when failed or retrying
    retry_at: datetime | None = None  # RETRYING: when the next attempt starts (None: trying now)
    attempt: int = 0  # RETRYING: how many attempts have failed in a row

    @property
    def round_trip_ms(self) -> float | None:
        return self.server.round_trip_ms if self.server else None


@dataclass(frozen=True)
class Backoff:
    """When to try a dropped practice again: first_s, then doubling up to cap_s, each delay shortened by up
    to `jitter` of itself at random (so twenty practices that dropped together do not return in step)."""

    first_s: float = 2.0
    factor: float = 2.0
    cap_s: float = 60.0
    jitter: float = 0.3

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.cap_s, self.first_s * self.factor ** max(0, failures))
        return base * (1.0 - self.jitter * rng.random())


#: how often an online practice is checked, in seconds
HEALTH_INTERVAL_S = 30.0


def is_transient(exc: BaseException) -> bool:
    """A failure that may go away by itself: no answer, a dropped connection, a timeout, a 5xx or 429."""
    if isinstance(exc, TimeoutError):
        return True
    if not isinstance(exc, AdapterError):
        return False
    if exc.kind in ("network", "timeout"):
        return True
    status = getattr(exc, "status", None)
    return exc.kind == "server" and isinstance(status, int) and (status >= 500 or status == 429)


StateListener = Callable[[PracticeState], None]
AdapterFactory = Callable[[Practice, "str | None"], Adapter]


class SessionManager:
    """Owns one adapter per practice. Lives on the core's asyncio loop."""

    def __init__(self, practices: list[Practice], on_state: StateListener | None = None,
                 adapter_factory: AdapterFactory = adapter_for, *, backoff: Backoff | None = None,
                 health_interval_s: float | None = HEALTH_INTERVAL_S, rng: random.Random | None = None) -> None:
        """`backoff` paces the retries of a dropped practice; `health_interval_s` (None: never) how often
        online practices are checked. Tests pass fast ones; `rng` draws the jitter."""
        self._practices = {p.id: p for p in practices}
        self._adapters: dict[str, Adapter] = {}
        self._states = {p.id: PracticeState(p, PracticeStatus.OFFLINE) for p in practices}
        self._on_state = on_state
        self._factory = adapter_factory
        self._connecting: dict[str, asyncio.Task[PracticeState]] = {}
        self._backoff = backoff or Backoff()
        self._health_interval = health_interval_s
        self._rng = rng or random.Random()
        self._failures: dict[str, int] = {}  # practice id -> transient failures in a row
        self._retries: dict[str, asyncio.Task[None]] = {}  # practice id -> the waiting retry
        self._checks: set[asyncio.Task[PracticeState]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._epoch = 0  # +1 at each sign-out: attempts begun before it schedule nothing after it
        self._waiting_for_sign_in = False  # the user's sign-in lapsed: nothing connects until sign_in

    @property
    def practices(self) -> list[Practice]:
        return list(self._practices.values())

    def practice(self, practice_id: str) -> Practice:
        try:
            return self._practices[practice_id]
        except KeyError:
            known = ", ".join(self._practices) or "none configured"
            raise KeyError(f"No practice with id '{practice_id}' (known: {known}).") from None

    def state(self, practice_id: str) -> PracticeState:
        return self._states[practice_id]

    def states(self) -> list[PracticeState]:
        return [self._states[pid] for pid in self._practices]

    def online_adapter(self, practice_id: str) -> Adapter | None:
        if self._states[practice_id].status is PracticeStatus.ONLINE:
            return self._adapters.get(practice_id)
        return None

    async def sign_in(self) -> list[PracticeState]:
        """Connect to every practice at once; returns when all have settled (online, failed, or retrying
        by itself)."""
        self._waiting_for_sign_in = False
        return list(await asyncio.gather(*(self.connect(pid) for pid in self._practices)))

    async def connect(self, practice_id: str) -> PracticeState:
        """Connect (or retry now) one practice. Concurrent calls for the same practice share one attempt."""
        self.practice(practice_id)
        self._cancel_retry(practice_id)
        self._failures.pop(practice_id, None)  # asked for: the backoff starts again from the first delay
        self._start_watching()
        return await self._attempt(practice_id, fresh=True)

    async def _attempt(self, practice_id: str, *, fresh: bool) -> PracticeState:
        if self._waiting_for_sign_in:  # a health check or retry that began as the sign-in lapsed
            return self._states[practice_id]
        running = self._connecting.get(practice_id)
        if running is not None and not running.done():
            return await asyncio.shield(running)
        task = asyncio.ensure_future(self._connect(practice_id, fresh=fresh))
        self._connecting[practice_id] = task
        return await asyncio.shield(task)

    async def _connect(self, practice_id: str, *, fresh: bool = True) -> PracticeState:
        """`fresh`: a new adapter (sign-in, Retry). Otherwise the practice's adapter, if it has one, is asked
        again (a health check or an automatic retry: its cached token and connections are kept)."""
        practice = self.practice(practice_id)
        epoch = self._epoch
        adapter = None if fresh else self._adapters.get(practice_id)
        if fresh:
            self._set(PracticeState(practice, PracticeStatus.CONNECTING))
            old = self._adapters.pop(practice_id, None)
            if old is not None:
                await _close_quietly(old)
        started = time.perf_counter()
        kind = ""
        try:
            if adapter is None:
                secret = resolve_secret(practice.id, practice.name) if needs_secret(practice) else None
                adapter = self._factory(practice, secret)
                self._adapters[practice_id] = adapter
            # An adapter enforces its own timeouts; this outer bound only guards against a broken one.
            info = clean_model(await asyncio.wait_for(adapter.connect(), timeout=practice.timeout_s * 2 + 5))
        except (AdapterError, SecretError) as exc:
            kind = exc.kind if isinstance(exc, AdapterError) else "auth"
            state = PracticeState(practice, PracticeStatus.FAILED, str(exc), kind=kind)
            if is_transient(exc):
                state = replace(state, status=PracticeStatus.RETRYING)
        except TimeoutError:
            state = PracticeState(practice, PracticeStatus.RETRYING, f"{practice.name} did not answer within "
                                  f"{practice.timeout_s * 2 + 5:.0f} s.", kind="timeout")
        except Exception as exc:  # an adapter bug must not take the other practices down
            log.exception("practice=%s connect crashed", practice_id)
            state = PracticeState(practice, PracticeStatus.FAILED,
                                  f"{practice.name}: unexpected error ({type(exc).__name__}). See the log.")
        else:
            state = PracticeState(practice, PracticeStatus.ONLINE, server=info)
        if epoch != self._epoch or self._waiting_for_sign_in:  # signed out or lapsed meanwhile: not counted
            if adapter is not None and self._adapters.get(practice_id) is adapter:
                del self._adapters[practice_id]
                await _close_quietly(adapter)
            return self._states[practice_id]
        if state.status is PracticeStatus.RETRYING:
            state = self._schedule_retry(state)
        elif state.status is PracticeStatus.ONLINE:
            self._failures.pop(practice_id, None)
        log.info("practice=%s status=%s kind=%s elapsed_ms=%.0f", practice_id, state.status, kind or "-",
                 (time.perf_counter() - started) * 1000)
        self._set(state)
        return state

    # --- dropped practices: retried with backoff; online ones: checked now and then -------------------

    def _schedule_retry(self, state: PracticeState) -> PracticeState:
        """Arrange the next attempt for a practice that did not answer; the state says when."""
        practice_id = state.practice.id
        failures = self._failures.get(practice_id, 0)
        self._failures[practice_id] = failures + 1
        delay = self._backoff.delay(failures, self._rng)
        self._cancel_retry(practice_id)
        self._retries[practice_id] = asyncio.ensure_future(self._retry_after(practice_id, delay))
        log.info("practice=%s retrying in %.1f s (failure %d)", practice_id, delay, failures + 1)
        return replace(state, retry_at=datetime.now(UTC) + timedelta(seconds=delay), attempt=failures + 1)

    async def _retry_after(self, practice_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        state = self._states[practice_id]
        if state.status is not PracticeStatus.RETRYING:
            return
        self._retries.pop(practice_id, None)  # from here this attempt schedules the next one itself
        self._set(replace(state, retry_at=None))  # "trying again now"
        await self._attempt(practice_id, fresh=False)

    def _cancel_retry(self, practice_id: str) -> None:
        task = self._retries.pop(practice_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def check_soon(self, practice_id: str) -> None:
        """A request to this practice just failed: check it now rather than at the next round. An online
        practice that does not answer goes to RETRYING."""
        if self._states[practice_id].status is not PracticeStatus.ONLINE or self._waiting_for_sign_in:
            return
        running = self._connecting.get(practice_id)
        if running is not None and not running.done():
            return
        task = asyncio.ensure_future(self._attempt(practice_id, fresh=False))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _start_watching(self) -> None:
        if self._health_interval is not None and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.ensure_future(self._watch(self._health_interval))

    async def _watch(self, interval: float) -> None:
        """Check every online practice each `interval` seconds (one sleep per round: no busy loop)."""
        while True:
            await asyncio.sleep(interval)
            for practice_id in self._practices:
                self.check_soon(practice_id)

    async def require_sign_in(self, reason: str) -> None:
        """The user's sign-in ended and could not be renewed: close every session (no request leaves on
        the user's behalf) and show each practice as needing sign-in until `sign_in` runs again. From
        here no health check, retry or request failure opens a session again (one that began just before
        could, while the sessions were closing: seen once in tests/core/test_long_sessions.py)."""
        self._waiting_for_sign_in = True
        await self._stop()
        for practice in self._practices.values():
            self._set(PracticeState(practice, PracticeStatus.SIGN_IN_NEEDED, reason))

    async def _stop(self) -> None:
        self._epoch += 1
        tasks = [t for t in (*self._retries.values(), *self._checks, self._watcher) if t is not None]
        self._retries.clear()
        self._failures.clear()
        self._watcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        adapters, self._adapters = self._adapters, {}
        await asyncio.gather(*(_close_quietly(a) for a in adapters.values()))

    def mark_failed(self, practice_id: str, reason: str) -> None:
        """A practice that stopped answering mid-session is shown as failed until retried."""
        self._set(PracticeState(self.practice(practice_id), PracticeStatus.FAILED, reason))

    async def sign_out(self) -> None:
        """Close every session, stop every retry and check."""
        await self._stop()
        for pid, practice in self._practices.items():
            if self._states[pid].status is not PracticeStatus.OFFLINE:
                self._set(PracticeState(practice, PracticeStatus.OFFLINE))

    def _set(self, state: PracticeState) -> None:
        state = replace(state, since=datetime.now(UTC))
        self._states[state.practice.id] = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("state listener failed")


def needs_secret(practice: Practice) -> bool:
    """Whether a practice's sign-in needs a secret from the environment or keyring (GP Connect sends a
    JWT of its own; a SMART key may come from a key file IT named)."""
    if practice.auth == "private-key-jwt":
        return not practice.key_file
    return practice.auth != "none"


async def _close_quietly(adapter: Adapter) -> None:
    try:
        await adapter.close()
    except Exception:
        log.debug("close failed", exc_info=True)
