"""The GUI thread first: the core's asyncio loop waits its turn while the GUI thread is handling events.

Why. CPython runs one thread's Python at a time (the interpreter lock), and Qt calls into Python far more
often than the code shows: the first call of every virtual method on every widget made from Python asks
whether Python overrides it, and every event filter, slot and model read is Python. While the core's thread
is busy in Python (httpx 0.28 spent ~4 ms of CPU per request, httpx2 ~1.9: a record from a practice searched
type by type is 13 requests), each of those calls waits for the lock to be handed over. A trace of the GUI
thread's context switches (`perf record -e sched:sched_switch`) in the 10-record burst (issue 9) found it
switched out ~1,600 times in 580 ms of stalls, almost all waiting for the lock, and on the CPU only ~40% of
the time: GUI work of 10-20 ms became stalls of 100 ms and more. A smaller switch interval
(`sys.setswitchinterval`) made it no better.

What. The core's loop (`GuiFirstLoop`) passes a gate before every callback and every step of its tasks,
and each time it wakes for I/O (`GatedSelector`). The gate is closed while the GUI thread works: throughout
`gui_busy()` (answers from the core, a record's build steps, search results, history rows), for HOLD_S after
it or after `gui_working()` (a new tab), and, where the platform gives one thread another's CPU clock, while
the GUI thread's clock runs (`GuiActivity`: Qt's layout and painting, which nothing marks). Per-callback,
because one turn of the loop runs every callback ready when it began: in a burst of records a turn was 20-60
ms of the core's Python with the gate open (per-stall CPU clocks: the GUI thread 5-13 ms, the core 22-40 ms).
The core waits at most MAX_WAIT_S, then runs FREE_RUN_S unhindered, so it never starves. A callback already
running finishes: no request or journal write is cut short; they start a few milliseconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import selectors
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

MAX_WAIT_S = 0.025  # the longest the core waits for the GUI thread at a time
FREE_RUN_S = 0.005  # after waiting that long, the core runs this long before it waits again: never starved
HOLD_S = 0.02  # after the GUI thread's own work begins (a record's step, an answer), the core waits this long
ACTIVE_SHARE = 0.2  # the GUI thread is working when it used more than this share of a CPU since the core looked
LOOK_EVERY_S = 0.001  # the core reads the GUI thread's clock at most this often (a system call)
PROBE_S = 0.001  # standing aside, the core looks again after this long
CHECK_EVERY_S = 0.004  # running without a break this long, the core stands aside PROBE_S to see if the GUI works

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
    """Closed while the GUI thread is working: inside `gui_busy()`, for HOLD_S after `gui_working()`, and,
    where the platform can tell, while the GUI thread's own CPU clock says it is running (`GuiActivity`).

    A time and a clock rather than Qt's own "about to wait for events" signal: the GUI thread's event
    dispatcher (glib) says so only when it really blocks, not between busy passes, and a Python slot on it
    ran inside Qt's dispatcher on every pass (a garbage collection there crashed the test process once)."""

    def __init__(self, gui_thread: int | None = None) -> None:
        self._released = threading.Event()  # set only when the gate opens for good
        self._busy_until = 0.0
        self._depth = 0  # inside gui_busy()
        self._for_good = False
        self._free_until = 0.0  # after waiting MAX_WAIT_S, the core runs this long before it waits again
        self._stood_aside_at = float("-inf")  # when the core last let the GUI thread have the lock
        self.activity = GuiActivity.of(gui_thread if gui_thread is not None else threading.get_ident())
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

    def _said_busy(self, now: float) -> bool:
        return self._depth > 0 or now < self._busy_until

    def wait_turn(self) -> None:
        """On the core's thread, before each of its steps: wait (without the interpreter lock) while the
        GUI thread is working, MAX_WAIT_S at most; after a wait that long the core runs FREE_RUN_S first."""
        if self._for_good:
            return
        now = time.monotonic()
        if now < self._free_until:
            return
        if not (self._said_busy(now) or self._gui_running(now)):
            return
        deadline = now + MAX_WAIT_S
        while True:
            left = deadline - now
            if left <= 0:
                self._free_until = now + FREE_RUN_S
                return
            if self._said_busy(now):
                self._released.wait(min(left, max(self._busy_until - now, PROBE_S)))
            elif self.activity is None or not self.activity.busy_while_waiting(min(left, PROBE_S),
                                                                               self._released):
                self.stood_aside()
                return
            if self._for_good:
                return
            now = time.monotonic()

    def stood_aside(self) -> None:
        """The core's thread has just let the GUI thread have the interpreter lock (waiting for I/O, or here)."""
        self._stood_aside_at = time.monotonic()

    def _gui_running(self, now: float) -> bool:
        """Whether the GUI thread is working, by its CPU clock. Its share since the core last looked tells,
        unless the core kept the interpreter lock all that while: a GUI thread starved of the lock gets it
        only for moments and looks idle. So every CHECK_EVERY_S of the core's running, the core stands aside
        for PROBE_S and sees whether the GUI thread took the time."""
        if self.activity is None:
            return False
        if self.activity.busy_lately(now):
            return True
        if now - self._stood_aside_at < CHECK_EVERY_S:
            return False
        running = self.activity.busy_while_waiting(PROBE_S, self._released)
        self.stood_aside()
        return running


