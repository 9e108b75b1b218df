"""The Locality view's charts, drawn with pyqtgraph as the record's trend charts are (app/ui/trends.py).

Each chart is made once, when the window is built, and later answers only change its items' data: a new query
costs the GUI thread a few milliseconds of setData and one paint, never a chart's construction. The charts hold
still (no zoom, pan or menu). A suppressed, not-provided or failed figure has no bar or point: its place carries
the words ("<5", "not provided", "failed") so that it is never read as a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.insight.measures import MEASURES, Figure
from app.ui.locality.source import Funnel, National
from app.ui.locality.words import CUT_WORDS, cell_text, group_words, number, short_month
from app.ui.style import BLUE, BORDER, ERROR, SECONDARY, SUCCESS, TEXT, WARNING_BORDER

CHART_HEIGHT = 320
BAR_COLOUR = QColor(BLUE)
HIGHLIGHT_COLOUR = QColor("#003087")
NOT_SHOWN_COLOUR = QColor(SECONDARY)
_STYLE = f"""
QFrame#localityChart {{ background: white; border: 1px solid {BORDER}; }}
QLabel#chartTitle {{ color: {TEXT}; font-weight: 700; border: none; }}
QLabel#chartCaption {{ color: {SECONDARY}; font-size: 9pt; border: none; }}
"""


def _pg() -> Any:
    import pyqtgraph  # imported already, off the GUI thread (app.ui.trends.load_pyqtgraph)

    return pyqtgraph


def _font(size: float = 8.5) -> QFont:
    font = QFont()
    font.setPointSizeF(size)
    return font


def _label(text: str) -> str:
    """A bar's label: a practice's first word ("Riverside"), or the group's words cut to fit."""
    first = text.split()[0] if " " in text and len(text) > 12 else text
    return first if len(first) <= 14 else first[:13] + "…"


class Chart(QFrame):
    """A titled chart: a still pyqtgraph plot with labelled axes, and a caption saying what is not drawn."""

    clicked = Signal(int)  # the index of the bar or point nearest the click

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg = _pg()
        self.setObjectName("localityChart")
        self.setStyleSheet(_STYLE)
        self.setFixedHeight(CHART_HEIGHT)  # the charts scroll together; none takes the whole view
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 6, 4)
        layout.setSpacing(2)
        self.title = QLabel(name)
        self.title.setObjectName("chartTitle")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.plot = pg.PlotWidget(background="w", enableMenu=False)
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot.setFrameShape(QFrame.Shape.NoFrame)
        self.item = self.plot.getPlotItem()
        self.item.setMouseEnabled(False, False)
        self.item.hideButtons()
        self.item.setMenuEnabled(False)
        self.item.showGrid(x=False, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.item.getAxis(axis).setStyle(tickFont=_font(), autoExpandTextSpace=True)
            self.item.getAxis(axis).enableAutoSIPrefix(False)
        layout.addWidget(self.plot, 1)
        self.caption = QLabel("")
        self.caption.setObjectName("chartCaption")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.caption)
        self._texts: list[Any] = []
        self._xs: list[float] = []
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.setAccessibleName(name)

    def set_title(self, text: str, description: str) -> None:
        self.title.setText(text)
        self.setAccessibleName(text)
        self.setAccessibleDescription(description)  # every value in words, for a screen reader
        self.plot.setAccessibleName(text)

    def _clear_texts(self) -> None:
        for text in self._texts:
            self.item.removeItem(text)
        self._texts = []

    def _text(self, x: float, y: float, words: str, colour: str = SECONDARY, anchor: tuple[float, float] = (0.5, 1)
              ) -> None:
        item = _pg().TextItem(words, color=colour, anchor=anchor)
        item.setFont(_font(8))
        item.setPos(x, y)
        self.item.addItem(item, ignoreBounds=True)
        self._texts.append(item)

    def _clicked(self, event: Any) -> None:
        if not self._xs:
            return
        point = self.item.vb.mapSceneToView(event.scenePos())
        nearest = min(range(len(self._xs)), key=lambda i: abs(self._xs[i] - point.x()))
        self.clicked.emit(nearest)


