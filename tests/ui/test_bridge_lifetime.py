"""The bridge outlives nothing it serves: answers for a widget that has gone are dropped, and closing never
waits long for work that does not finish."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import shiboken6
from PySide6.QtWidgets import QLabel

from app.ui.bridge import SHUTDOWN_BUDGET_S, AsyncBridge

pytestmark = pytest.mark.gui


def test_an_answer_for_a_deleted_widget_is_dropped(qtbot, qapp) -> None:
    bridge = AsyncBridge()
    try:
        release = threading.Event()
        label = QLabel("waiting")
        answers: list[str] = []

        async def slow() -> str:
            await asyncio.to_thread(release.wait)
            return "answer"

        answered = bridge.submit(slow(), lambda r: (answers.append(r), label.setText(r)), receiver=label)
        shiboken6.delete(label)  # the tab closed while its record was on its way
        release.set()
        qtbot.waitUntil(answered.done, timeout=5000)
        # Its answer was queued for the GUI thread as it settled; a marker queued after it has run, so has it.
        marker: list[str] = []
        bridge.submit(asyncio.sleep(0), lambda _: marker.append("after"))
        qtbot.waitUntil(lambda: marker == ["after"], timeout=5000)
        assert answers == [], "nothing was delivered to the deleted widget"

        kept = QLabel("waiting")
        bridge.submit(slow(), kept.setText, receiver=kept)
        qtbot.waitUntil(lambda: kept.text() == "answer", timeout=5000)  # a live receiver gets its answer
    finally:
        bridge.shutdown()


def test_closing_does_not_wait_for_a_core_that_never_closes(qapp) -> None:
    bridge = AsyncBridge()
    never = threading.Event()

    class StuckCore:
        """A core whose close waits on a keyring or store call that never answers."""

        async def close(self) -> None:
            await asyncio.to_thread(never.wait)

    started = time.monotonic()
    clean = bridge.shutdown(StuckCore())  # type: ignore[arg-type]
    took = time.monotonic() - started
    never.set()  # let the abandoned thread end, so the test process exits normally
    assert clean is False, "the caller is told that work was abandoned"
    assert took < SHUTDOWN_BUDGET_S + 2.0, f"closing held the GUI thread for {took:.2f} s (the core never closes)"
    assert not bridge.running


def test_closing_a_core_that_closes_is_clean(qapp) -> None:
    bridge = AsyncBridge()

    class Core:
        async def close(self) -> None:
            await asyncio.sleep(0)

    assert bridge.shutdown(Core()) is True