class GuiActivity:
    """Whether the GUI thread is running, read from its CPU clock by the core's thread: no call into Python
    on the GUI thread at all, so it sees all of the GUI's work (Qt's layout and painting, every slot), not
    only what Mosaic marks with `gui_busy`. Where the platform has no per-thread CPU clock for another
    thread (pthread_getcpuclockid: Linux and most Unixes), `of` gives None and the marks alone gate."""

    def __init__(self, clock: int) -> None:
        self._clock = clock
        self._seen_cpu = time.clock_gettime(clock)
        self._seen_at = time.monotonic()

    def _cpu(self) -> float | None:
        """The GUI thread's CPU time, or None once it has ended (its clock is gone with it)."""
        try:
            return time.clock_gettime(self._clock)
        except OSError:
            return None

    @classmethod
    def of(cls, thread_ident: int) -> GuiActivity | None:
        try:
            return cls(time.pthread_getcpuclockid(thread_ident))
        except (AttributeError, OSError):
            return None

    def busy_lately(self, now: float) -> bool:
        """Whether the GUI thread used more than ACTIVE_SHARE of the time since the core last looked. Starved of
        the interpreter lock by the core, it still gets it at every switch interval and shows as busy."""
        span = now - self._seen_at
        if span < LOOK_EVERY_S:
            return False
        cpu = self._cpu()
        if cpu is None:
            return False
        used = cpu - self._seen_cpu
        self._seen_cpu, self._seen_at = cpu, now
        return used > ACTIVE_SHARE * span

    def busy_while_waiting(self, wait_s: float, released: threading.Event) -> bool:
        """Stand aside for `wait_s` (the interpreter lock free for the GUI thread); whether it used it."""
        before = self._cpu()
        released.wait(wait_s)
        cpu = self._cpu()
        if before is None or cpu is None:
            return False
        self._seen_cpu, self._seen_at = cpu, time.monotonic()
        return cpu - before > ACTIVE_SHARE * wait_s


class GatedSelector(selectors.DefaultSelector):
    """The platform's default selector, which lets the GUI thread go first after every wait for I/O."""

    def __init__(self, gate: GuiFirstGate) -> None:
        super().__init__()
        self._gate = gate

    def select(self, timeout: float | None = None) -> Any:
        ready = super().select(timeout)
        if timeout is None or timeout > 0:
            self._gate.stood_aside()  # it may have waited for I/O, the interpreter lock free
        self._gate.wait_turn()
        return ready


class GuiFirstLoop(asyncio.SelectorEventLoop):
    """The core's asyncio loop: it lets the GUI thread go first before every step of its tasks and every
    callback (`call_soon`), not only between turns of the loop. One turn runs every callback that was ready
    when it began; in a burst of records that was 20-60 ms of the core's Python, during which the GUI thread
    waited for the interpreter lock."""

    def __init__(self, gate: GuiFirstGate) -> None:
        super().__init__(GatedSelector(gate))
        self.gate = gate

    def call_soon(self, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        return super().call_soon(_after_the_gui, self.gate, callback, *args, context=context)


def _after_the_gui(gate: GuiFirstGate, callback: Callable[..., object], *args: Any) -> None:
    gate.wait_turn()
    callback(*args)
