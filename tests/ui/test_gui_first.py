"""The core's loop waits its turn while the GUI thread works (app/ui/gui_first.py), and never for good."""

from __future__ import annotations

import asyncio
import threading

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
