"""The asyncio bridge: work runs on the loop thread, every callback lands on the GUI thread."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from app.core.thread_priority import BACKGROUND_NICE_STEP
from app.ui.bridge import AsyncBridge

pytestmark = pytest.mark.gui


@pytest.fixture
def bridge(qapp):
    bridge = AsyncBridge()
    yield bridge
    bridge.shutdown()


def test_results_and_errors_arrive_on_the_gui_thread(qtbot, bridge) -> None:
    gui = threading.current_thread()
    seen: dict[str, object] = {}

    async def work() -> str:
        seen["loop_thread"] = threading.current_thread()
        await asyncio.sleep(0.01)
        return "done"

    async def broken() -> None:
        raise ValueError("no")

    bridge.submit(work(), lambda r: seen.update(result=r, done_thread=threading.current_thread()))
    bridge.submit(broken(), None, lambda e: seen.update(error=e, error_thread=threading.current_thread()))
    qtbot.waitUntil(lambda: "result" in seen and "error" in seen, timeout=2000)
    assert seen["result"] == "done" and isinstance(seen["error"], ValueError)
    assert seen["loop_thread"] is not gui
    assert seen["done_thread"] is gui and seen["error_thread"] is gui


def test_post_from_any_thread_runs_on_the_gui_thread(qtbot, bridge) -> None:
    gui = threading.current_thread()
    ran: list[threading.Thread] = []
    worker = threading.Thread(target=lambda: bridge.post(lambda: ran.append(threading.current_thread())))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(ran), timeout=2000)
    assert ran == [gui]


def test_a_cancelled_task_calls_nothing(qtbot, bridge) -> None:
    called: list[str] = []
    future = bridge.submit(asyncio.sleep(10), lambda _: called.append("done"), lambda _: called.append("error"))
    future.cancel()
    # A task submitted after the cancel runs on the loop after it, and its answer comes back through the same
    # queue: once it is here, anything the cancelled task was going to deliver would be here too.
    bridge.submit(asyncio.sleep(0), lambda _: called.append("later"))
    qtbot.waitUntil(lambda: "later" in called, timeout=2000)
    assert called == ["later"] and future.cancelled()


def test_shutdown_closes_the_core_then_stops_the_loop(qapp) -> None:
    bridge = AsyncBridge()
    events: list[str] = []

    class Core:
        async def close(self) -> None:
            await asyncio.sleep(0)
            events.append("closed")

    pending = bridge.submit(asyncio.sleep(30))
    bridge.shutdown(Core())
    assert events == ["closed"]
    assert not bridge.running and not bridge.loop.is_running()
    assert pending.cancelled()
    late = bridge.submit(asyncio.sleep(0))
    assert isinstance(late.exception(), RuntimeError)
    bridge.shutdown()  # a second call is harmless


def test_qt_binding_keeps_reference_counts(qapp) -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every void Qt call and to True on
    every emit, and aborts the interpreter after a few thousand (why pyproject excludes 6.12.0).
    This fails on such a binding instead of letting the window crash in a user's hands."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    class Emitter(QObject):
        fired = Signal(object)

    label, emitter = QLabel(), Emitter()
    emitter.fired.connect(lambda _: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2_000):
        label.setText("x")
        emitter.fired.emit(1)
    if sys.version_info < (3, 12):  # None and True are immortal from 3.12 on
        assert sys.getrefcount(None) >= none_before - 100
        assert sys.getrefcount(True) >= true_before - 100
    assert label.text() == "x"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_core_loop_and_its_workers_run_below_the_gui_thread(qtbot, bridge) -> None:
    """When the GUI thread and the core's threads both want a CPU, the scheduler gives it to the window."""
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: dict[str, int] = {}

    async def work() -> None:
        seen["loop"] = nice()
        seen["worker"] = await asyncio.to_thread(nice)

    bridge.submit(work())
    qtbot.waitUntil(lambda: "worker" in seen, timeout=2000)
    gui = nice()
    expected = min(19, gui + BACKGROUND_NICE_STEP)
    assert seen == {"loop": expected, "worker": expected}, f"GUI thread nice {gui}"
