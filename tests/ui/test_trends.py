"""Trend charts in a record view (app/ui/trends.py): a chart per numeric series at the top of the results,
with its points, one unit per line, none for results that did not load, the research view's values without
words, and a chart that never takes the mouse wheel from the record's scrolling."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.core.model import Entry, Section, SectionName
from app.core.research import pseudonymise_record
from app.ui.record_view import RecordView, build_step
from app.ui.trends import LOADING_TEXT, TrendChart, TrendsPanel, load_pyqtgraph, pyqtgraph_ready
from tests.trend_samples import EXPECTED_POINTS, entries, reading, record
from tests.ui.test_responsiveness import PRACTICES

pytestmark = pytest.mark.gui
IMPORT_TIMEOUT_MS = 60_000  # the first panel of the run waits for pyqtgraph's import (a worker, ~0.3-1 s)


@pytest.fixture
def host(host: QWidget) -> QWidget:
    """The shared host (tests/ui/conftest.py), wider: the charts' tests were written at 1,000 px."""
    host.resize(1000, 700)
    return host


def open_record(qtbot, host: QWidget, rec) -> RecordView:
    view = RecordView(rec.patient, PRACTICES[0], host)
    view.resize(host.size())
    view.show()
    shown: list[RecordView] = []
    view.record_shown.connect(shown.append)
    view.show_record(rec)
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    return view


def charts_of(qtbot, view: RecordView) -> tuple[TrendsPanel, list[TrendChart]]:
    panels = view.findChildren(TrendsPanel)
    assert len(panels) == 1
    panel = panels[0]
    qtbot.waitUntil(lambda: scrolled_to(view, panel) and panel.done, timeout=IMPORT_TIMEOUT_MS)
    return panel, panel.charts


def scrolled_to(view: RecordView, widget: QWidget) -> bool:
    """Scroll the record to `widget` (the charts are drawn once the results are on screen): again while the
    record is still being laid out."""
    if view.body_scroll is not None:
        view.body_scroll.ensureWidgetVisible(widget, 0, 0)
    return True


def drawn(chart: TrendChart) -> list[list[tuple[float, float]]]:
    """The (time, value) points each line's curve holds, as pyqtgraph has them."""
    return [list(zip(*(list(axis) for axis in curve.getData()), strict=True)) for curve in chart.curves]


def test_a_chart_per_series_at_the_top_of_the_results_with_every_point(qtbot, host) -> None:
    view = open_record(qtbot, host, record())
    panel, charts = charts_of(qtbot, view)
    results = view.sections[SectionName.OBSERVATIONS]
    assert results.isAncestorOf(panel), "the charts are part of the results section"
    assert [c.trend.title for c in charts] == list(EXPECTED_POINTS)
    assert {c.trend.title: [len(line) for line in drawn(c)] for c in charts} == EXPECTED_POINTS
    marks = {c.trend.title: sum(len(s.points()) for s in c.normal_marks + c.abnormal_marks) for c in charts}
    assert marks == {title: sum(points) for title, points in EXPECTED_POINTS.items()}
    by_title = {c.trend.title: c for c in charts}
    assert by_title["Blood pressure"].title_label.accessibleName() == \
        "Blood pressure: latest 132/80 mmHg on 11-Feb-2022"
    assert by_title["Weight"].accessibleDescription().endswith("04-Aug-2022 86.9 kg")  # every value, in words
    egfr = by_title["eGFR"]
    assert egfr.title_label.accessibleName() == "eGFR: latest 58 mL/min/1.73m² (L) on 01-May-2023"
    assert [len(s.points()) for s in egfr.abnormal_marks] == [1]  # only the last value is under 60
    assert panel.status_label.isHidden(), "no \"Drawing trend charts…\" left once they are drawn"
    # side by side in rows, as many to a row as fit
    assert len({c.geometry().top() for c in charts}) == 2 and len({c.geometry().left() for c in charts}) == 3


