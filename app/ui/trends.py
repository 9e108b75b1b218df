"""Trend charts of a record's numeric series: small multiples, one chart per measure (app/core/trends.py).

Drawn with pyqtgraph rather than matplotlib's Qt backend: pyqtgraph's plots are QGraphicsView widgets that live
in the record's own layout and repaint with it at Qt's speed (items in a scene, axes cached), whereas a matplotlib
canvas is a figure rendered to a bitmap through Agg and rendered again on every resize. QtCharts is deprecated.

Importing pyqtgraph (with numpy) takes ~300 ms or more, far over the GUI stall budget, and a worker thread's
import holds the interpreter lock (the window stalled 65-100 ms), so the window imports it at start-up, before it
is shown (`prepare`, from app.ui.app.settle_heap); a process that did not (the tests) imports it in a worker when
the first panel needs it (`load_pyqtgraph`), which shows "Drawing trend charts…" meanwhile. Each chart is then
built in two steps of the record views' step queue (`TrendsPanel.build`), as record sections are.

The charts hold still: no zoom, pan, context menu or auto-range button, and a mouse wheel over a chart
scrolls the record as it does anywhere else.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import shiboken6
from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QFontMetrics, QPaintEvent, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QFrame,
    QGraphicsItem,
    QGraphicsView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core.display import format_partial_date
from app.core.model import PatientRecord
from app.core.trends import Line, Point, Trend, record_trends
from app.ui.style import BLUE, BORDER, ERROR, SECONDARY, SUCCESS, TEXT

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger("mosaic.ui.trends")

MAX_CHARTS = 24  # a record with more numeric series charts the first ones (known measures first) and says so
CHART_MIN_WIDTH = 300  # charts sit side by side, as many to a row as fit at this width
CHART_HEIGHT = 190
LINE_COLOURS = (BLUE, "#ae2573", "#007f3b", "#7c2855")  # first line (systolic) blue, second (diastolic) pink
BAND_COLOUR = (0, 127, 59, 28)  # the reference range: a pale green band
LOADING_TEXT = "Drawing trend charts…"

Step = Callable[[], None]


class _Loader(QObject):
    """Imports pyqtgraph once, in a worker thread, and calls back on the GUI thread when it is there."""

    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.module: ModuleType | None = None
        self.error: str | None = None
        self._waiting: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self.finished.connect(self._deliver)  # emitted from the worker: queued to the GUI thread

    @property
    def done(self) -> bool:
        return self.module is not None or self.error is not None

    def request(self, callback: Callable[[], None] | None = None) -> None:
        if self.done:
            if callback is not None:
                callback()
            return
        if callback is not None:
            self._waiting.append(callback)
        if "pyqtgraph" in sys.modules and self._thread is None:  # imported at start-up (see `prepare`)
            self._import()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._import, name="mosaic-import-pyqtgraph", daemon=True)
            self._thread.start()

    def _import(self) -> None:
        try:
            import pyqtgraph

            pyqtgraph.setConfigOptions(antialias=False, background="w", foreground=SECONDARY)  # lines ask for it
            self.module = pyqtgraph
        except Exception as exc:  # a broken install must not take the record with it
            log.exception("pyqtgraph could not be imported")
            self.error = f"{type(exc).__name__}: {exc}"
        self.finished.emit()

    @Slot()
    def _deliver(self) -> None:
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            try:
                callback()
            except Exception:
                log.exception("a trend chart step failed")


_LOADER: _Loader | None = None


def _loader() -> _Loader:
    global _LOADER
    if _LOADER is None:
        _LOADER = _Loader()
    return _LOADER


def load_pyqtgraph(callback: Callable[[], None] | None = None) -> None:
    """Import pyqtgraph off the GUI thread (once), then call `callback` on the GUI thread; at once if done.
    Without a callback: start the import now, so that the first record with trends does not wait for it."""
    _loader().request(callback)


def prepare() -> None:
    """Import pyqtgraph on this thread and build and paint one chart, unseen: what the first chart would pay
    for the first time (~30 ms). For start-up, before the window is shown (app.ui.app.settle_heap), where
    it joins the rest of what is imported then (~0.3 s or more); a worker's import would hold the interpreter
    lock and stall the window for 65-100 ms."""
    loader = _loader()
    if not loader.done:
        loader._import()
    if loader.module is None:
        return
    try:  # a warm-up that fails costs the first chart its ~30 ms, never the start
        points = (Point(datetime(2020, 1, 1, tzinfo=UTC), "2020", 3.0, 0.5, 2.5, "H"),
                  Point(datetime(2021, 6, 1, tzinfo=UTC), "2021-06", 2.0, 0.5, 2.5))
        chart = TrendChart(Trend("warm-up", "Warm-up", "", (Line("Warm-up", "", points),)))
        chart.resize(CHART_MIN_WIDTH, CHART_HEIGHT)
        chart.grab()
        chart.deleteLater()
    except Exception:
        log.exception("warming up the trend charts failed")


def pyqtgraph_ready() -> bool:
    return _LOADER is not None and _LOADER.module is not None


def _pg() -> Any:
    module = _loader().module
    assert module is not None, "load_pyqtgraph first"
    return module


def _when_text(point: Point) -> str:
    return format_partial_date(point.when_text) if point.when_text else ""


def _day_text(point: Point) -> str:
    """The date without the time of day (a title says which day; the point's tooltip has the time)."""
    return format_partial_date(point.when_text[:10]) if point.when_text else ""


def _value_text(trend: Trend, point: Point, unit: str) -> str:
    text = f"{trend.format(point.value)} {unit}".strip()
    if point.abnormal:
        text += f" ({point.flag})"
    return text


def title_html(trend: Trend) -> str:
    """"<b>HbA1c</b> 58 mmol/mol (H) · 12-Mar-2026": the measure, its latest value (red when abnormal) and date."""
    last = trend.latest_when
    latest = [line.latest for line in trend.lines if line.latest.when == last]
    value = trend.latest_text()
    flags = [p.flag for p in latest if p.abnormal and p.flag]
    if flags:
        value = f'<span style="color:{ERROR}; font-weight:600">{value} ({"/".join(dict.fromkeys(flags))})</span>'
    return f"<b>{_escape(trend.title)}</b>&nbsp; {value} &nbsp;<span style='color:{SECONDARY}'>· " \
           f"{_day_text(latest[0])}</span>"


def title_text(trend: Trend) -> str:
    """The title as plain words (the chart's accessible name)."""
    last = trend.latest_when
    latest = [line.latest for line in trend.lines if line.latest.when == last]
    flags = "/".join(dict.fromkeys(p.flag for p in latest if p.abnormal and p.flag))
    flagged = f" ({flags})" if flags else ""
    return f"{trend.title}: latest {trend.latest_text()}{flagged} on {_day_text(latest[0])}"


def values_text(trend: Trend) -> str:
    """Every value in words, oldest first: "Systolic: 11-Feb-2019 148 mmHg, ...; Diastolic: ..."."""
    return "; ".join((f"{line.name}: " if len(trend.lines) > 1 else "")
                     + ", ".join(f"{_day_text(p)} {_value_text(trend, p, line.unit)}" for p in line.points)
                     for line in trend.lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _caption(trend: Trend) -> str:
    """What the chart shows besides the title: the lines by colour, the range, values converted on the way."""
    parts = []
    if len(trend.lines) > 1:
        parts += [f"<span style='color:{LINE_COLOURS[i % len(LINE_COLOURS)]}'>●</span> {_escape(line.name)}"
                  for i, line in enumerate(trend.lines)]
    band = _range_text(trend, *trend.reference_range)
    if band:
        parts.append(f"<span style='color:{SUCCESS}'>■</span> range {band}")
    converted = {p.original.split(" ", 1)[-1] for line in trend.lines for p in line.points if p.original}
    if converted:
        parts.append(f"some converted from {', '.join(sorted(converted))}")
    abnormal = sum(p.abnormal for line in trend.lines for p in line.points)
    if abnormal:
        parts.append(f"<span style='color:{ERROR}'>▲</span>&nbsp;{abnormal}&nbsp;abnormal")
    return " &nbsp; ".join(parts)


def _range_text(trend: Trend, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{trend.format(low)}–{trend.format(high)}"
    if low is not None:
        return f"≥ {trend.format(low)}"
    return f"≤ {trend.format(high)}" if high is not None else ""


_VIEW_CLASS: type | None = None


def _view_class() -> type:
    """pg.GraphicsView that holds still: the wheel goes to the record's scroll area, never to a zoom."""
    global _VIEW_CLASS
    if _VIEW_CLASS is None:
        pg = _pg()

        class _StillView(pg.GraphicsView):  # type: ignore[name-defined]
            def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
                _scroll_the_record(self, event)

        _VIEW_CLASS = _StillView
    return _VIEW_CLASS


def _scroll_the_record(chart_view: QAbstractScrollArea, event: QWheelEvent) -> None:
    """Hand a wheel turned over a chart to the scroll area the chart is in (the record's), as if the chart were
    not there. Said here rather than left to Qt's propagation of an ignored event, which it does for wheel
    events from the window system only (not for synthesised ones, such as a touchpad driver's or a test's)."""
    area = chart_view.parentWidget()
    while area is not None and not isinstance(area, QAbstractScrollArea):
        area = area.parentWidget()
    if area is None:
        event.ignore()
        return
    viewport = area.viewport()
    position = chart_view.viewport().mapTo(viewport, event.position().toPoint())
    forwarded = QWheelEvent(QPointF(position), event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                            event.buttons(), event.modifiers(), event.phase(), event.inverted(), event.source())
    QApplication.sendEvent(viewport, forwarded)
    event.setAccepted(True)  # never zoom or pan the chart, whatever the record did with it


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_ticks(t_min: float, t_max: float, most: int = 6) -> list[tuple[float, str]]:
    """Labelled ticks for a time axis from t_min to t_max (Unix seconds): years ("2021") over two years or
    more, else months ("Mar", January as its year), at most `most` of them; the two ends' dates for a span
    shorter than that. Worked out here once rather than by pyqtgraph's DateAxisItem on every paint."""
    start, end = datetime.fromtimestamp(t_min, UTC), datetime.fromtimestamp(t_max, UTC)
    ticks: list[tuple[float, str]] = []
    if end.year - start.year >= 2:
        years = end.year - start.year + 1
        step = next((n for n in (1, 2, 5, 10, 20, 50) if years / n <= most), 100)
        first = math.ceil(start.year / step) * step  # round years: 2005, 2010, ...
        ticks = [(moment.timestamp(), str(year)) for year in range(first, end.year + 1, step)
                 if t_min <= (moment := datetime(year, 1, 1, tzinfo=UTC)).timestamp() <= t_max]
    else:
        months = (end.year - start.year) * 12 + end.month - start.month
        step = next((n for n in (1, 2, 3, 6, 12) if months / n < most), 12)
        for number in range(start.year * 12 + start.month - 1, end.year * 12 + end.month, 1):
            year, month = divmod(number, 12)
            moment = datetime(year, month + 1, 1, tzinfo=UTC)
            if month % step == 0 and t_min <= moment.timestamp() <= t_max:
                ticks.append((moment.timestamp(), str(year) if month == 0 else _MONTHS[month]))
    if len(ticks) < 2:
        ticks = [(t, f"{(d := datetime.fromtimestamp(t, UTC)).day}-{_MONTHS[d.month - 1]}-{d.year % 100:02d}")
                 for t in (t_min, t_max)]
    return ticks


_PANEL_STYLE = f"""
QLabel#trendsTitle {{ font-size: 10pt; font-weight: 700; color: {TEXT}; }}
QFrame#trendChart {{ background: white; border: 1px solid {BORDER}; }}
QLabel#trendTitle {{ color: {TEXT}; border: none; }}
QLabel#trendCaption {{ color: {SECONDARY}; font-size: 8pt; border: none; }}
"""


@lru_cache(maxsize=1)
def _tick_font() -> QFont:
    font = QFont()
    font.setPointSizeF(8)
    return font


def _tip(x: float, y: float, data: Any) -> str:
    return str(data)


class TrendChart(QFrame):
    """One measure: title with the latest value, the chart (date axis, range band, abnormal points marked)."""

    def __init__(self, trend: Trend, parent: QWidget | None = None, *, draw: bool = True) -> None:
        super().__init__(parent)
        pg = _pg()
        self.trend = trend
        self.setObjectName("trendChart")
        self.setMinimumWidth(CHART_MIN_WIDTH)
        self.setFixedHeight(CHART_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(title_text(trend))
        self.setAccessibleDescription(values_text(trend))  # what the chart shows, for a screen reader
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 4, 2)
        layout.setSpacing(0)
        self.title_label = QLabel(title_html(trend))
        self.title_label.setObjectName("trendTitle")
        self.title_label.setTextFormat(Qt.TextFormat.RichText)
        self.title_label.setWordWrap(True)  # a long name and unit never widen the chart past its column
        self.title_label.setAccessibleName(title_text(trend))
        layout.addWidget(self.title_label)
        caption = _caption(trend)
        self.caption_label: QLabel | None = None
        if caption:
            self.caption_label = QLabel(caption)
            self.caption_label.setObjectName("trendCaption")
            self.caption_label.setTextFormat(Qt.TextFormat.RichText)
            self.caption_label.setWordWrap(True)
            layout.addWidget(self.caption_label)

        # A view, a box and two axes: what PlotWidget makes, less its menus, buttons and hidden axes (half the cost).
        self.plot = _view_class()(background="w")
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot.setFrameShape(QFrame.Shape.NoFrame)
        # No background cache: pyqtgraph keeps a pixmap of the whole view for its (plain white) background,
        # ~240 KB a chart, most of what a chart costs.
        self.plot.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
        self.plot.setAccessibleName(f"{trend.title} chart")
        self.plot.viewport().setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing to do with a key: Tab passes by
        self.plot.viewport().setAccessibleName(f"{trend.title} chart")
        grid = pg.GraphicsLayout()
        grid.setContentsMargins(0, 4, 6, 0)
        grid.setSpacing(0)
        self.plot.setCentralItem(grid)
        self.view_box = pg.ViewBox(enableMouse=False, enableMenu=False, defaultPadding=0.0)
        metrics = QFontMetrics(_tick_font())
        axes = {}
        for name in ("left", "bottom"):
            axis = pg.AxisItem(name)
            axis.enableAutoSIPrefix(False)
            # Sized here, not after the first paint (which would lay the chart out and paint it again); labelled
            # ticks only; painted once into a cache, as a record scrolls far more often than an axis changes.
            axis.setStyle(tickFont=_tick_font(), tickTextOffset=3, autoExpandTextSpace=False, maxTickLevel=1)
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            axis.linkToView(self.view_box)
            axes[name] = axis
        widest = max(len(trend.format(p.value)) for line in trend.lines for p in line.points)
        axes["left"].setWidth(metrics.horizontalAdvance("8" * (widest + 1)) + 8)
        axes["left"].setGrid(38)
        axes["bottom"].setHeight(metrics.height() + 8)
        grid.addItem(axes["left"], 0, 0)
        grid.addItem(self.view_box, 0, 1)
        grid.addItem(axes["bottom"], 1, 1)
        self.points_drawn: list[int] = []  # per line: the points put on it
        self.curves: list[Any] = []  # per line, its pg.PlotCurveItem
        self.normal_marks: list[Any] = []  # pg.ScatterPlotItems: points within range (or without one)
        self.abnormal_marks: list[Any] = []  # and points flagged abnormal, red
        self._time_axis = axes["bottom"]
        layout.addWidget(self.plot, 1)
        if draw:
            self.draw()

    def draw(self) -> None:
        """Put the lines, points and range band in (once); a separate step from making the chart."""
        if not self.points_drawn:
            self._draw(_pg(), self.view_box, self._time_axis)

    def _draw(self, pg: Any, item: Any, time_axis: Any) -> None:
        trend = self.trend
        values = [p.value for line in trend.lines for p in line.points]
        low, high = trend.reference_range
        y_min = min([*values, *(v for v in (low,) if v is not None)])
        y_max = max([*values, *(v for v in (high,) if v is not None)])
        spread = (y_max - y_min) or max(abs(y_max) * 0.1, 1.0)
        y_min, y_max = y_min - spread * 0.12, y_max + spread * 0.12
        times = [p.when.timestamp() for line in trend.lines for p in line.points]
        t_min, t_max = min(times), max(times)
        pad = max((t_max - t_min) * 0.04, 86400 * 15)
        if low is not None or high is not None:
            band = pg.LinearRegionItem(values=(low if low is not None else y_min, high if high is not None else y_max),
                                       orientation="horizontal", movable=False, brush=pg.mkBrush(*BAND_COLOUR),
                                       pen=pg.mkPen(None))
            band.setZValue(-10)
            item.addItem(band, ignoreBounds=True)
        for number, line in enumerate(trend.lines):
            colour = LINE_COLOURS[number % len(LINE_COLOURS)]
            self._line(pg, item, line, colour)
        item.disableAutoRange()
        item.setRange(xRange=(t_min - pad, t_max + pad), yRange=(y_min, y_max), padding=0)
        time_axis.setTicks([date_ticks(t_min - pad, t_max + pad)])

    def _line(self, pg: Any, item: Any, line: Line, colour: str) -> None:
        xs = [p.when.timestamp() for p in line.points]
        ys = [p.value for p in line.points]
        curve = pg.PlotCurveItem(xs, ys, pen=pg.mkPen(colour, width=2), antialias=True)
        item.addItem(curve)
        self.curves.append(curve)
        normal = [i for i, p in enumerate(line.points) if not p.abnormal]
        abnormal = [i for i, p in enumerate(line.points) if p.abnormal]
        tips = [self._point_tip(line, p) for p in line.points]
        if normal:
            self._scatter(item, pg.ScatterPlotItem([xs[i] for i in normal], [ys[i] for i in normal], size=7,
                                            brush=pg.mkBrush(colour), pen=pg.mkPen("w", width=1), symbol="o",
                                            data=[tips[i] for i in normal], hoverable=True, tip=_tip))
        if abnormal:  # red, larger, pointing the way the value is out of range
            symbols = [{"high": "t1", "low": "t"}.get(line.points[i].direction or "", "d") for i in abnormal]
            self._scatter(item, pg.ScatterPlotItem([xs[i] for i in abnormal], [ys[i] for i in abnormal], size=11,
                                            brush=pg.mkBrush(ERROR), pen=pg.mkPen("w", width=1), symbol=symbols,
                                            data=[tips[i] for i in abnormal], hoverable=True, tip=_tip),
                          abnormal=True)
        self.points_drawn.append(len(line.points))

    def _scatter(self, item: Any, scatter: Any, abnormal: bool = False) -> None:
        item.addItem(scatter)
        (self.abnormal_marks if abnormal else self.normal_marks).append(scatter)

    def _point_tip(self, line: Line, point: Point) -> str:
        name = f"{line.name}: " if len(self.trend.lines) > 1 else ""
        text = f"{_when_text(point)}\n{name}{_value_text(self.trend, point, line.unit)}"
        if point.original:
            text += f"\n(sent as {point.original})"
        band = _range_text(self.trend, point.low, point.high)
        if band:
            text += f"\nrange {band}"
        return text


class TrendsPanel(QFrame):
    """The record's trend charts, side by side in rows, built one chart per event-loop step.

    Make it with `trends_panel(record)` (None when the record has no series to chart), put it in a layout,
    then call `build(add_step)` with the record view's step queue. `complete` is emitted once every chart
    is on screen (or the charts could not be drawn)."""

    complete = Signal()

    def __init__(self, trends: list[Trend], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trendsPanel")
        # One style sheet for every chart, set before they exist (a sheet per chart would re-polish each).
        self.setStyleSheet(_PANEL_STYLE)
        charted = trends[:MAX_CHARTS]
        self.left_out = len(trends) - len(charted)
        self.first, self.more = first_and_more(charted)
        self.trends = charted
        self.charts: list[TrendChart] = []
        self.done = False
        self._add_step: Callable[[Step], None] | None = None
        self._waiting_to_be_seen = False  # build_when_seen was called: built once the panel is painted
        self.setAccessibleName("Trends")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        heading = QLabel(f"Trends  ({len(trends)})")
        heading.setObjectName("trendsTitle")  # a part of the results: under their title, not as large
        heading.setAccessibleName(f"Trends, {len(trends)} series")
        # "Drawing trend charts…" beside the heading: going, it moves no chart (which would paint them again)
        self.status_label = QLabel(LOADING_TEXT)
        self.status_label.setObjectName("secondary")
        self.status_label.setAccessibleName(LOADING_TEXT)
        self.status_label.setWordWrap(True)
        top = QHBoxLayout()
        top.setSpacing(12)
        top.addWidget(heading)
        top.addWidget(self.status_label, 1)
        outer.addLayout(top)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(8)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # As narrow as one chart whatever the columns hold: the columns follow the panel's width (_relayout), and
        # a grid that kept the width of three would hold the panel at three columns in a half-width pane.
        self._grid_host.setMinimumWidth(CHART_MIN_WIDTH)
        outer.addWidget(self._grid_host)
        # The measures a GP follows come first; the rest (a kidney profile's sodium, a lipid profile's HDL...)
        # wait behind one button, so that the results table is not pushed a screen or two down.
        more_text = f"Show {len(self.more)} more trend{'s' if len(self.more) != 1 else ''}"
        self.more_button = QPushButton(more_text)
        self.more_button.setObjectName("secondaryButton")
        self.more_button.setToolTip(", ".join(t.title for t in self.more))
        self.more_button.setAccessibleName(f"{more_text}: {', '.join(t.title for t in self.more)}")
        self.more_button.clicked.connect(self.show_more)
        self.more_button.hide()
        outer.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._columns = 0  # set by the first resize (the panel's width decides)

    def build_when_seen(self, add_step: Callable[[Step], None]) -> None:
        """`build` once the panel is first painted: some of it is on screen (its record's tab in front, scrolled
        to the results), with the record laid out. A record in a tab behind another, or read only down to its
        problems, never pays for charts nobody looks at: each is a graphics view (~0.4 MB) that every move,
        resize and split lays out again."""
        self._add_step = add_step
        self._waiting_to_be_seen = True
        self.update()  # on screen already: the next paint starts them

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self._waiting_to_be_seen:  # painted: on screen (Qt paints no widget outside the visible region)
            self._waiting_to_be_seen = False
            QTimer.singleShot(0, self, self._build_seen)

    @Slot()
    def _build_seen(self) -> None:
        if not (shiboken6.isValid(self) and self._add_step is not None and not self.charts and not self.done):
            return
        if self.visibleRegion().isEmpty():  # painted while the record was still being laid out, then moved off
            self._waiting_to_be_seen = True  # screen (the sections above it grew): wait until it is really seen
            return
        self.build(self._add_step)

    def build(self, add_step: Callable[[Step], None]) -> None:
        """Put the first charts on screen, two steps each, through `add_step` (after pyqtgraph's import, when
        needed); the others when asked (`show_more`)."""
        self._add_step = add_step
        self._waiting_to_be_seen = False

        def start() -> None:
            if not shiboken6.isValid(self):
                return
            if _loader().error is not None:
                self._finish(f"Trend charts could not be drawn ({_loader().error}); the values are in the "
                             "results below.")
                return
            steps = self.build_steps()
            add_step(lambda: self._run(steps, add_step))

        load_pyqtgraph(start)

    def show_more(self) -> None:
        """Draw the charts behind the "Show N more trends" button."""
        add_step = self._add_step
        if add_step is None or not self.more or not self.done:
            return
        self.more_button.hide()
        self.done = False
        more, self.more = self.more, []
        steps = self.build_steps(more)
        add_step(lambda: self._run(steps, add_step))

    def build_steps(self, trends: list[Trend] | None = None) -> Iterator[Step]:
        """Two steps per chart, making it and drawing it in, then one to finish (pyqtgraph must be imported:
        see `load_pyqtgraph`). Each step is a few milliseconds; a whole chart at once was up to 30 ms.
        By default the first charts (`first`)."""
        for trend in self.first if trends is None else trends:
            made: list[TrendChart] = []
            yield lambda trend=trend, made=made: made.append(TrendChart(trend, draw=False))  # type: ignore[misc]
            yield lambda made=made: self._add_chart(made[0])  # type: ignore[misc]
        yield self._finish

    def _run(self, steps: Iterator[Step], add_step: Callable[[Step], None]) -> None:
        if not shiboken6.isValid(self):
            return  # the record view was closed or replaced
        step = next(steps, None)
        if step is None:
            return
        try:
            step()
        except Exception:
            log.exception("building a trend chart failed")
        if not self.done:
            add_step(lambda: self._run(steps, add_step))

    def _add_chart(self, chart: TrendChart) -> None:
        chart.draw()
        index = len(self.charts)
        self.charts.append(chart)
        columns = max(1, self._columns)
        chart.setFixedWidth(self._chart_width(columns))
        self._grid.addWidget(chart, index // columns, index % columns)

    def _chart_width(self, columns: int) -> int:
        """Every chart as wide as the others, set rather than left to the grid: a grid shares the room out
        anew as each chart arrives (a few pixels each time), and every resize draws a chart again."""
        spacing = self._grid.horizontalSpacing()
        return max(CHART_MIN_WIDTH, (self.width() - spacing * (columns - 1)) // columns)

    def _finish(self, message: str | None = None) -> None:
        if message is None and self.left_out:
            message = f"{self.left_out} more series not charted (their values are in the results below)."
        if message:
            self.status_label.setText(message)
            self.status_label.setAccessibleName(message)
        else:
            self.status_label.hide()
        self.more_button.setVisible(bool(self.more) and _loader().error is None)
        self.done = True
        self.complete.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        """As many charts to a row as fit at CHART_MIN_WIDTH (at most 3), re-placed when that number changes."""
        spacing = self._grid.horizontalSpacing()
        columns = max(1, min(3, (self.width() + spacing) // (CHART_MIN_WIDTH + spacing)))
        width = self._chart_width(columns)
        for chart in self.charts:
            if chart.width() != width:
                chart.setFixedWidth(width)
        if columns == self._columns:
            return
        self._columns = columns
        for chart in self.charts:
            self._grid.removeWidget(chart)
        for index, chart in enumerate(self.charts):
            self._grid.addWidget(chart, index // columns, index % columns)


#: the measures charted first (a chart key before any "|unit"); the others wait behind "Show N more trends"
FIRST_MEASURES = frozenset({"bp", "weight", "bmi", "hba1c", "egfr", "cholesterol"})
FIRST_AT_LEAST = 3  # with fewer of those, the first other series make up a row


def first_and_more(trends: list[Trend]) -> tuple[list[Trend], list[Trend]]:
    """The charts drawn at once (the measures a GP follows, in clinical order) and those drawn when asked."""
    first = [t for t in trends if t.key.split("|")[0] in FIRST_MEASURES]
    others = [t for t in trends if t not in first]
    fill = max(0, FIRST_AT_LEAST - len(first))
    return first + others[:fill], others[fill:]


def trends_panel(record: PatientRecord) -> TrendsPanel | None:
    """The trends panel of a record, or None when it has no numeric series of two or more values (or its
    observations did not load: nothing is drawn and nothing says "none" for a section that failed)."""
    trends = record_trends(record)
    if not trends:
        return None
    load_pyqtgraph()  # start the import now: the panel is shown before its charts are built
    return TrendsPanel(trends)


class _RecordViewLike(Protocol):
    """What `attach_trends` needs of app.ui.record_view.RecordView (not imported: it imports this module)."""

    record_shown: Any

    @property
    def building(self) -> bool: ...

    def add_trends(self, widget: QWidget) -> None: ...


def attach_trends(view: _RecordViewLike, record: PatientRecord, add_step: Callable[[Step], None]) -> TrendsPanel | None:
    """Put the record's trend charts at the top of its results (`view.add_trends`) and draw them through the
    record views' step queue once every section is on screen (what matters first comes first) and the panel is
    on screen (`TrendsPanel.build_when_seen`). None, and
    nothing shown, when the record has no series to chart or its observations did not load."""
    panel = trends_panel(record)
    if panel is None:
        return None
    view.add_trends(panel)
    if not view.building:
        panel.build_when_seen(add_step)
        return panel

    def shown(_view: object) -> None:
        view.record_shown.disconnect(shown)
        if shiboken6.isValid(panel):  # not replaced by another record meanwhile
            panel.build_when_seen(add_step)

    view.record_shown.connect(shown)
    return panel
