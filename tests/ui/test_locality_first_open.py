"""The Locality view's first open asks for the store only once its charts are made (app/ui/locality/window.py):
the store's libraries load in a worker while the GUI thread is free, not while it makes the charts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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


def test_the_overview_waits_for_the_charts(qtbot, practice: DemoNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    for practice_id, secret in practice.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    win, bridge = shown_window(qtbot, practice.practices)
    try:
        made: list[LocalityWindow] = []
        source = Recording(made)
        view = LocalityWindow(win.bridge, win.core, win, source=source)
        made.append(view)
        assert not view._charts_ready
        with qtbot.waitSignal(view.query_failed, timeout=20_000) as failed:
            view.show()
        assert source.charts_ready_when_asked == [True]
        assert "stopped by the test" in failed.args[0]
        view.close()
    finally:
        win.close()
        bridge.shutdown(win.core)
