"""The core's loop waits its turn while the GUI thread works (app/ui/gui_first.py), and never for good."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.ui import gui_first
from app.ui.bridge import AsyncBridge


def test_the_core_waits_while_the_gui_works_and_goes_on_when_the_window_closes(monkeypatch) -> None:
    monkeypatch.setattr(gui_first, "HOLD_S", 60.0)
    monkeypatch.setattr(gui_first, "MAX_WAIT_S", 60.0)
    gate = gui_first.GuiFirstGate()
    finished = threading.Event()

    def core_turn() -> None:
        gate.wait_turn()
        finished.set()

    core_turn()  # the GUI has not worked: no wait at all
    assert finished.is_set()
    finished.clear()
    gui_first.gui_working()  # every gate hears it
    turn = threading.Thread(target=core_turn, daemon=True)
    turn.start()
    assert not finished.wait(0.2), "the core waits while the GUI thread works"
    gate.open_for_good()  # the window closing waits for the core: it must run
    assert finished.wait(10)
    turn.join(10)
    gui_first.gui_working()
    core_turn()  # open for good: no more waiting
    assert finished.is_set()


def test_a_core_turn_waits_at_most_max_wait(monkeypatch) -> None:
    monkeypatch.setattr(gui_first, "HOLD_S", 60.0)
    monkeypatch.setattr(gui_first, "MAX_WAIT_S", 0.05)
    gate = gui_first.GuiFirstGate()
    gate.gui_working()
    done = threading.Event()
    threading.Thread(target=lambda: (gate.wait_turn(), done.set()), daemon=True).start()
    assert done.wait(10), "a busy window never starves the core"


@pytest.mark.usefixtures("qapp")
def test_the_bridge_runs_the_core_on_a_gated_loop() -> None:
    bridge = AsyncBridge()
    try:
        assert isinstance(bridge.loop._selector, gui_first.GatedSelector)  # type: ignore[attr-defined]  # noqa: SLF001
        assert bridge.submit(asyncio.sleep(0, result="ran")).result(timeout=10) == "ran"
    finally:
        assert bridge.shutdown()
    assert bridge.gate._for_good  # noqa: SLF001 - shutting down opened the gate before waiting for the core


def _spinner() -> tuple[threading.Thread, threading.Event, threading.Event]:
    """A stand-in GUI thread that works (spins on the CPU) until told to stop."""
    spinning, stop = threading.Event(), threading.Event()

    def spin() -> None:
        spinning.set()
        while not stop.is_set():
            sum(range(200))

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    assert spinning.wait(10)
    return thread, spinning, stop


@pytest.mark.skipif(not hasattr(time, "pthread_getcpuclockid"), reason="no per-thread CPU clock on this platform")
def test_the_core_waits_while_the_gui_threads_clock_runs_unmarked(monkeypatch) -> None:
    """Work the GUI thread does without `gui_busy` (Qt's layout and painting) still holds the core back."""
    monkeypatch.setattr(gui_first, "MAX_WAIT_S", 60.0)
    monkeypatch.setattr(gui_first, "PROBE_S", 0.02)  # long looks: a loaded machine still shows the spinner's work
    monkeypatch.setattr(gui_first, "ACTIVE_SHARE", 0.05)
    monkeypatch.setattr(gui_first, "LOOK_EVERY_S", 0.0)
    gui, _, stop = _spinner()
    gate = gui_first.GuiFirstGate(gui_thread=gui.ident)
    assert gate.activity is not None
    finished = threading.Event()
    core = threading.Thread(target=lambda: (gate.wait_turn(), finished.set()), daemon=True)
    core.start()
    try:
        assert not finished.wait(0.5), "the core stood aside while the GUI thread ran"
    finally:
        stop.set()
    assert finished.wait(10), "and went on once it stopped"
    gui.join(10)


@pytest.mark.skipif(not hasattr(time, "pthread_getcpuclockid"), reason="no per-thread CPU clock on this platform")
def test_an_idle_gui_thread_costs_the_core_no_more_than_a_look(monkeypatch) -> None:
    """A GUI thread waiting for events holds the core back by at most one PROBE_S look per CHECK_EVERY_S."""
    monkeypatch.setattr(gui_first, "MAX_WAIT_S", 60.0)
    monkeypatch.setattr(gui_first, "LOOK_EVERY_S", 0.0)
    monkeypatch.setattr(gui_first, "CHECK_EVERY_S", 0.0)  # a look before every step: the most it can cost
    idle = threading.Event()
    gui = threading.Thread(target=idle.wait, daemon=True)  # blocked, as the GUI thread waiting for events
    gui.start()
    gate = gui_first.GuiFirstGate(gui_thread=gui.ident)
    waits: list[float | None] = []
    monkeypatch.setattr(gate._released, "wait", lambda timeout=None: waits.append(timeout))  # noqa: SLF001
    for _ in range(100):
        gate.wait_turn()
    assert waits and len(waits) <= 100, "one look a step at most"
    assert set(waits) == {gui_first.PROBE_S}, "and only a look: the core never waited on"
    idle.set()
    gui.join(10)


def test_a_gui_that_never_stops_working_still_lets_the_core_run(monkeypatch) -> None:
    """After MAX_WAIT_S the core runs FREE_RUN_S without looking: a busy window slows it, never stops it."""
    monkeypatch.setattr(gui_first, "MAX_WAIT_S", 0.05)
    monkeypatch.setattr(gui_first, "FREE_RUN_S", 60.0)
    monkeypatch.setattr(gui_first, "HOLD_S", 60.0)
    gate = gui_first.GuiFirstGate()
    gate.gui_working()
    gate.wait_turn()  # waits MAX_WAIT_S, then the core's free run begins
    calls = []
    monkeypatch.setattr(gate._released, "wait", lambda timeout=None: calls.append(timeout))  # noqa: SLF001
    gate.wait_turn()
    assert calls == [], "in its free run the core does not wait"


@pytest.mark.usefixtures("qapp")
def test_every_step_of_the_cores_tasks_passes_the_gate(monkeypatch) -> None:
    bridge = AsyncBridge()
    turns = []
    original = bridge.gate.wait_turn
    monkeypatch.setattr(bridge.gate, "wait_turn", lambda: (turns.append(1), original())[-1])

    async def three_steps() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return "done"

    try:
        before = len(turns)
        assert bridge.submit(three_steps()).result(timeout=10) == "done"
        assert len(turns) - before >= 3, "each step of the task waited its turn, not only the loop's turns"
    finally:
        assert bridge.shutdown()
