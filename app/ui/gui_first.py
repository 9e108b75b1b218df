"""The GUI thread first: the core's asyncio loop waits its turn while the GUI thread is handling events.

Why. CPython runs one thread's Python at a time (the interpreter lock), and Qt calls into Python far more
often than the code shows: the first call of every virtual method on every widget made from Python asks
whether Python overrides it, and every event filter, slot and model read is Python. While the core's thread
is busy in Python (httpx spends ~3 ms of CPU per request: a record from a practice searched type by type is
13 requests, ~50 ms), each of those calls waits for the lock to be handed over. A trace of the GUI
thread's context switches (`perf record -e sched:sched_switch`) in the 10-record burst (issue 9) found it
switched out ~1,600 times in 580 ms of stalls, almost all waiting for the lock, and on the CPU only ~40% of
the time: GUI work of 10-20 ms became stalls of 100 ms and more. A smaller switch interval
(`sys.setswitchinterval`) made it no better.

What. The core's loop runs on a selector (`GatedSelector`) that, each time the loop wakes, waits while the
GUI thread is busy with work of its own: throughout `gui_busy()` (answers from the core, a record's build
steps, search results, history rows) and for HOLD_S after it or after `gui_working()` (a new tab), while Qt
lays the work out and paints it; at most MAX_WAIT_S a turn, so the core never starves. Only the loop's
turns between callbacks are gated (a callback already running finishes): no request or journal write is
cut short; they start a few milliseconds later while the window is busy.
"""

from __future__ import annotations

import contextlib
import selectors
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

MAX_WAIT_S = 0.025  # the longest the core waits for the GUI thread at one turn of its loop
HOLD_S = 0.02  # after the GUI thread's own work begins (a record's step, an answer), the core waits this long

_gates: weakref.WeakSet[GuiFirstGate] = weakref.WeakSet()


def gui_working() -> None:
    """The GUI thread is starting work that Qt will lay out and paint (a record's build step, answers from
    the core, a new tab): the core's loop leaves it the interpreter lock for the next HOLD_S."""
    for gate in list(_gates):
        gate.gui_working()


@contextlib.contextmanager
def gui_busy() -> Iterator[None]:
    """Around the GUI thread's own Python work (putting search results or a record's sections on screen):
    the core's loop waits (MAX_WAIT_S a turn at most) until it ends, and HOLD_S more while Qt lays it out."""
    gates = list(_gates)
    for gate in gates:
        gate.enter()
    try:
        yield
    finally:
        for gate in gates:
            gate.leave()


class GuiFirstGate:
    """Closed for HOLD_S after the GUI thread starts work of its own (`gui_working`), open otherwise.

    A time rather than Qt's own "about to wait for events" signal: the GUI thread's event dispatcher (glib)
    says so only when it really blocks, not between busy passes, and a Python slot on it ran inside Qt's
    dispatcher on every pass (a garbage collection there crashed the test process once)."""

    def __init__(self) -> None:
        self._released = threading.Event()  # set only when the gate opens for good
        self._busy_until = 0.0
        self._depth = 0  # inside gui_busy()
        self._for_good = False
        _gates.add(self)

    def enter(self) -> None:
        self._depth += 1

    def leave(self) -> None:
        self._depth = max(0, self._depth - 1)
        self.gui_working()

    def gui_working(self) -> None:
        if not self._for_good:
            self._busy_until = time.monotonic() + HOLD_S

    def open_for_good(self) -> None:
        """The GUI no longer has priority (the window is closing and waits for the core to finish)."""
        self._for_good = True
        self._busy_until = 0.0
        self._depth = 0
        self._released.set()

    def wait_turn(self) -> None:
        """On the core's thread: wait (without the interpreter lock) while the GUI thread is busy."""
        if self._for_good:
            return
        left = MAX_WAIT_S if self._depth else self._busy_until - time.monotonic()
        if left > 0:
            self._released.wait(min(left, MAX_WAIT_S))


class GatedSelector(selectors.DefaultSelector):
    """The platform's default selector, which lets the GUI thread go first after every wait for I/O."""

    def __init__(self, gate: GuiFirstGate) -> None:
        super().__init__()
        self._gate = gate

    def select(self, timeout: float | None = None) -> Any:
        ready = super().select(timeout)
        self._gate.wait_turn()
        return ready