class BarChart(Chart):
    """One bar per practice (or mode, clinician type, category), in the order given (by name, never by value),
    with the nation's 10th, 50th and 90th centiles as lines when GPAD figures are imported."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("By practice", parent)
        pg = _pg()
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=BAR_COLOUR, pen=pg.mkPen(None))
        self.item.addItem(self.bars)
        self.centiles = [pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(colour, width=1, style=style),
                                         label=label, labelOpts={"position": 0.01, "color": colour,
                                                                 "anchors": [(0, 1), (0, 1)]})
                         for colour, style, label in ((SECONDARY, Qt.PenStyle.DashLine, "national 10th centile"),
                                                      (TEXT, Qt.PenStyle.DashLine, "national median"),
                                                      (SECONDARY, Qt.PenStyle.DashLine, "national 90th centile"))]
        for line in self.centiles:
            line.setVisible(False)
            self.item.addItem(line, ignoreBounds=True)

    def show_figures(self, figures: Sequence[Figure], labels: Sequence[str], metric: str, cut: str,
                     national: National | None, chosen: int | None = None) -> None:
        unit = MEASURES[metric].unit
        xs = list(range(len(figures)))
        self._xs = [float(x) for x in xs]
        drawn = [(x, f.value) for x, f in zip(xs, figures, strict=True)
                 if f.status == "ok" and not f.suppressed and f.value is not None]
        brushes = [HIGHLIGHT_COLOUR if x == chosen else BAR_COLOUR for x, _ in drawn]
        self.bars.setOpts(x=[x for x, _ in drawn], height=[v for _, v in drawn], width=0.6, brushes=brushes)
        self._clear_texts()
        top = max([v for _, v in drawn] + [1.0])
        for x, figure in zip(xs, figures, strict=True):
            words = cell_text(figure, unit)
            if figure.status == "ok" and not figure.suppressed and figure.value is not None:
                self._text(x, figure.value, number(figure.value, unit), TEXT)
            else:
                colour = ERROR if figure.status == "failed" else SECONDARY
                self._text(x, top * 0.04, "not provided" if figure.status == "not provided" else
                           "failed" if figure.status == "failed" else words, colour, (0.5, 1))
        if national is not None and cut == "practice":
            for line, value in zip(self.centiles, (national.cuts[0], national.cuts[4], national.cuts[8]), strict=True):
                line.setPos(value)
                line.setVisible(True)
                top = max(top, value)
        else:
            for line in self.centiles:
                line.setVisible(False)
        axis = self.item.getAxis("bottom")
        axis.setTicks([[(x, _label(label)) for x, label in zip(xs, labels, strict=True)]])
        self.item.setLabel("bottom", CUT_WORDS.get(cut, cut).capitalize())
        self.item.setLabel("left", _axis_words(metric))
        self.item.setXRange(-0.6, max(len(xs), 1) - 0.4, padding=0)
        self.item.setYRange(0, top * 1.15, padding=0)
        caption = []
        if national is not None and cut == "practice":
            caption.append(f"Dashed lines: the national 10th centile, median and 90th centile of "
                           f"{national.practices:,} practices (GPAD).")
        caption.append("No bar: &lt;5 or suppressed (too few to show), or not provided by the practice's system — "
                       "never zero.")
        self.caption.setText(" ".join(caption))


class SeriesChart(Chart):
    """The measure over time (weekly or monthly) for the locality or the practice zoomed to."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Over time", parent)
        pg = _pg()
        self.line = pg.PlotDataItem(x=[], y=[], pen=pg.mkPen(BLUE, width=2), symbol="o", symbolSize=6,
                                    symbolBrush=BAR_COLOUR, symbolPen=pg.mkPen(None), connect="finite")
        self.item.addItem(self.line)

    def show_series(self, figures: Sequence[Figure], metric: str, weekly: bool) -> None:
        unit = MEASURES[metric].unit
        units = [f.period for f in figures]
        xs = list(range(len(units)))
        self._xs = [float(x) for x in xs]
        ys = [f.value if f.status == "ok" and not f.suppressed and f.value is not None else float("nan")
              for f in figures]
        self.line.setData(x=xs, y=ys)
        self._clear_texts()
        finite = [y for y in ys if y == y]
        top = max(finite + [1.0])
        missing = []
        for x, figure in zip(xs, figures, strict=True):
            if not (figure.status == "ok" and not figure.suppressed and figure.value is not None):
                self._text(x, top * 0.04, cell_text(figure, unit) if figure.status == "ok" else figure.status)
                missing.append(f"{units[x]}: {cell_text(figure, unit)}")
        step = max(1, len(xs) // 8)
        ticks = [(x, units[x].split("-")[1] if weekly else short_month(units[x])) for x in xs[::step]]
        self.item.getAxis("bottom").setTicks([ticks])
        self.item.setLabel("bottom", "ISO week" if weekly else "Month")
        self.item.setLabel("left", _axis_words(metric))
        self.item.setXRange(-0.5, max(len(xs), 1) - 0.5, padding=0)
        self.item.setYRange(0, top * 1.15, padding=0)
        self.caption.setText("Gaps are figures not shown: " + "; ".join(missing) if missing else "")


class FunnelChart(Chart):
    """Each practice's value against its denominator, inside the 95 % and 99.8 % limits around the national (or
    the locality's) figure: a practice is placed, never ranked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Funnel plot", parent)
        pg = _pg()
        self.target = pg.PlotDataItem(x=[], y=[], pen=pg.mkPen(TEXT, width=1.5))
        self.inner = [pg.PlotDataItem(x=[], y=[], pen=pg.mkPen(WARNING_BORDER, width=1.5, style=Qt.PenStyle.DashLine))
                      for _ in range(2)]
        self.outer = [pg.PlotDataItem(x=[], y=[], pen=pg.mkPen(ERROR, width=1.5)) for _ in range(2)]
        self.points = pg.ScatterPlotItem(x=[], y=[], size=9, brush=pg.mkBrush(BLUE), pen=pg.mkPen("w"))
        for item in (self.target, *self.inner, *self.outer, self.points):
            self.item.addItem(item)

    def show_funnel(self, funnel: Funnel | None, metric: str, empty_words: str) -> None:
        self._clear_texts()
        if funnel is None:
            for item in (self.target, *self.inner, *self.outer):
                item.setData(x=[], y=[])
            self.points.setData(x=[], y=[])
            self._xs = []
            self.caption.setText(empty_words)
            return
        dens = [row[0] for row in funnel.limits]
        self.target.setData(x=dens, y=[funnel.target] * len(dens))
        self.outer[0].setData(x=dens, y=[row[1] for row in funnel.limits])
        self.inner[0].setData(x=dens, y=[row[2] for row in funnel.limits])
        self.inner[1].setData(x=dens, y=[row[3] for row in funnel.limits])
        self.outer[1].setData(x=dens, y=[row[4] for row in funnel.limits])
        self.points.setData(x=[p.denominator for p in funnel.points], y=[p.value for p in funnel.points])
        self._xs = [p.denominator for p in funnel.points]
        for p in funnel.points:
            self._text(p.denominator, p.value, _label(p.name), TEXT, (0, 1))
        ys = [p.value for p in funnel.points] + [funnel.target]
        low = min([row[1] for row in funnel.limits] + ys)
        high = max([row[4] for row in funnel.limits] + ys)
        spread = (high - low) or 1.0
        unit = MEASURES[metric].unit
        self.item.setYRange(max(0.0, low - spread * 0.05), high + spread * 0.1, padding=0)
        self.item.setXRange(dens[0], dens[-1], padding=0)
        self.item.setLabel("left", _axis_words(metric))
        self.item.setLabel("bottom", f"Denominator: {funnel.denominator_words} (count)")
        self.item.getAxis("bottom").setTicks(None)
        self.caption.setText(
            f"<span style='color:{TEXT}'>━</span> {funnel.target_from} figure {number(funnel.target, unit)}"
            f"{'' if unit == 'count' else ' ' + unit} &nbsp; <span style='color:{WARNING_BORDER}'>╌</span> 95 % limits"
            f" &nbsp; <span style='color:{ERROR}'>━</span> 99.8 % limits &nbsp; "
            f"<span style='color:{SUCCESS}'>A point outside a limit is worth a look, not a verdict.</span>")


def _axis_words(metric: str) -> str:
    measure = MEASURES[metric]
    unit = {"count": "appointments" if measure.name == "appointments" else "count"}.get(measure.unit, measure.unit)
    return f"{measure.title} ({unit})"


def group_label(value: str | None, names: dict[str, str] | None = None) -> str:
    if names and value in names:
        return names[value]
    return group_words(value)
