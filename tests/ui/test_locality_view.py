"""The Locality view in the real window (pytest-qt, offscreen) against demo practices publishing their appointment
books over loopback: it opens, refreshes every practice, shows exactly the store's figures (suppressed cells as
"<5" or "suppressed", a GP Connect practice as "not provided", a failing practice named), each figure opens to its
definition with its counts, every query is journaled before its figures appear, and an insight-only role can use
it but cannot search."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.audit.model import Action
from app.core.secrets import env_name
from app.demo.network import DemoNetwork
from app.demo.sizes import gp_connect_indexes
from app.insight.measures import MEASURES
from app.ui.locality.source import Answer, use_national_files
from app.ui.locality.window import LocalityWindow
from app.ui.locality.words import NOT_PROVIDED, cell_text, count_text
from app.ui.main_window import MainWindow
from tests.conftest import shown_window

pytestmark = pytest.mark.gui
REFRESH_MS = 90_000
QUERY_MS = 20_000


@pytest.fixture(scope="module")
def books() -> Iterator[DemoNetwork]:
    """Five demo practices (the 2nd and 4th on GP Connect) with two years of appointment books."""
    network = DemoNetwork.start(practices=5, patients=150, gp_connect=gp_connect_indexes(5))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture(scope="module")
def national_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The demo's synthetic GPAD files (30 practices, seeded), as `mosaic demo` imports them."""
    from app.demo.gpad_synthetic import ensure_synthetic_gpad

    return ensure_synthetic_gpad(tmp_path_factory.mktemp("gpad"), count=30).all