def test_values_in_different_units_are_never_one_line(qtbot, host) -> None:
    glucose = [reading("2020-01-01", "2345-7", 5.1, "mmol/L", "Glucose"),
               reading("2021-01-01", "2345-7", 5.6, "mmol/L", "Glucose"),
               reading("2022-01-01", "2345-7", 101, "mg/dL", "Glucose"),
               reading("2023-01-01", "2345-7", 99, "mg/dL", "Glucose")]
    view = open_record(qtbot, host, record(Section.loaded(SectionName.OBSERVATIONS, entries() + glucose)))
    panel, _ = charts_of(qtbot, view)
    panel.show_more()  # glucose is not one of the measures charted first
    qtbot.waitUntil(lambda: panel.done and len(panel.charts) == len(EXPECTED_POINTS) + 2)
    charts = panel.charts
    lines = {c.trend.title: drawn(c) for c in charts if c.trend.title.startswith("Glucose")}
    assert {title: [[v for _, v in line] for line in chart] for title, chart in lines.items()} == {
        "Glucose (mg/dL)": [[101, 99]], "Glucose (mmol/L)": [[5.1, 5.6]]}
    # HbA1c sent in % and in mmol/mol: one line, all of it in mmol/mol
    hba1c = next(c for c in charts if c.trend.title == "HbA1c")
    values = [v for line in drawn(hba1c) for _, v in line]
    assert len(values) == 7 and all(40 < v < 80 for v in values)
    assert "converted from %" in (hba1c.caption_label.text() if hba1c.caption_label else "")


@pytest.mark.parametrize("section", [Section.failed(SectionName.OBSERVATIONS, "the practice timed out"),
                                     Section.withheld(SectionName.OBSERVATIONS),
                                     Section.unsupported(SectionName.OBSERVATIONS),
                                     Section.loaded(SectionName.OBSERVATIONS, entries()[-2:])])  # each value once
def test_no_chart_and_no_none_when_the_results_did_not_load_or_hold_no_series(qtbot, host, section) -> None:
    view = open_record(qtbot, host, record(section))
    assert view.findChildren(TrendsPanel) == []
    texts = [label.text() for label in view.findChildren(QLabel)]
    assert not [t for t in texts if "Trend" in t or "trend" in t], texts
    if section.status == "failed":
        results = view.sections[SectionName.OBSERVATIONS]
        assert "does not mean none are recorded" in results.message


def test_results_read_again_after_a_failure_bring_their_charts(qtbot, host) -> None:
    view = open_record(qtbot, host, record(Section.failed(SectionName.OBSERVATIONS, "the practice timed out")))
    assert view.findChildren(TrendsPanel) == []
    view.replace_section(Section.loaded(SectionName.OBSERVATIONS, entries()))
    _, charts = charts_of(qtbot, view)
    assert len(charts) == len(EXPECTED_POINTS)


def test_the_research_view_shows_the_values_and_no_words(qtbot, host) -> None:
    rec = pseudonymise_record(record(), "R-AAAA-BBBB-CCCC")
    view = open_record(qtbot, host, rec)
    panel, charts = charts_of(qtbot, view)
    assert {c.trend.title: [len(line) for line in drawn(c)] for c in charts} == EXPECTED_POINTS
    words = " ".join(label.text() for label in panel.findChildren(QLabel))
    assert "TRENDS" not in words and "Alex" not in words


