"""Latency and fault injection for a demo practice server, changeable at runtime from any thread.

    server.faults.latency_ms = 150                      # every reply, from now on
    with server.faults.override(mode="http-503", times=2):
        ...                                             # the next two requests get a 503

Rates (`fail_rate`, `slow_rate`, `malformed_rate`) draw from a seeded generator, so a run that makes
the same requests in the same order sees the same faults.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

FaultMode = Literal["malformed-json", "wrong-content-type", "oversized", "hang", "http-500", "http-503",
                    "auth-fail", "down"]
MODES: frozenset[str] = frozenset(get_args(FaultMode))


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0  # added to every reply
    fail_rate: float = 0.0  # share of replies that are HTTP 500
    slow_rate: float = 0.0  # share of replies delayed by a further slow_ms
    slow_ms: float = 0.0
    malformed_rate: float = 0.0  # share of replies with truncated JSON
    mode: FaultMode | None = None  # forced for every matching request while set
    oversize_bytes: int = 64 * 1024 * 1024  # body size for mode "oversized"
    oversize_chunked: bool = False  # send "oversized" without a Content-Length
    hang_s: float = 600.0  # "hang" gives up (closing without reply) after this long
    match: str | None = None  # mode and rates apply only to paths containing this text
    times: int | None = None  # mode applies to this many more matching requests, then clears


_FIELDS = frozenset(f.name for f in fields(FaultSettings))


@dataclass(frozen=True)
class Decision:
    """What to do with one request: wait `delay_s`, then act (None: answer normally)."""

    delay_s: float
    action: str | None
    settings: FaultSettings


class Faults:
    """The fault settings of one server. Attributes read and write like FaultSettings fields."""

    def __init__(self, seed: int = 0, **settings: Any) -> None:
        object.__setattr__(self, "_lock", threading.Condition())
        object.__setattr__(self, "_rng", random.Random(f"faults:{seed}"))
        object.__setattr__(self, "_settings", _checked(FaultSettings(), settings))
        object.__setattr__(self, "counts", Counter())  # action -> how many times it was applied
        object.__setattr__(self, "hanging", 0)  # requests held by "hang" right now

    # -- settings -----------------------------------------------------------------------------

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS:
            return getattr(self._settings, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELDS:
            raise AttributeError(f"Faults has no setting '{name}'")
        self.set(**{name: value})

    def set(self, **changes: Any) -> FaultSettings:
        """Change some settings; returns the previous ones."""
        with self._lock:
            previous = self._settings
            object.__setattr__(self, "_settings", _checked(previous, changes))
            return previous

    def reset(self) -> None:
        with self._lock:
            object.__setattr__(self, "_settings", FaultSettings())

    @contextmanager
    def override(self, **changes: Any) -> Iterator[Faults]:
        """Apply `changes` inside the block and restore the previous settings after it."""
        previous = self.set(**changes)
        try:
            yield self
        finally:
            with self._lock:
                object.__setattr__(self, "_settings", previous)

    # -- used by the server -------------------------------------------------------------------

    def decide(self, path: str) -> Decision:
        with self._lock:
            s = self._settings
            delay = s.latency_ms / 1000
            if s.match is not None and s.match not in path:
                return Decision(delay, None, s)
            action: str | None = None
            if s.mode is not None and (s.times is None or s.times > 0):
                action = s.mode
                if s.times is not None:
                    left = s.times - 1
                    object.__setattr__(self, "_settings", replace(s, times=left, mode=s.mode if left else None))
            rng = self._rng
            # draw every rate on every request so the sequence does not depend on which are set
            failed, malformed, slow = rng.random() < s.fail_rate, rng.random() < s.malformed_rate, \
                rng.random() < s.slow_rate
            if action is None:
                action = "http-500" if failed else "malformed-json" if malformed else None
            if slow:
                delay += s.slow_ms / 1000
            if action:
                self.counts[action] += 1
            return Decision(delay, action, s)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Count a request as hanging while inside the block (tests wait for it)."""
        with self._lock:
            object.__setattr__(self, "hanging", self.hanging + 1)
            self._lock.notify_all()
        try:
            yield
        finally:
            with self._lock:
                object.__setattr__(self, "hanging", self.hanging - 1)
                self._lock.notify_all()

    def wait_for_hanging(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests are held by "hang"; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self.hanging >= count, timeout)


def _checked(base: FaultSettings, changes: dict[str, Any]) -> FaultSettings:
    unknown = set(changes) - _FIELDS
    if unknown:
        raise TypeError(f"unknown fault settings: {', '.join(sorted(unknown))}")
    new = replace(base, **changes)
    if new.mode is not None and new.mode not in MODES:
        raise ValueError(f"unknown fault mode {new.mode!r}; use one of {', '.join(sorted(MODES))}")
    for name in ("fail_rate", "slow_rate", "malformed_rate"):
        if not 0.0 <= getattr(new, name) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    for name in ("latency_ms", "slow_ms", "hang_s"):
        if getattr(new, name) < 0:
            raise ValueError(f"{name} must not be negative")
    if new.oversize_bytes < 0 or (new.times is not None and new.times < 0):
        raise ValueError("oversize_bytes and times must not be negative")
    return new


def oversized_body(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """Exactly `size` bytes of valid JSON (a Bundle holding one huge Binary), produced in pieces."""
    head = b'{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Binary",' \
           b'"id":"huge","contentType":"application/octet-stream","data":"'
    tail = b'"}}]}'
    if size < len(head) + len(tail):
        yield b"{" + b" " * max(size - 2, 0) + b"}" if size >= 2 else b"0"[:size]
        return
    yield head
    left = size - len(head) - len(tail)
    block = b"A" * chunk
    while left > 0:
        piece = block if left >= chunk else block[:left]
        left -= len(piece)
        yield piece
    yield tail
