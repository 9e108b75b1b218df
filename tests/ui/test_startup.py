"""Starting the window: with no practices it offers the demo; run_window returns and cleans up."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.sessions import PracticeStatus
from app.ui.app import build_window, run_window
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


def test_no_practices_offers_the_demo_and_starting_it_signs_in(qtbot, network) -> None:
    started: list[bool] = []

    def start_demo():
        started.append(True)
        return network.practices

    win, bridge = build_window([], start_demo=start_demo)
    qtbot.addWidget(win)
    try:
        win.show()
        qtbot.waitExposed(win)
        panel = win.no_practices
        assert win.pages.currentWidget() is panel
        assert panel.start_button.isVisible() and panel.start_button.text() == "Start demo practices"
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS) as blocker:
            qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert started == [True]
        assert [s.status for s in blocker.args[0]] == [PracticeStatus.ONLINE] * 5
        assert win.pages.currentIndex() == 0
        assert list(win.practices_panel.rows) == [p.id for p in network.practices]
    finally:
        win.close()
        bridge.shutdown(win.core)


def test_no_practices_without_a_demo_explains_where_the_directory_goes(qtbot) -> None:
    win, bridge = build_window([])
    qtbot.addWidget(win)
    try:
        win.show()
        assert win.pages.currentWidget() is win.no_practices
        assert not win.no_practices.start_button.isVisible()
        assert win.online_label.text() == "No practices"
    finally:
        win.close()
        bridge.shutdown(win.core)


def test_run_window_shows_signs_in_and_cleans_up_on_close(qtbot, network) -> None:
    closed: list[bool] = []
    seen: list[MainWindow] = []

    def find_window() -> None:
        win = next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
                    and w not in seen), None)
        if win is None:
            QTimer.singleShot(20, find_window)
            return
        seen.append(win)
        win.sign_in_finished.connect(lambda _states: win.close())

    QTimer.singleShot(0, find_window)
    code = run_window(network.practices, on_close=lambda: closed.append(True))
    assert code == 0
    assert closed == [True]
    win = seen[0]
    assert not win.bridge.running, "the loop thread has stopped"
    assert all(s.status is PracticeStatus.OFFLINE for s in win.core.sessions.states()), "sessions closed"


def test_unwritable_journal_is_shown_and_no_search_runs(qtbot, network, mosaic_home) -> None:
    (mosaic_home / "data").write_text("a file where the data folder should be")  # the journal cannot be made
    win, bridge = build_window(network.practices)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS) as blocker:
            win.show()
        assert blocker.args == [[]]
        box = win.findChild(QMessageBox, "signInError")
        assert box is not None and box.isVisible()
        assert "audit journal" in box.text()
        with qtbot.waitSignal(win.search_finished, timeout=TIMEOUT_MS) as searched:
            win.run_search("smith")
        assert searched.args == [None]  # the search itself failed: nothing reached the results
        assert win.search_panel.model.rowCount() == 0
    finally:
        bridge.shutdown(win.core)