def test_the_mouse_wheel_over_a_chart_scrolls_the_record_and_never_zooms(qtbot, host) -> None:
    host.resize(1000, 420)  # the record is taller than its pane
    view = open_record(qtbot, host, record())
    view.resize(host.size())
    _, charts = charts_of(qtbot, view)
    scroll = view.body_scroll
    assert scroll is not None
    bar = scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 200)
    chart = charts[0]
    scroll.ensureWidgetVisible(chart, 0, 0)

    def in_view() -> bool:
        top_left = chart.plot.mapTo(scroll.viewport(), QPoint(0, 0))
        return scroll.viewport().rect().contains(QRect(top_left, chart.plot.size()))

    qtbot.waitUntil(in_view)
    assert bar.value() < bar.maximum(), "the results go on below the charts: room to scroll down"
    before, ranges = bar.value(), chart.view_box.viewRange()
    target = chart.plot.viewport()
    centre = QPointF(target.rect().center())
    wheel = QWheelEvent(centre, QPointF(target.mapToGlobal(target.rect().center())), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, wheel)
    assert bar.value() > before, "the wheel over a chart scrolls the record"
    assert chart.view_box.viewRange() == ranges, "and does not zoom the chart"


def test_charts_are_drawn_only_once_the_results_are_scrolled_to(qtbot, host) -> None:
    """A record read only down to its problems (or in a tab behind another) never pays for its charts."""
    host.resize(1000, 330)  # the banner and the sections above the results fill the pane
    load_pyqtgraph()
    problems = Section.loaded(SectionName.PROBLEMS, [Entry(f"Problem {n}", "2020-01-01", group="active")
                                                     for n in range(12)])
    rec = record()
    rec = dataclasses.replace(rec, sections={**rec.sections, SectionName.PROBLEMS: problems})
    view = open_record(qtbot, host, rec)
    view.resize(host.size())
    panel = view.findChildren(TrendsPanel)[0]
    qtbot.waitUntil(pyqtgraph_ready, timeout=IMPORT_TIMEOUT_MS)
    steps: list[int] = []

    def one_more() -> None:  # one step at a time: a chart's steps, had they been queued, would run in between
        steps.append(1)
        if len(steps) < 40:
            build_step(one_more)

    build_step(one_more)
    qtbot.waitUntil(lambda: len(steps) == 40)
    scroll = view.body_scroll
    assert scroll is not None
    assert panel.mapTo(scroll.viewport(), QPoint(0, 0)).y() >= scroll.viewport().height(), "below the fold"
    assert panel.charts == [] and not panel.done and panel.status_label.text() == LOADING_TEXT
    qtbot.waitUntil(lambda: scrolled_to(view, panel) and panel.done, timeout=IMPORT_TIMEOUT_MS)
    assert [c.trend.title for c in panel.charts] == list(EXPECTED_POINTS)


def test_other_series_wait_behind_one_button_so_the_results_stay_near(qtbot, host) -> None:
    extra = [reading(f"202{i}-02-02", code, value + i, unit, name) for i in (1, 2)
             for code, value, unit, name in (("2160-0", 88, "umol/L", "Creatinine"), ("8302-2", 178, "cm", "Height"),
                                             ("2823-3", 4.1, "mmol/L", "Potassium"))]
    view = open_record(qtbot, host, record(Section.loaded(SectionName.OBSERVATIONS, entries() + extra)))
    panel, charts = charts_of(qtbot, view)
    assert [c.trend.title for c in charts] == list(EXPECTED_POINTS)
    assert not panel.more_button.isHidden()
    assert panel.more_button.text() == "Show 3 more trends"
    assert panel.more_button.toolTip() == "Height, Creatinine, Potassium"
    qtbot.mouseClick(panel.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.done and len(panel.charts) == 9)
    assert [c.trend.title for c in panel.charts[6:]] == ["Height", "Creatinine", "Potassium"]
    assert panel.more_button.isHidden()


def test_a_record_with_only_other_series_shows_them_at_once(qtbot, host) -> None:
    extra = [reading(f"202{i}-02-02", "2160-0", 88 + i, "umol/L", "Creatinine") for i in (1, 2)]
    view = open_record(qtbot, host, record(Section.loaded(SectionName.OBSERVATIONS, extra)))
    panel, charts = charts_of(qtbot, view)
    assert [c.trend.title for c in charts] == ["Creatinine"] and panel.more_button.isHidden()


