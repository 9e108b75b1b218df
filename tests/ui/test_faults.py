"""The window when a practice fails or hangs: the others carry on, the failure is named, the GUI stays live."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt, QTimer

from app.core.sessions import PracticeStatus
from app.ui.app import build_window
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


@contextmanager
def opened(qtbot, practices) -> Iterator[MainWindow]:
    """The real window, shown and signed in (or failed) at every practice; shut down afterwards."""
    win, bridge = build_window(practices)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS):
            win.show()
        yield win
    finally:
        win.close()
        bridge.shutdown(win.core)


@pytest.fixture
def impatient(qtbot, network) -> Iterator[MainWindow]:
    """The window with the third practice given a one-second timeout, so a hang settles quickly."""
    slow_id = network.practices[2].id
    practices = [replace(p, timeout_s=1.0) if p.id == slow_id else p for p in network.practices]
    with opened(qtbot, practices) as win:
        yield win


def search(qtbot, win: MainWindow, text: str):
    win.search_panel.box.setText(text)
    with qtbot.waitSignal(win.search_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(win.search_panel.box, Qt.Key.Key_Return)
    return blocker.args[0]


def common_family(network) -> str:
    """A family name found at every demo practice, so each practice has something to answer."""
    names = [{p.family for p in server.population} for server in network.servers]
    return sorted(set.intersection(*names))[0]


def test_a_failing_practice_is_named_while_the_other_four_answer(qtbot, window, network) -> None:
    broken = network.servers[1]
    family = common_family(network)
    with broken.faults.override(mode="http-500"):
        outcome = search(qtbot, window, family)
    answered = {r.practice_id for r in outcome.results if not r.error}
    assert answered == {p.id for p in network.practices} - {broken.spec.id}
    assert {p.practice_id for p in outcome.patients} == answered
    panel = window.search_panel
    assert panel.problems.isVisible()
    assert broken.practice.name in panel.problems_label.text()
    assert broken.practice.name in panel.problems_label.accessibleDescription()
    assert panel.count_line.text().endswith(f"from 4 of 5 practices; 1 could not be searched: {broken.practice.name}")


def test_a_practice_that_is_down_at_sign_in_is_offline_retrying_with_retry_now_and_named_in_search(
        qtbot, network) -> None:
    down = network.servers[3]
    down.faults.mode = "down"  # the network fixture resets faults after the test
    with opened(qtbot, network.practices) as win:
        row = win.practices_panel.rows[down.spec.id]
        assert row.state.status is PracticeStatus.RETRYING  # it did not answer: Mosaic tries again by itself
        assert "Offline · retrying in " in row.state_label.text() and row.state_label.wordWrap()
        assert row.state_label.toolTip().startswith("Offline · ")  # the full reason, also in the tooltip
        assert row.retry_button.isEnabled()  # ... or now, at a click
        assert win.online_label.text() == "4 of 5 practices online"

        search(qtbot, win, common_family(network))
        assert down.practice.name in win.search_panel.problems_label.text()
        assert "not searched" in win.search_panel.problems_label.text()

        down.faults.mode = None  # the server is back: Retry brings the practice online
        with qtbot.waitSignal(win.practice_state_changed, timeout=TIMEOUT_MS,
                              check_params_cb=lambda s: s.status is PracticeStatus.ONLINE):
            qtbot.mouseClick(row.retry_button, Qt.MouseButton.LeftButton)
        assert not row.retry_button.isEnabled()
        assert win.online_label.text() == "5 of 5 practices online"


def test_the_gui_stays_responsive_while_a_practice_hangs(qtbot, impatient, network) -> None:
    win = impatient
    slow = network.servers[2]
    waiting_ticks: list[float] = []  # a 10 ms timer's ticks handled while the window waited for the hung practice

    def tick() -> None:
        if win.search_panel.pending() == [slow.spec.id]:
            waiting_ticks.append(time.perf_counter())

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    try:
        with slow.faults.override(mode="hang", hang_s=5.0):
            win.search_panel.box.setText(common_family(network))
            with qtbot.waitSignal(win.search_finished, timeout=TIMEOUT_MS) as blocker:
                qtbot.keyClick(win.search_panel.box, Qt.Key.Key_Return)
                # The four others are listed while the slow one is still awaited, and named as awaited.
                qtbot.waitUntil(lambda: win.search_panel.pending() == [slow.spec.id], timeout=TIMEOUT_MS)
                assert win.search_panel.model.rowCount() > 0
                assert slow.faults.hanging >= 1
                assert win.search_panel.count_line.text().endswith(f"waiting for {slow.practice.name}")
    finally:
        timer.stop()
    outcome = blocker.args[0]
    failed = {r.practice_id: r.error for r in outcome.results if r.error}
    assert list(failed) == [slow.spec.id]
    assert slow.practice.name in win.search_panel.problems_label.text()
    # The wait lasts about the practice's one-second timeout. A GUI thread held by it would handle at most one
    # (coalesced) tick in that time; one that keeps handling events handles dozens, even on a loaded machine.
    assert len(waiting_ticks) >= 3, (f"the GUI thread handled {len(waiting_ticks)} timer ticks while the search "
                                     "waited for the hung practice")
