"""The Locality view: activity, capacity, demand and performance across the practices (issue 13).

A window of its own beside the records (View ▸ Locality, Ctrl+Shift+L), as Access history is: the records stay where
they are, and a role with insight but no records (a locality lead) works here alone. Every query goes through
the bridge to the core's loop (app/ui/locality/source.py), which journals it and only then reads the store in a
worker thread; the answer comes back to this window (dropped if the window has gone) and is drawn in short
steps, one per turn of the event loop, onto charts made once: no step holds the GUI thread for long.

The window is made in parts too (`PARTS`, then the three charts): the first open shows a shell at once (the heading,
the refresh button, a line saying the view is being made), then makes the query bar, the figures' table, the side
panels and each chart in passes of their own, painting each chart in a pass of its own after the one that made it.
Made in one pass, the window and its charts held the GUI thread for 36-55 ms of its own CPU. Until every part is
there the view says it is still being made, the refresh is off, and no query runs; then `built` fires and the
first overview is asked for.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.policy import PolicyError
from app.insight.measures import MEASURES, Figure
from app.insight.periods import default_month
from app.ui import style
from app.ui.bridge import AsyncBridge
from app.ui.gui_first import gui_busy
from app.ui.locality.controls import QueryBar
from app.ui.locality.panels import DefinitionPanel, PeersPanel, QualityBadge, failed_style
from app.ui.locality.source import Answer, LocalitySource, Overview, ViewQuery
from app.ui.locality.words import NOT_PROVIDED, cell_text, chart_title, count_text, group_words, period_words
from app.ui.trends import load_pyqtgraph, pyqtgraph_ready

FIRST_STEP_MS = 0
#: between two parts of the window's construction: above 0 so that a pass of the event loop (input, the window's
#: timers, painting what the last part made) runs between them: a part queued at 0 from the constructor ran in the
#: same pass as it, before any timer was looked at
BUILD_GAP_MS = 1
#: the parts of the window made after its shell, one a pass (the charts follow, once pyqtgraph is in)
PARTS = ("query bar", "figures", "definition and peers")
CHART_PARTS = ("bar chart", "series chart", "funnel chart")
#: the first overview waits for the charts to be made, this long at most after the window is first shown
OVERVIEW_AT_THE_LATEST_MS = 2000
#: between two charts' steps: long enough for the last chart's paint to have a pass of its own. At 0 the three
#: charts' new data were painted together, in one pass of 40-60 ms of the GUI thread (AxisItem.paint the most)
PAINT_GAP_MS = 12


class LocalityWindow(QWidget):
    """Signals let tests wait instead of sleeping."""

    overview_loaded = Signal(object)  # Overview
    refreshed = Signal(object)  # RefreshReport, or the exception
    figures_shown = Signal(object)  # Answer, once every part of it is on screen
    query_failed = Signal(str)
    part_made = Signal(str)  # one of PARTS or CHART_PARTS, each in a pass of the event loop of its own
    built = Signal()  # every part of the window is made: the view is whole

    def __init__(self, bridge: AsyncBridge, core: Any, parent: QWidget | None = None,
                 source: LocalitySource | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.bridge = bridge
        self.core = core
        self.source = source or LocalitySource()
        self.answer: Answer | None = None
        self._generation = 0
        self._pending: concurrent.futures.Future[Any] | None = None
        self._refreshing = False
        self._opened = False
        self._overview_asked = False
        self._charts_ready = False
        self._rows: list[tuple[Figure, str]] = []
        self._progress: dict[str, str] = {}
        self._parts_made = False  # the query bar, the table and the side panels (PARTS)
        self._built = False  # and the charts
        self._controls_made = False
        self._focus_when_made = False
        self._overview_due = False
        self.made: list[str] = []  # the parts made so far, in order
        self.setObjectName("localityView")
        self.setWindowTitle("Locality · Mosaic")
        self.setAccessibleName("Locality view")
        self.setStyleSheet(("" if parent is not None else style.STYLE_SHEET)
                           + f"QWidget#localityView {{ background: {style.BACKGROUND}; }}")
        self.resize(1340, 860)
        self._build_shell()
        steps = [self._part(name, make) for name, make in zip(PARTS, (self._build_controls, self._build_figures,
                                                                      self._build_side), strict=True)]
        QTimer.singleShot(BUILD_GAP_MS, self, lambda: self._run_steps(self._generation, steps, self._parts_done,
                                                                     keep=True, gap_ms=BUILD_GAP_MS))

    # -- construction ------------------------------------------------------------------------------

    @property
    def is_built(self) -> bool:
        """Every part made (the query bar, the figures, the side panels and the three charts)."""
        return self._built

    def _part(self, name: str, make: Callable[[], None]) -> Callable[[], None]:
        def step() -> None:
            make()
            self.made.append(name)
            self._say_making()
            self.part_made.emit(name)

        return step

    def _say_making(self) -> None:
        if self._built:
            return
        missing = [part for part in (*PARTS, *CHART_PARTS) if part not in self.made]
        if not missing:
            return  # `ready` says what comes next
        self.progress.setText(f"Opening the Locality view: making the {', '.join(missing)}…")

    def _build_shell(self) -> None:
        """What the first pass shows: the heading, the refresh button (off until the view is whole) and the line
        that says what is still being made."""
        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.setSpacing(6)
        top = QHBoxLayout()
        heading = QLabel("Locality: appointments, capacity and demand across the practices")
        heading.setObjectName("heading")
        top.addWidget(heading, 1)
        self.refresh_button = QPushButton("&Refresh from practices")
        self.refresh_button.setAccessibleName("Refresh the figures from every practice")
        self.refresh_button.setToolTip("Read every practice's appointment book again (only what changed since the "
                                       "last refresh). F5")
        self.refresh_button.clicked.connect(self.refresh)
        self.refresh_button.setEnabled(False)  # until the view is whole
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        self.progress = QLabel("")
        self.progress.setObjectName("secondary")
        self.progress.setWordWrap(True)
        self.progress.setAccessibleName("Refresh progress")
        # two lines kept for it: its words go from one line to two and back while a refresh runs, and each time
        # everything under it moved and the charts were laid out and painted again
        self.progress.setMinimumHeight(2 * self.progress.fontMetrics().lineSpacing())
        layout.addWidget(self.progress)
        self.failed_line = QLabel("")
        self.failed_line.setWordWrap(True)
        self.failed_line.setStyleSheet(failed_style())
        self.failed_line.setAccessibleName("Practices that failed")
        self.failed_line.hide()
        layout.addWidget(self.failed_line)
        layout.addStretch(1)  # taken out when the figures come
        self._say_making()
        QShortcut(QKeySequence("F5"), self, self.refresh)
        QShortcut(QKeySequence("Ctrl+W"), self, self.close)

    def _build_controls(self) -> None:
        self.controls = QueryBar(list(self.core.practices))
        self.controls.changed.connect(self.run_query)
        self._layout.insertWidget(1, self.controls)
        self._controls_made = True
        if self._focus_when_made:
            self.focus_measure()

    def focus_measure(self) -> None:
        """The measure box takes the keyboard (now, or once the query bar is made)."""
        if self._controls_made:
            self.controls.measure.setFocus(Qt.FocusReason.ShortcutFocusReason)
        else:
            self._focus_when_made = True

    def _build_figures(self) -> None:
        layout = self._layout
        layout.takeAt(layout.count() - 1)  # the shell's stretch
        self.quality = QualityBadge()
        layout.addWidget(self.quality)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.charts_area = QScrollArea()
        self.charts_area.setWidgetResizable(True)
        # always there: the scroll bar that came with the second chart narrowed every chart, made again in that pass
        self.charts_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.charts_area.setAccessibleName("Charts")
        self.charts_holder = QWidget()
        self.charts_layout = QVBoxLayout(self.charts_holder)
        self.charts_layout.setContentsMargins(0, 0, 4, 0)
        self.charts_waiting = QLabel("Drawing charts…")
        self.charts_waiting.setAccessibleName("Charts still being made")
        self.charts_layout.addWidget(self.charts_waiting)  # below the charts made so far: none moves when it goes
        self.charts_layout.addStretch(1)
        self.charts_area.setWidget(self.charts_holder)
        self.splitter.addWidget(self.charts_area)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Figures, definition and peers")
        self.table = QTableWidget(0, 4)
        self.table.setAccessibleName("Figures, in name order (not ranked)")
        self.table.setHorizontalHeaderLabels(["Practice", "Figure", "Numerator", "Denominator"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)  # no league table: rows stay in name order
        self.table.setWordWrap(True)  # "not provided by this practice's system" whole, never cut
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.currentCellChanged.connect(lambda row, *_: self._define(row))
        self.table.activated.connect(lambda index: self.open_definition(index.row()))
        self.tabs.addTab(self.table, "&Figures")
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([780, 520])
        layout.addWidget(self.splitter, 1)

    def _build_side(self) -> None:
        self.definition = DefinitionPanel()
        self.peers = PeersPanel()
        self.peers.weights_changed.connect(lambda _weights: self.run_query())
        self.tabs.addTab(self.definition, "&Definition")
        self.tabs.addTab(self.peers, "&Peers")

    def _parts_done(self) -> None:
        self._parts_made = True
        load_pyqtgraph(self._build_charts)
        if self._overview_due:
            self._first_open()

    def _build_charts(self) -> None:
        """Once pyqtgraph is imported (off the GUI thread): the three charts, made once and reused. Each is made in
        a pass of its own (~10-20 ms each the first time) and shown (its first layout and paint, ~10 ms) in the next,
        so that no pass makes one chart and paints another."""
        if not pyqtgraph_ready():  # a broken install: the figures without charts, said so
            self.charts_waiting.setText("The charts cannot be drawn here (pyqtgraph did not load): the figures are in "
                                        "the table.")
            self._whole()
            return
        from app.ui.locality.charts import BarChart, FunnelChart, SeriesChart

        made: list[Any] = []

        def make(kind: type) -> Callable[[], None]:
            def step() -> None:
                chart = kind(self.charts_holder)
                chart.hide()  # shown in the next pass
                self.charts_layout.insertWidget(len(made), chart)
                made.append(chart)

            return step

        def show(name: str) -> Callable[[], None]:
            return self._part(name, lambda: made[-1].show())

        def ready() -> None:
            self.charts_waiting.hide()
            self.bar_chart, self.series_chart, self.funnel_chart = made
            self.bar_chart.clicked.connect(self._bar_clicked)
            self._charts_ready = True
            self._whole()
            if self.answer is not None:
                self._draw_charts(self.answer, lambda: None)

        steps = [make(BarChart), show(CHART_PARTS[0]), make(SeriesChart), show(CHART_PARTS[1]),
                 make(FunnelChart), show(CHART_PARTS[2])]
        # PAINT_GAP_MS apart: at BUILD_GAP_MS a chart's first paint and the next chart's making shared a pass
        QTimer.singleShot(BUILD_GAP_MS, self, lambda: self._run_steps(self._generation, steps, ready, keep=True,
                                                                     gap_ms=PAINT_GAP_MS))

    def _whole(self) -> None:
        self._built = True
        self.refresh_button.setEnabled(not self._refreshing)
        if not self._overview_asked:
            self.progress.setText("Reading the locality's figures…" if self._opened else "")
        self.built.emit()
        if self._opened:
            self._first_open()

    # -- opening -----------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._opened:
            self._opened = True
            if self._built:
                self.progress.setText("Reading the locality's figures…")
                QTimer.singleShot(FIRST_STEP_MS, self, self._first_open)
            else:  # asked for once the view is whole (`ready` in _build_charts); this late if the charts never come
                QTimer.singleShot(OVERVIEW_AT_THE_LATEST_MS, self, self._first_open)

    def _first_open(self) -> None:
        """Once the view is whole (or OVERVIEW_AT_THE_LATEST_MS after the first show, if the charts never come,
        once the other parts are made): the first query opens the store, whose libraries (DuckDB and the store's
        modules, ~150 ms of imports holding the interpreter lock) load in a worker meanwhile; alongside the charts'
        making they made stalls of 100-400 ms."""
        if self._overview_asked:
            return
        if not self._parts_made:
            self._overview_due = True  # asked for when they are (_parts_done)
            return
        self._overview_asked = True
        self.bridge.submit(self.source.overview(self.core), self._overview, self._failed, receiver=self)

    def _overview(self, overview: Overview) -> None:
        self.controls.set_months(overview.months, default_month(overview.latest_month))
        self.controls.set_categories(overview.categories)
        self.overview_loaded.emit(overview)
        if not overview.practices or overview.national_months == 0:
            self.refresh()  # first open: nothing read from the practices yet (or no national context)
        else:
            self._say_practices(overview.practices)
            self.run_query()

    # -- refreshing --------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self._refreshing or not self._parts_made:
            return
        self._refreshing = True
        self.refresh_button.setEnabled(False)
        self._progress = {p.id: "waiting" for p in self.core.practices}
        self._show_progress()

        def heard(done: Any) -> None:  # the core's loop: hop to the GUI thread
            self.bridge.post(lambda: self._practice_done(done), receiver=self)

        self.bridge.submit(self.source.refresh(self.core, heard), self._refreshed, self._refresh_failed,
                           receiver=self)

    def _practice_done(self, done: Any) -> None:
        words = {"ok": f"done ({done.appointments:,} appointments, {done.slots:,} slots)",
                 "not provided": "not provided by this practice's system",
                 "failed": f"FAILED: {done.error}"}
        self._progress[done.practice_id] = words.get(done.status, done.status)
        self._show_progress()

    def _show_progress(self) -> None:
        names = {p.id: p.name for p in self.core.practices}
        self.progress.setText("Refreshing: " + " · ".join(f"{names.get(pid, pid)}: {state}"
                                                          for pid, state in self._progress.items()
                                                          if not state.startswith("FAILED")))
        failed = [f"{names.get(pid, pid)} — {state.removeprefix('FAILED: ')}" for pid, state in self._progress.items()
                  if state.startswith("FAILED")]
        self.failed_line.setText("Failed: " + "; ".join(failed) + ". Its earlier figures, if any, are shown."
                                 if failed else "")
        self.failed_line.setVisible(bool(failed))

    def _refreshed(self, report: Any) -> None:
        self._refreshing = False
        self.refresh_button.setEnabled(self._built)
        self.progress.setText(f"Refreshed: {report.summary()} ({report.seconds:.1f} s).")
        failed = [p.error or p.name for p in report.failed]
        self.failed_line.setText("Failed: " + "; ".join(failed) + ". Its earlier figures, if any, are shown."
                                 if failed else "")
        self.failed_line.setVisible(bool(failed))
        self.refreshed.emit(report)
        self.bridge.submit(self.source.overview(self.core), self._after_refresh, self._failed, receiver=self)

    def _after_refresh(self, overview: Overview) -> None:
        self.controls.set_categories(overview.categories)
        if self.controls.period_text() is None:
            self.controls.set_months(overview.months, default_month(overview.latest_month))
        self.run_query()

    def _refresh_failed(self, exc: BaseException) -> None:
        self._refreshing = False
        self.refresh_button.setEnabled(self._built)
        self.refreshed.emit(exc)
        self._failed(exc)

    def _say_practices(self, practices: Any) -> None:
        failed = [f"{p.name} — {p.error or 'the last refresh failed'}" for p in practices if p.status == "failed"]
        self.failed_line.setText("Failed at the last refresh: " + "; ".join(failed) if failed else "")
        self.failed_line.setVisible(bool(failed))
        when = [p.refreshed_at for p in practices if p.refreshed_at is not None]
        if when:
            self.progress.setText(f"Figures as last refreshed, {max(when):%d %b %Y %H:%M} UTC. Refresh (F5) reads "
                                  "what changed since.")

    # -- querying ----------------------------------------------------------------------------------

    def current_query(self) -> ViewQuery | None:
        return self.controls.query(self.peers.weights())

    def run_query(self) -> None:
        if not self._parts_made:
            return  # the first overview runs the first query
        query = self.current_query()
        if query is None:
            return
        if self._pending is not None:
            self._pending.cancel()
        self._generation += 1
        generation = self._generation
        self.progress.setText(self.progress.text() if self._refreshing else
                              f"Reading {MEASURES[query.metric].title.lower()} for {period_words(query.period)}…")
        self._pending = self.bridge.submit(self.source.load(self.core, query),
                                           lambda answer: self._answered(generation, answer),
                                           lambda exc: self._query_error(generation, exc), receiver=self)

    def _answered(self, generation: int, answer: Answer) -> None:
        if generation != self._generation:
            return  # superseded by a newer query (its own journal entry stands)
        self.answer = answer
        if not self._refreshing:
            self._say_practices(answer.practices)
        steps: list[Callable[[], None]] = [lambda: self._fill_table(answer), lambda: self._fill_side(answer)]
        self._run_steps(generation, steps, lambda: self._draw_charts(answer, lambda: self.figures_shown.emit(answer)))

    def _run_steps(self, generation: int, steps: list[Callable[[], None]], then: Callable[[], None], *,
                   keep: bool = False, gap_ms: int = FIRST_STEP_MS) -> None:
        """One step a turn of the event loop: input and painting get their turn in between (the core's loop waits
        while a step runs, as it does for the bridge's callbacks). A newer query drops the rest, unless `keep`."""
        if generation != self._generation and not keep:
            return
        with gui_busy():
            if not steps:
                then()
                return
            steps.pop(0)()
        QTimer.singleShot(gap_ms, self, lambda: self._run_steps(generation, steps, then, keep=keep, gap_ms=gap_ms))

    def _query_error(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, PolicyError):
            why = f"Locality insight is not available to you: {exc.decision.why} This attempt is recorded."
        else:
            why = f"Nothing is shown: {exc}" if str(exc) else f"Nothing is shown: {type(exc).__name__}"
        self.progress.setText(why)
        self.query_failed.emit(why)

    # -- drawing -----------------------------------------------------------------------------------

    def where(self, answer: Answer) -> str:
        if answer.query.practice:
            return answer.names.get(answer.query.practice, answer.query.practice)
        ok = sum(1 for p in answer.practices if p.status == "ok")
        return f"the locality ({ok} of {len(self.core.practices)} practices providing data)"

    def label_of(self, figure: Figure, answer: Answer) -> str:
        if figure.group is not None:
            return group_words(figure.group)
        if figure.practice_id:
            return answer.names.get(figure.practice_id, figure.practice_id)
        return "Locality"

    def _ordered(self, answer: Answer) -> list[tuple[Figure, str]]:
        """Rows in name order: never ranked by value. Figures of practices not providing data or failed come
        after the cut's own groups, each saying so."""
        own = [f for f in answer.figures if answer.query.cut == "practice" or f.group is not None]
        rest = [f for f in answer.figures if f not in own]
        rows = sorted(((f, self.label_of(f, answer)) for f in own), key=lambda row: row[1].casefold())
        return rows + sorted(((f, self.label_of(f, answer)) for f in rest), key=lambda row: row[1].casefold())

    def _fill_table(self, answer: Answer) -> None:
        unit = MEASURES[answer.query.metric].unit
        self._rows = self._ordered(answer)
        self.table.setHorizontalHeaderLabels([_cut_heading(answer.query.cut), f"Figure ({unit})", "Numerator",
                                              "Denominator"])
        self.table.setRowCount(len(self._rows))
        for row, (figure, label) in enumerate(self._rows):
            measure = MEASURES[answer.query.metric]
            said = figure.status != "ok"  # the words are in the figure's column, once
            texts = (label, cell_text(figure, unit),
                     count_text(figure.numerator, figure) if measure.numerator and not said else "—",
                     count_text(figure.denominator, figure) if measure.denominator and not said else "—")
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setToolTip(figure.error or text if figure.status != "ok" else text)
                if figure.status == "failed":
                    item.setForeground(style_colour(style.ERROR))
                elif figure.status != "ok" or figure.suppressed:
                    item.setForeground(style_colour(style.SECONDARY))
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        if self._rows:
            self.table.setCurrentCell(0, 0)

    def _fill_side(self, answer: Answer) -> None:
        query = answer.query
        scope = [query.practice] if query.practice else [p.id for p in self.core.practices]
        self.quality.show_quality(answer.quality, scope)
        if query.practice is None:
            self.peers.show_none("Zoom to one practice (Zoom, above, or click its bar) to compare it with its peers: "
                                 "its place on the funnel plot, its national decile and the practices most like it.")
        elif answer.peer is None:
            self.peers.show_none("Peers are compared for one month: choose Period ▸ Month.")
        else:
            self.peers.show_peers(answer.names.get(query.practice, query.practice), query.metric, answer.peer,
                                  answer.similar, answer.similar_note, dict(answer.names))
        shown = chart_title(query.metric, query.cut, query.period, self.where(answer), query.filters)
        self.progress.setText(self.progress.text() if self._refreshing else f"Showing {shown}.")

    def _draw_charts(self, answer: Answer, then: Callable[[], None]) -> None:
        if not self._charts_ready:
            then()  # the charts draw the answer once pyqtgraph is in (_build_charts)
            return
        query = answer.query
        unit = MEASURES[query.metric].unit
        where = self.where(answer)
        chosen_rows = [row for row in self._rows if query.cut == "practice" or row[0].group is not None]
        figures = [f for f, _ in chosen_rows]
        labels = [label for _, label in chosen_rows]

        def bars() -> None:
            self.bar_chart.set_title(chart_title(query.metric, query.cut, query.period, where, query.filters),
                                     "; ".join(f"{label}: {cell_text(f, unit)}" for f, label in chosen_rows))
            self.bar_chart.show_figures(figures, labels, query.metric, query.cut, answer.national)

        def series() -> None:
            weekly = query.grain == "week"
            self.series_chart.set_title(
                chart_title(query.metric, "week" if weekly else "month", answer.series_period, where, query.filters),
                "; ".join(f"{f.period}: {cell_text(f, unit)}" for f in answer.series))
            self.series_chart.show_series(answer.series, query.metric, weekly)

        def funnel() -> None:
            self.funnel_chart.setVisible(query.practice is None)
            title = f"Funnel plot: {MEASURES[query.metric].title} by practice · {period_words(query.period)} · {where}"
            points = "; ".join(f"{p.name}: {p.value:.1f} of {p.denominator:,.0f}" for p in
                               (answer.funnel.points if answer.funnel else ()))
            self.funnel_chart.set_title(title, points)
            empty = ("A funnel plot needs a share or a rate per 1,000; this measure is a "
                     f"{unit}." if unit in ("count", "days") else "No practice has a figure to place.")
            self.funnel_chart.show_funnel(answer.funnel, query.metric, empty)

        self._run_steps(self._generation, [bars, series, funnel], then, gap_ms=PAINT_GAP_MS)  # one paint a pass

    # -- figures and zoom --------------------------------------------------------------------------

    def _define(self, row: int) -> None:
        if self.answer is None or not 0 <= row < len(self._rows):
            return
        figure, label = self._rows[row]
        where = self.where(self.answer) if figure.practice_id is None else \
            self.answer.names.get(figure.practice_id, figure.practice_id)
        if figure.status == "not provided":
            where += f" — {NOT_PROVIDED}"
        self.definition.show_figure(figure, label, where)

    def open_definition(self, row: int) -> None:
        """A figure opens to its definition: the measure's words and its numerator and denominator counts."""
        self.table.setCurrentCell(row, 0)
        self._define(row)
        self.tabs.setCurrentWidget(self.definition)

    def _bar_clicked(self, index: int) -> None:
        if self.answer is None:
            return
        chosen = [row for row in self._rows if self.answer.query.cut == "practice" or row[0].group is not None]
        if not 0 <= index < len(chosen):
            return
        figure = chosen[index][0]
        if self.answer.query.cut == "practice" and figure.practice_id:
            self.controls.zoom_to(figure.practice_id)  # zoom in: locality -> practice
        else:
            self.open_definition(self._rows.index(chosen[index]))

    # -- closing -----------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self._pending is not None:
            self._pending.cancel()
        super().closeEvent(event)

    def release(self) -> None:
        """Close the store (the window is going for good)."""
        self.bridge.submit(self.source.close())


def _cut_heading(cut: str) -> str:
    return {"practice": "Practice", "mode": "Mode", "clinician-type": "Clinician type",
            "category": "Category (slot type)"}.get(cut, cut)


def style_colour(colour: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(colour))