def test_date_ticks_name_years_over_long_spans_and_months_over_short_ones() -> None:
    from datetime import UTC, datetime

    from app.ui.trends import date_ticks

    def at(*args: int) -> float:
        return datetime(*args, tzinfo=UTC).timestamp()

    assert [label for _, label in date_ticks(at(2019, 3, 1), at(2023, 6, 1))] == ["2020", "2021", "2022", "2023"]
    assert [label for _, label in date_ticks(at(2000, 3, 1), at(2023, 6, 1))] == [
        "2005", "2010", "2015", "2020"]
    assert [label for _, label in date_ticks(at(2023, 2, 10), at(2023, 11, 20))] == ["Mar", "May", "Jul", "Sep", "Nov"]
    assert [label for _, label in date_ticks(at(2022, 11, 10), at(2023, 4, 20))] == [
        "Dec", "2023", "Feb", "Mar", "Apr"]
    assert [label for _, label in date_ticks(at(2023, 2, 3), at(2023, 2, 20))] == ["3-Feb-23", "20-Feb-23"]
    for start, end in ((at(2019, 3, 1), at(2023, 6, 1)), (at(2023, 2, 10), at(2023, 11, 20))):
        assert all(start <= t <= end for t, _ in date_ticks(start, end))


def test_a_point_under_the_mouse_says_its_date_and_value(qtbot, host) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    view = open_record(qtbot, host, record())
    _, charts = charts_of(qtbot, view)
    chart = next(c for c in charts if c.trend.title == "HbA1c")
    assert view.body_scroll is not None
    view.body_scroll.ensureWidgetVisible(chart, 0, 0)
    qtbot.waitUntil(lambda: view.body_scroll.viewport().rect().contains(
        QRect(chart.mapTo(view.body_scroll.viewport(), QPoint(0, 0)), chart.size())))
    point = chart.abnormal_marks[0].points()[0]  # 7.8 % on 15-Jan-2020, converted
    viewport = chart.plot.viewport()

    def hovered() -> bool:
        """The mouse moves onto the point (again: pyqtgraph takes at most one move per frame's time, and the
        point is where the chart's latest layout put it)."""
        at = chart.plot.mapFromScene(chart.abnormal_marks[0].mapToScene(point.pos()))
        move = QMouseEvent(QEvent.Type.MouseMove, QPointF(at), QPointF(viewport.mapToGlobal(at)),
                           Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, move)
        return bool(chart.view_box.toolTip())

    qtbot.waitUntil(hovered)
    # (7.8 - 2.15) x 10.929 = 61.75 mmol/mol, written as the series' own values are (whole numbers); the range
    # 4-6 % converted likewise
    assert chart.view_box.toolTip() == "15-Jan-2020\n62 mmol/mol (H)\n(sent as 7.8 %)\nrange 20–42"


def test_without_a_working_pyqtgraph_the_panel_says_so_and_the_record_stands(qtbot, host, monkeypatch) -> None:
    from app.ui import trends

    broken = trends._Loader()
    broken.error = "ImportError: No module named 'numpy'"
    monkeypatch.setattr(trends, "_LOADER", broken)
    view = open_record(qtbot, host, record())
    panel = view.findChildren(TrendsPanel)[0]
    qtbot.waitUntil(lambda: panel.done)
    assert panel.charts == [] and panel.more_button.isHidden()
    assert panel.status_label.text() == ("Trend charts could not be drawn (ImportError: No module named 'numpy'); "
                                         "the values are in the results below.")
    assert view.sections[SectionName.OBSERVATIONS].table is not None


def test_start_up_preparation_imports_pyqtgraph_and_draws_one_chart_unseen(qtbot, caplog) -> None:
    from app.ui import trends

    trends.prepare()  # as settle_heap does before the window is shown; again is harmless
    trends.prepare()
    assert trends.pyqtgraph_ready()
    assert not [r for r in caplog.records if r.name == "mosaic.ui.trends"], "the warm-up chart drew without a fault"