@pytest.fixture
def practices(books: DemoNetwork, national_files: list[Path], monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[DemoNetwork]:
    for practice_id, secret in books.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    use_national_files(lambda: national_files)
    yield books
    use_national_files(None)
    books.reset_faults()


@pytest.fixture
def window(qtbot, practices: DemoNetwork) -> Iterator[MainWindow]:
    win, bridge = shown_window(qtbot, practices.practices)
    yield win
    win.close()
    bridge.shutdown(win.core)


def open_view(qtbot, win: MainWindow) -> tuple[LocalityWindow, Answer]:
    """Ctrl+Shift+L, as a person would; the first open refreshes every practice, then shows its figures."""
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=QUERY_MS)
    with qtbot.waitSignal(win.locality_action.triggered, timeout=QUERY_MS):
        qtbot.keyClick(win, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    view = win.locality
    assert view is not None and view.isVisible()
    with qtbot.waitSignal(view.figures_shown, timeout=REFRESH_MS) as shown:
        pass
    return view, shown.args[0]


def store_figures(view: LocalityWindow, metric: str, by: str, period: str, **kwargs: Any) -> list[Any]:
    """The store's own figures for the same query, read on the core's side."""
    future = view.bridge.submit(view.source._run(lambda store: store.figures(metric, by, period, **kwargs)))
    return list(future.result(timeout=30))


def journal(win: MainWindow, **filters: Any) -> list[Any]:
    assert win.core is not None
    return list(win.bridge.submit(win.core.access_history(newest_first=False, **filters)).result(timeout=10))


def table_rows(view: LocalityWindow) -> list[list[str]]:
    table = view.table
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def ask(qtbot, view: LocalityWindow, **choices: Any) -> Answer:
    """Choose from the query bar's boxes (by their data) and wait for the figures."""
    bar = view.controls
    boxes = {"metric": bar.measure, "zoom": bar.zoom, "cut": bar.cut, "grain": bar.grain, "period": bar.period,
             "mode": bar.mode, "clinician": bar.clinician, "category": bar.category}
    with qtbot.waitSignal(view.figures_shown, timeout=QUERY_MS) as shown:
        for name, value in choices.items():
            box = boxes[name]
            index = box.findData(value)
            assert index >= 0, f"{name} has no {value!r}"
            box.setCurrentIndex(index)
    answer: Answer = shown.args[0]
    return answer


def test_opens_refreshes_and_shows_the_stores_figures(qtbot, window: MainWindow, practices: DemoNetwork) -> None:
    view, answer = open_view(qtbot, window)
    gpc = [p for i, p in enumerate(practices.practices) if i in gp_connect_indexes(5)]
    fhir = [p for p in practices.practices if p not in gpc]
    assert "5 practices refreshed" not in view.progress.text()
    query = answer.query
    assert query.cut == "practice" and query.practice is None and query.metric == "appointments"
    expected = store_figures(view, query.metric, "practice", query.period, practices=[p.id for p in
                                                                                       practices.practices])
    assert sorted(answer.figures, key=repr) == sorted(expected, key=repr)
    series = [f for f in store_figures(view, query.metric, "month", answer.series_period,
                                       practices=[p.id for p in practices.practices])
              if f.status == "ok" and f.period != answer.series_period]
    assert list(answer.series) == series and len(series) == 12
    assert view.series_chart.line.getData()[1] is not None
    rows = {row[0]: row for row in table_rows(view)}
    unit = MEASURES[query.metric].unit
    for figure in expected:
        name = next(p.name for p in practices.practices if p.id == figure.practice_id)
        assert rows[name][1] == cell_text(figure, unit)
    for practice in gpc:  # GP Connect carries no appointment book: said so, never zero
        assert rows[practice.name][1] == NOT_PROVIDED
        assert rows[practice.name][2] == "—"
    for practice in fhir:
        assert re.fullmatch(r"[\d,]+", rows[practice.name][1]), rows[practice.name]
    # the chart title states the measure, the cut, the period and where
    title = view.bar_chart.title.text()
    assert "by practice" in title and "Appointments" in title and any(m in title for m in (
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December"))
    assert "Data quality:" in view.quality.text() and "2 of 5 practices not providing data" in view.quality.text()

    # every query journaled, before its figures appeared: the entry is there when they are shown
    seen: list[int] = []
    view.figures_shown.connect(lambda a: seen.append(len(journal(window, actions=[Action.INSIGHT]))))
    before = len(journal(window, actions=[Action.INSIGHT]))
    answer = ask(qtbot, view, metric="dna_rate")
    entries = journal(window, actions=[Action.INSIGHT])
    assert seen and seen[-1] == len(entries) > before
    last = entries[-1].details
    assert (last["insight"], last["metric"], last["by"], last["period"]) == ("view", "dna_rate", "practice",
                                                                            answer.query.period)

    # zoom into a practice and cut by category (slot type): figures equal the store's, suppressed as words
    zoomed = fhir[0]
    answer = ask(qtbot, view, zoom=zoomed.id, cut="category", metric="appointments")
    assert answer.query.practice == zoomed.id and answer.query.cut == "category"
    expected = store_figures(view, "appointments", "category", answer.query.period, practices=[zoomed.id])
    assert sorted(answer.figures, key=repr) == sorted(expected, key=repr)
    assert entries[-1].details["practices"] != journal(window, actions=[Action.INSIGHT])[-2].details.get("practices")

    # a week's telephone appointments by clinician type: small counts are suppressed
    suppressed = [f for f in answer.figures if f.suppressed]
    for _ in range(6):
        if suppressed:
            break
        answer = ask(qtbot, view, grain="week", cut="clinician-type", mode="telephone")
        suppressed = [f for f in answer.figures if f.suppressed]
        if not suppressed:
            answer = ask(qtbot, view, period=view.controls.period.itemData(view.controls.period.currentIndex() + 1))
            suppressed = [f for f in answer.figures if f.suppressed]
    assert suppressed, "a small cell should be suppressed somewhere in a week's telephone appointments"
    texts = {row[0]: row for row in table_rows(view)}
    for figure in suppressed:
        row = texts[view.label_of(figure, answer)]
        assert row[1] in ("<5", "suppressed") and row[2] in ("<5", "suppressed"), row
        assert not re.search(r"\d", (row[1] + row[2]).replace("<5", "")), row

    # a figure opens to its definition, with its numerator and denominator
    answer = ask(qtbot, view, grain="month", metric="dna_rate", mode="")
    index = next(i for i, (f, _) in enumerate(view._rows) if f.status == "ok" and not f.suppressed)
    figure = view._rows[index][0]
    view.table.setFocus()
    view.table.setCurrentCell(index, 0)
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert view.tabs.currentWidget() is view.definition
    assert MEASURES["dna_rate"].definition in view.definition.definition.text()
    assert f"= {count_text(figure.numerator, figure)}" in view.definition.numerator.text()
    assert f"= {count_text(figure.denominator, figure)}" in view.definition.denominator.text()
    assert "noshow" in view.definition.numerator.text()

    # peers: the practice placed on the funnel and in the national deciles, similar practices with weights shown
    assert answer.national is not None and answer.national.practices >= 2
    assert answer.peer is not None and answer.peer.national_decile is not None
    assert "National decile" in view.peers.report.text()
    assert view.peers.similar.rowCount() > 0
    assert set(view.peers.weight_boxes) == {"list_size", "imd_decile", "share_over_65", "share_under_18", "rurality"}
    with qtbot.waitSignal(view.figures_shown, timeout=QUERY_MS) as shown:
        view.peers.weight_boxes["list_size"].setValue(4.0)
    assert shown.args[0].query.weights["list_size"] == 4.0
    assert journal(window, actions=[Action.INSIGHT])[-1].details["weights"]["list_size"] == 4.0


def test_a_failing_practice_is_named_and_the_others_stand(qtbot, window: MainWindow, practices: DemoNetwork) -> None:
    view, answer = open_view(qtbot, window)
    gpc = {p.id for i, p in enumerate(practices.practices) if i in gp_connect_indexes(5)}
    broken = next(p for p in practices.practices if p.id not in gpc)
    server = practices.server(broken.id)
    with server.faults.override(mode="http-500", match="Appointment"):
        with qtbot.waitSignal(view.refreshed, timeout=REFRESH_MS) as refreshed:
            qtbot.mouseClick(view.refresh_button, Qt.MouseButton.LeftButton)
        with qtbot.waitSignal(view.figures_shown, timeout=QUERY_MS) as shown:
            pass
    assert [p.practice_id for p in refreshed.args[0].failed] == [broken.id]
    assert view.failed_line.isVisible() and broken.name in view.failed_line.text()
    rows = {row[0]: row for row in table_rows(view)}
    assert rows[broken.name][1].startswith("failed: ") and broken.name in rows[broken.name][1]
    others = [p for p in practices.practices if p.id not in gpc and p.id != broken.id]
    figures = {f.practice_id: f for f in shown.args[0].figures}
    for practice in others:
        assert figures[practice.id].status == "ok" and rows[practice.name][1] != "0"


def test_an_insight_only_role_opens_the_view_and_cannot_search(qtbot, practices: DemoNetwork, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.os_account import os_login
    from app.ui.app import build_window
    from tests.core.test_policy import write_policy
    from tests.ui.test_window import search

    write_policy(tmp_path, f'[roles.lead]\npractices = ["*"]\nrecords = false\ninsight = true\n\n'
                           f'[users.{os_login()}]\nrole = "lead"\n', monkeypatch)
    win, bridge = build_window(practices.practices)
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.sign_in_finished, timeout=QUERY_MS):
            win.show()
        qtbot.waitExposed(win)
        outcome = search(qtbot, win, "smith")
        assert outcome is None
        assert "without access to patient records" in win.statusBar().currentMessage()
        view, answer = open_view(qtbot, win)
        assert answer.figures and "Locality insight is not available" not in view.progress.text()
    finally:
        win.close()
        bridge.shutdown(win.core)
