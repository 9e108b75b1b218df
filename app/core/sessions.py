"""Sessions to every configured practice, opened concurrently; one slow practice delays nobody."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from adapters.base import Adapter, AdapterError, adapter_for
from app.core.model import Practice, ServerInfo
from app.core.secrets import SecretError, resolve_secret

log = logging.getLogger("mosaic.sessions")


class PracticeStatus(StrEnum):
    OFFLINE = "offline"  # not signed in (yet), or signed out
    CONNECTING = "connecting"
    ONLINE = "online"
    FAILED = "failed"


@dataclass(frozen=True)
class PracticeState:
    practice: Practice
    status: PracticeStatus
    detail: str = ""  # the reason when failed
    server: ServerInfo | None = None
    since: datetime | None = None

    @property
    def round_trip_ms(self) -> float | None:
        return self.server.round_trip_ms if self.server else None


StateListener = Callable[[PracticeState], None]
AdapterFactory = Callable[[Practice, "str | None"], Adapter]


class SessionManager:
    """Owns one adapter per practice. Lives on the core's asyncio loop."""

    def __init__(self, practices: list[Practice], on_state: StateListener | None = None,
                 adapter_factory: AdapterFactory = adapter_for) -> None:
        self._practices = {p.id: p for p in practices}
        self._adapters: dict[str, Adapter] = {}
        self._states = {p.id: PracticeState(p, PracticeStatus.OFFLINE) for p in practices}
        self._on_state = on_state
        self._factory = adapter_factory
        self._connecting: dict[str, asyncio.Task[PracticeState]] = {}

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
        """Connect to every practice at once; returns when all have settled (online or failed)."""
        return list(await asyncio.gather(*(self.connect(pid) for pid in self._practices)))

    async def connect(self, practice_id: str) -> PracticeState:
        """Connect (or retry) one practice. Concurrent calls for the same practice share one attempt."""
        running = self._connecting.get(practice_id)
        if running is not None and not running.done():
            return await asyncio.shield(running)
        task = asyncio.ensure_future(self._connect(practice_id))
        self._connecting[practice_id] = task
        return await asyncio.shield(task)

    async def _connect(self, practice_id: str) -> PracticeState:
        practice = self.practice(practice_id)
        self._set(PracticeState(practice, PracticeStatus.CONNECTING))
        old = self._adapters.pop(practice_id, None)
        if old is not None:
            await _close_quietly(old)
        started = time.perf_counter()
        try:
            secret = resolve_secret(practice.id, practice.name) if needs_secret(practice) else None
            adapter = self._factory(practice, secret)
            self._adapters[practice_id] = adapter
            # An adapter enforces its own timeouts; this outer bound only guards against a broken one.
            info = await asyncio.wait_for(adapter.connect(), timeout=practice.timeout_s * 2 + 5)
        except (AdapterError, SecretError) as exc:
            state = PracticeState(practice, PracticeStatus.FAILED, str(exc))
        except TimeoutError:
            state = PracticeState(practice, PracticeStatus.FAILED,
                                  f"{practice.name} did not answer within {practice.timeout_s * 2 + 5:.0f} s.")
        except Exception as exc:  # an adapter bug must not take the other practices down
            log.exception("practice=%s connect crashed", practice_id)
            state = PracticeState(practice, PracticeStatus.FAILED,
                                  f"{practice.name}: unexpected error ({type(exc).__name__}). See the log.")
        else:
            state = PracticeState(practice, PracticeStatus.ONLINE, server=info)
        log.info("practice=%s status=%s elapsed_ms=%.0f", practice_id, state.status,
                 (time.perf_counter() - started) * 1000)
        self._set(state)
        return state

    def mark_failed(self, practice_id: str, reason: str) -> None:
        """A practice that stopped answering mid-session is shown as failed until retried."""
        self._set(PracticeState(self.practice(practice_id), PracticeStatus.FAILED, reason))

    async def sign_out(self) -> None:
        adapters, self._adapters = self._adapters, {}
        await asyncio.gather(*(_close_quietly(a) for a in adapters.values()))
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
