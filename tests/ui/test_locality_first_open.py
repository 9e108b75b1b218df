"""The Locality view's first open asks for the store only once its charts are made (app/ui/locality/window.py):
the store's libraries load in a worker while the GUI thread is free, not while it makes the charts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QTimer

from app.core.secrets import env_name
from app.demo.network import DemoNetwork
from app.ui.locality.source import LocalitySource, Overview
from app.ui.locality.window import LocalityWindow
from tests.conftest import shown_window

pytestmark = pytest.mark.gui


class Recording(LocalitySource):
    """A real source that notes whether the window's charts were made when the overview was asked for, then
    refuses (the view says so), so that nothing is refreshed."""

    def __init__(self, view: list[LocalityWindow]) -> None:
        super().__init__()
        self.view = view
        self.charts_ready_when_asked: list[bool] = []

    async def overview(self, core: Any) -> Overview:
        self.charts_ready_when_asked.append(self.view[0]._charts_ready)
        raise RuntimeError("stopped by the test")


@pytest.fixture(scope="module")
def practice() -> Iterator[DemoNetwork]:
    network = DemoNetwork.start(practices=1, patients=20)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def window(qtbot, practice: DemoNetwork, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The main window, signed in to the practice; closed after the test."""
    for practice_id, secret in practice.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    win, bridge = shown_window(qtbot, practice.practices)
    try:
        yield win
    finally:
        win.close()
        bridge.shutdown(win.core)


def unopened_view(win: Any) -> tuple[LocalityWindow, Recording]:
    """A Locality view (not shown yet) over a source that records when it was asked for the overview."""
    made: list[LocalityWindow] = []
    source = Recording(made)
    view = LocalityWindow(win.bridge, win.core, win, source=source)
    made.append(view)
    return view, source


def test_the_overview_waits_for_the_charts(qtbot, window: Any) -> None:
    view, source = unopened_view(window)
    assert not view._charts_ready
    with qtbot.waitSignal(view.query_failed, timeout=20_000) as failed:
        view.show()
    assert source.charts_ready_when_asked == [True]
    assert "stopped by the test" in failed.args[0]
    view.close()


def test_the_view_is_made_a_part_a_pass_and_says_so_until_whole(qtbot, window: Any) -> None:
    """The first open shows a shell, then makes the query bar, the figures, the side panels and each chart in a
    pass of the event loop of its own (a zero timer queued as one part is made has run before the next is made);
    until the last the view says what it is still making and refreshes nothing, and only then reports `built`."""
    from app.ui.locality.window import CHART_PARTS, PARTS

    view, source = unopened_view(window)
    assert not view.is_built and view.made == [] and not hasattr(view, "controls")
    assert not view.refresh_button.isEnabled()
    assert view.progress.text().startswith("Opening the Locality view: making the query bar")
    view.focus_measure()  # as open_locality does, before the query bar is there
    view.refresh()  # F5 before the view is whole: nothing is refreshed
    assert not view._refreshing

    turned: list[bool] = []  # per part: had the event loop turned since the part before it?
    said: list[str] = []

    def part(name: str) -> None:
        turned.append(all(flag for flag in pending))
        pending.clear()
        flag: list[bool] = []
        pending.append(flag)
        QTimer.singleShot(0, lambda: flag.append(True))
        said.append(view.progress.text())
        assert not view.is_built

    pending: list[list[bool]] = []
    view.part_made.connect(part)
    built: list[bool] = []
    view.built.connect(lambda: built.append(view.is_built))
    with qtbot.waitSignal(view.query_failed, timeout=20_000):
        view.show()
    assert view.made == [*PARTS, *CHART_PARTS]
    assert turned == [True] * len(view.made), "each part is made in a pass of its own"
    assert all(text.startswith("Opening the Locality view: making the") for text in said)
    assert built == [True] and source.charts_ready_when_asked == [True]  # the overview once whole, not before
    # whole: every part there, named for a screen reader, and the measure box has the keyboard
    for chart in (view.bar_chart, view.series_chart, view.funnel_chart):
        assert chart.isVisible() and chart.accessibleName()
    assert not view.charts_waiting.isVisible()
    assert view.controls.measure.accessibleName() == "Measure" and view.focusWidget() is view.controls.measure
    assert [view.tabs.tabText(i) for i in range(view.tabs.count())] == ["&Figures", "&Definition", "&Peers"]
    assert view.table.accessibleName() and view.definition.accessibleName() and view.peers.accessibleName()
    assert view.refresh_button.isEnabled()
    view.close()
