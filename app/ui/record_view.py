"""One patient's record in a tab: loading, then banner + sections, or the error with a Retry button.

A record is put on screen in steps so that the GUI thread never stalls on it: the banner (with any
warnings) at once, then the sections one at a time, each step in its own turn of the event loop (see
`_BuildSteps`). `RecordView.record_shown` is emitted once the last section is on screen.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import (
    QObject,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFontMetricsF, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.display import display_name, format_partial_date
from app.core.model import SECTION_TITLES, Entry, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.ui.access_dialogs import access_strip, opened_by_break_glass
from app.ui.patient_banner import PatientBanner

log = logging.getLogger("mosaic.ui.record")

Key = tuple[str, str]

NOT_PROVIDED = "Not provided by this practice's system"
NONE_RECORDED = "None recorded"
MAX_TABLE_ROWS = 14  # longer sections scroll inside their table rather than push the rest far away
WRAP_ROWS_UP_TO = 300  # sizing rows to wrapped text costs time; very long sections elide instead
ROWS_PER_STEP = 300  # a longer section's table is filled over several steps (see RecordView.show_record)
FIT_COLUMNS = (0, 2)  # date and status: as wide as their widest text (or heading)
WRAP_COLUMNS = (1, 3)  # description and detail: share the rest, and wrap
BUILD_BUDGET_S = 0.005  # record-building steps run per event-loop pass (at least one)


def failure_text(section: SectionName, practice: Practice, reason: str | None) -> str:
    """Says plainly that a failed section is unknown, not empty."""
    why = (reason or "no reason given").strip().rstrip(".")
    if why.startswith(f"{practice.name}: "):  # the sentence already names the practice
        why = why[len(practice.name) + 2:]
    return (f"Could not load {SECTION_TITLES[section].lower()} from {practice.name}: {why}. "
            "This does not mean none are recorded.")


class SectionBlock(QFrame):
    """A titled block for one section, in exactly one of its states."""

    def __init__(self, section: Section, practice: Practice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.section = section
        self.setObjectName("sectionBlock")
        title = SECTION_TITLES[section.name]
        self.setAccessibleName(f"{title} section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(6)
        heading = title
        if section.status == "loaded" and section.entries:
            heading += f"  ({len(section.entries)})"
        self.title_label = QLabel(heading)
        self.title_label.setObjectName("sectionTitle")
        self.title_label.setAccessibleName(heading)
        layout.addWidget(self.title_label)

        self.table: FitTable | None = None
        if section.status == "failed":
            self.message = failure_text(section.name, practice, section.error)
            box = QFrame()
            box.setObjectName("failure")
            box_layout = QHBoxLayout(box)
            box_layout.setContentsMargins(10, 8, 10, 8)
            label = QLabel("⚠  " + self.message)
            label.setObjectName("failureText")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setAccessibleName(self.message)
            box_layout.addWidget(label)
            layout.addWidget(box)
        elif section.status == "unsupported":
            self.message = NOT_PROVIDED
            layout.addWidget(_note(NOT_PROVIDED, "notProvided"))
        elif not section.entries:
            self.message = NONE_RECORDED
            layout.addWidget(_note(NONE_RECORDED, "noneRecorded"))
        else:
            self.message = ""
            self.table = _entries_table(title, section.entries)
            layout.addWidget(self.table)


def _note(text: str, object_name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setAccessibleName(text)
    return label


class EntriesModel(QStandardItemModel):
    """A section's entries, most recent first (undated last): date, description, status, detail.

    Held in Qt items rather than answered from Python, so painting and measuring the table never waits
    for the interpreter lock (the core's thread is busy in Python while records arrive). A long section
    is put in ROWS_PER_STEP entries at a time (`add_rows`), so that no single step takes long.

    The cells are written through the model's index API only: Qt makes every item itself (a copy of the
    prototype) and Python never holds a QStandardItem. A wrapper of an item that Qt later frees without
    telling Python would stay registered at that address and be handed out for the next object Qt puts
    there (see README: Dependability).
    """

    HEADERS = ("Date", "Description", "Status", "Detail")

    def __init__(self, entries: tuple[Entry, ...], parent: QObject | None = None) -> None:
        super().__init__(0, len(self.HEADERS), parent)
        self.setItemPrototype(_cell_prototype())
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        ordered = sorted(entries, key=lambda e: e.when or "", reverse=True)
        self.rows = [(format_partial_date(e.when), e.text, e.status or "", e.detail or "") for e in ordered]
        # Rows that wrap are fitted to their text as soon as the table is shown: those tables are filled at once.
        self.add_rows(len(self.rows) if len(self.rows) <= WRAP_ROWS_UP_TO else ROWS_PER_STEP)

    @property
    def complete(self) -> bool:
        return self.rowCount() == len(self.rows)

    def add_rows(self, count: int) -> bool:
        """Put up to `count` more entries in; True while some are still to come."""
        start = self.rowCount()
        end = min(start + count, len(self.rows))
        if end <= start:
            return not self.complete
        self.insertRows(start, end - start)
        # One dataChanged for the rows just inserted instead of one per cell.
        blocked = self.blockSignals(True)
        try:
            for number in range(start, end):
                for column, text in enumerate(self.rows[number]):
                    if text:  # an empty cell holds nothing at all (no text, no tooltip)
                        self.setItemData(self.index(number, column), {_DISPLAY: text, _TOOLTIP: text,
                                                                      _ACCESSIBLE: text})
        finally:
            self.blockSignals(blocked)
        self.dataChanged.emit(self.index(start, 0), self.index(end - 1, len(self.HEADERS) - 1), [])
        return not self.complete


_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole


def _cell_prototype() -> QStandardItem:
    """The item Qt copies for every cell: selectable, never edited, never a parent."""
    item = QStandardItem()
    item.setFlags(_CELL_FLAGS)
    return item


_CELL_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren


class FitTable(QTableView):
    """As tall as its rows (up to MAX_TABLE_ROWS).

    Sized by hand rather than with Qt's ResizeToContents modes, which measure every cell again on each
    layout pass: `fit_to_contents` (called once the style sheet applies) sets the date and status
    columns to their widest text, and each row is as tall as its wrapped text needs. Only a description
    or detail wider than its column is measured (by the item delegate, as Qt measures it, and remembered
    per width); every other row is one line high. Rows are fitted again when those columns change width.
    """

    def __init__(self, wrap: bool = False) -> None:
        super().__init__()
        # The table's own delegate, made and kept here: it is the one `_cell_height` asks. Qt's default
        # delegate has no Python owner, so its wrapper could be a stale one left at the same address.
        self._delegate = QStyledItemDelegate(self)
        self.setItemDelegate(self._delegate)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.verticalHeader().sectionResized.connect(lambda *_: self.updateGeometry())
        self._wrap = wrap
        self._fitted = False
        self._fitting = False
        self._fit_again = False
        self._text_margin = 0
        self._grid = 0
        self._widths: list[tuple[float, ...]] = []  # per row: the wrapping columns' text on one line (0: empty)
        self._breaks: list[tuple[bool, ...]] = []  # per row: the wrapping columns' text has a line break
        self._line_height = 0  # a row of one-line text
        self._heights: dict[tuple[int, int, int], int] = {}  # (row, column, column width) -> cell height
        self._column_widths: dict[int, int] = {}  # the wrapping columns' widths, as sectionResized tells them
        # The heading's height, measured once the style sheet applies (fit_to_contents). Asking the header
        # each time costs milliseconds whenever the record moves to another pane: moving re-polishes every
        # widget of the record, which drops the header's own cached size, and the layout asks every table.
        self._header_height: int | None = None
        if wrap:
            self.horizontalHeader().sectionResized.connect(self._column_resized)

    def row_count(self) -> int:
        model = self.model()
        return model.rowCount() if model is not None else 0

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().sizeHint()
        rows = sum(self.rowHeight(r) for r in range(min(self.row_count(), MAX_TABLE_ROWS)))
        header = self._header_height if self._header_height is not None else self.horizontalHeader().sizeHint().height()
        scrollbar = self.horizontalScrollBar().sizeHint().height() if self.horizontalScrollBar().isVisible() else 0
        return QSize(hint.width(), header + rows + 2 * self.frameWidth() + scrollbar + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, self.sizeHint().height())

    def fit_to_contents(self) -> None:
        """Size the columns and rows to the text, with the fonts and margins the style sheet gives."""
        model = self.model()
        if not isinstance(model, EntriesModel):
            return
        self.ensurePolished()
        metrics = QFontMetricsF(self.font())
        # What QCommonStyle puts around an item's text, and the grid line QTableView adds to a cell.
        self._text_margin = 2 * (self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1)
        self._grid = 1 if self.showGrid() else 0
        header = self.horizontalHeader()
        self._header_height = header.sizeHint().height()
        for column in FIT_COLUMNS:
            widest = max((metrics.horizontalAdvance(row[column]) for row in model.rows if row[column]), default=0)
            contents = math.ceil(widest) + self._text_margin + self._grid if widest else 0
            header.resizeSection(column, max(contents, header.sectionSizeHint(column)))
        if self._wrap and model.rows:
            self._widths = [tuple(metrics.horizontalAdvance(row[c]) if row[c] else 0.0 for c in WRAP_COLUMNS)
                            for row in model.rows]
            self._breaks = [tuple("\n" in row[c] or "\u2028" in row[c] for c in WRAP_COLUMNS) for row in model.rows]
            self._line_height = self.verticalHeader().sectionSizeHint(0)
            plain = next(((r, i) for r, (texts, breaks) in enumerate(zip(self._widths, self._breaks, strict=True))
                          for i in range(len(WRAP_COLUMNS)) if texts[i] and not breaks[i]), None)
            if plain is not None:  # one line of text: its height in a column wide enough for it
                row, i = plain
                self._line_height = max(self._line_height, self._cell_height(row, WRAP_COLUMNS[i], 1 << 20))
            self._column_widths = {c: self.columnWidth(c) for c in WRAP_COLUMNS}
        self._fitted = True
        self._fit_rows()

    def _column_resized(self, column: int, old: int, new: int) -> None:
        # Emitted before the header has taken the new width in (columnWidth still answers the old one).
        if column in self._column_widths and old != new:
            self._column_widths[column] = new
            if self._fitted:
                self._fit_rows()

    def _fit_rows(self) -> None:
        if not self._widths:
            return
        if self._fitting:  # resizing a row made the columns change width: the outer call fits again
            self._fit_again = True
            return
        self._fitting = True
        try:
            for _ in range(4):
                self._fit_again = False
                self._fit_rows_once()
                if not self._fit_again:
                    break
        finally:
            self._fitting = False

    def _fit_rows_once(self) -> None:
        widths = [self._column_widths[c] for c in WRAP_COLUMNS]
        room = [w - self._text_margin - 2 for w in widths]  # 2 px spare for rounding
        header = self.verticalHeader()
        for row, (texts, breaks) in enumerate(zip(self._widths, self._breaks, strict=True)):
            height = self._line_height
            for i, column in enumerate(WRAP_COLUMNS):
                if texts[i] and (breaks[i] or texts[i] > room[i]):
                    height = max(height, self._cell_height(row, column, widths[i]))
            if header.sectionSize(row) != height:
                header.resizeSection(row, height)

    def _cell_height(self, row: int, column: int, width: int) -> int:
        """The height the delegate asks for this cell at this column width, as QTableView measures it."""
        key = (row, column, width)
        height = self._heights.get(key)
        if height is None:
            if len(self._heights) > 4096:
                self._heights.clear()
            option = QStyleOptionViewItem()
            self.initViewItemOption(option)
            option.rect = QRect(0, 0, width, max(1, self.rowHeight(row)))
            index = self.model().index(row, column)
            height = self._delegate.sizeHint(option, index).height() + self._grid
            self._heights[key] = height
        return height


def _entries_table(title: str, entries: tuple[Entry, ...]) -> FitTable:
    wrap = len(entries) <= WRAP_ROWS_UP_TO  # wrap long descriptions rather than cut them off
    table = FitTable(wrap)
    table.setModel(EntriesModel(entries, table))
    table.setAccessibleName(f"{title} table")
    table.horizontalHeader().setAccessibleName(f"{title} columns")
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setTabKeyNavigation(False)  # Tab leaves the table, arrows move inside it
    header = table.horizontalHeader()
    for column in FIT_COLUMNS:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
    for column in WRAP_COLUMNS:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
    table.setWordWrap(wrap)
    if wrap:
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    if len(entries) <= MAX_TABLE_ROWS:
        table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return table


class _BuildSteps:
    """The steps of every record being put on screen, in order, for at most BUILD_BUDGET_S per pass of
    the event loop (then the rest in the next pass), so input and painting get their turn in between."""

    def __init__(self) -> None:
        self._steps: deque[Callable[[], None]] = deque()
        self._timer: QTimer | None = None

    def add(self, step: Callable[[], None]) -> None:
        self._steps.append(step)
        self._post()

    def _post(self) -> None:
        # A zero timer rather than a posted event: timers, input and painting get their turn after each
        # pass (a chain of posted events runs twice between two ticks of a timer).
        if self._timer is None or not shiboken6.isValid(self._timer):
            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.setInterval(0)
            self._timer.timeout.connect(self._run)
        if not self._timer.isActive():
            self._timer.start()

    def _run(self) -> None:
        deadline = time.perf_counter() + BUILD_BUDGET_S
        while self._steps:
            step = self._steps.popleft()
            try:
                step()
            except Exception:
                log.exception("building a record view failed")
            if time.perf_counter() >= deadline:
                break
        if self._steps:
            self._post()


_BUILD_STEPS = _BuildSteps()


class RecordView(QWidget):
    """The content of one record tab. Shows nothing of the record until it has arrived."""

    retry_requested = Signal(object)  # the view itself
    record_shown = Signal(object)  # the view itself, once show_record has put every section on screen

    def __init__(self, patient: PatientSummary, practice: Practice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.patient = patient
        self.practice = practice
        self.key: Key = (patient.practice_id, patient.local_id)
        self.record: PatientRecord | None = None
        self.state = "loading"
        self.error: str | None = None
        self.banner: PatientBanner | None = None
        self.access_strip: QFrame | None = None  # how the record was opened, when the access is flagged
        self.sections: dict[SectionName, SectionBlock] = {}
        self._generation = 0  # bumped whenever the content is replaced: steps of an older build stop
        self._body_layout: QVBoxLayout | None = None
        self.setAccessibleName(self.title())
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self.show_loading()

    def title(self) -> str:
        marker = "⚠ " if opened_by_break_glass(self.record) else ""
        return f"{marker}{display_name(self.patient)} · {self.practice.name}"

    def _clear(self) -> None:
        self.stop_building()
        self.banner = None
        self.access_strip = None
        self.sections = {}
        self._body_layout = None
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()

    def stop_building(self) -> None:
        """Abandon a record still being put on screen (the view is reloading or closing)."""
        self._generation += 1

    @property
    def building(self) -> bool:
        """The record has arrived and its sections are still being put on screen."""
        return self.state == "loaded" and self._body_layout is not None

    def show_loading(self) -> None:
        self._clear()
        self.state = "loading"
        self.record = None
        self.error = None
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(24, 24, 24, 24)
        label = QLabel(f"Opening the record of {display_name(self.patient)} from {self.practice.name}…")
        label.setObjectName("heading")
        label.setWordWrap(True)
        label.setAccessibleName("Loading record")
        layout.addWidget(label)
        busy = QProgressBar()
        busy.setRange(0, 0)
        busy.setTextVisible(False)
        busy.setMaximumWidth(320)
        busy.setAccessibleName("Loading record")
        layout.addWidget(busy)
        layout.addStretch(1)
        self._layout.addWidget(box)

    def show_error(self, message: str) -> None:
        """The whole record could not be opened: the reason and Retry, and no record data."""
        self._clear()
        self.state = "error"
        self.error = message
        self.record = None
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.setSpacing(12)
        frame = QFrame()
        frame.setObjectName("failure")
        frame_layout = QVBoxLayout(frame)
        frame_layout.setContentsMargins(12, 10, 12, 10)
        heading = QLabel(f"The record could not be opened from {self.practice.name}")
        heading.setObjectName("sectionTitle")
        heading.setWordWrap(True)
        heading.setAccessibleName(heading.text())
        frame_layout.addWidget(heading)
        self.error_label = QLabel(message)
        self.error_label.setObjectName("failureText")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setAccessibleName(f"Error: {message}")
        frame_layout.addWidget(self.error_label)
        hint = QLabel("Check the practice's status in the Practices panel, then try again.")
        hint.setWordWrap(True)
        hint.setAccessibleName(hint.text())
        frame_layout.addWidget(hint)
        layout.addWidget(frame)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName(f"Retry opening the record from {self.practice.name}")
        self.retry_button.setToolTip("Ask the practice for this record again")
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(self))
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self._layout.addWidget(box)

    def show_record(self, record: PatientRecord) -> None:
        """Show a record that has arrived in full: the banner now, the sections over the next few passes
        of the event loop (in order), then `record_shown`. Nothing of it is shown before it arrived."""
        self._clear()
        self.state = "loaded"
        self.record = record
        self.error = None
        self.patient = record.patient
        # The banner always comes first: no section is ever on screen without it.
        self.banner = PatientBanner(record.patient, self.practice, record.retrieved_at)
        self._layout.addWidget(self.banner)
        # How the record was opened (break-glass, self/family) first, in red/amber, right under the banner.
        self.access_strip = access_strip(record)
        if self.access_strip is not None:
            self._layout.addWidget(self.access_strip)
        if record.warnings:
            self._layout.addWidget(_warnings(record.warnings))

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setAccessibleName(f"Record of {display_name(record.patient)}")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        body = QWidget()
        body.setObjectName("centralArea")
        self._body_layout = QVBoxLayout(body)
        self._body_layout.setContentsMargins(10, 10, 10, 10)
        self._body_layout.setSpacing(10)
        self._body_layout.addStretch(1)
        scroll.setWidget(body)
        self._layout.addWidget(scroll, 1)
        self._next_section(self._generation, list(SECTION_TITLES))

    def _next_section(self, generation: int, names: list[SectionName]) -> None:
        """Queue the step that adds the next section; after the last one the record is on screen."""
        _BUILD_STEPS.add(lambda: self._add_section(generation, names))

    def _add_section(self, generation: int, names: list[SectionName]) -> None:
        if not shiboken6.isValid(self) or generation != self._generation or self._body_layout is None:
            return  # closed, reloading, or showing something else since
        record = self.record
        assert record is not None
        name, rest = names[0], names[1:]
        section = record.sections.get(name) or Section.failed(name, "the practice's system sent nothing "
                                                                    "for this section")
        block = SectionBlock(section, self.practice)
        self.sections[name] = block
        self._body_layout.insertWidget(self._body_layout.count() - 1, block)  # before the stretch
        if block.table is not None:
            block.table.fit_to_contents()
            model = block.table.model()
            if isinstance(model, EntriesModel) and not model.complete:
                _BUILD_STEPS.add(lambda: self._fill_table(generation, model, rest))
                return
        self._section_done(generation, rest)

    def _fill_table(self, generation: int, model: EntriesModel, rest: list[SectionName]) -> None:
        """The next entries of a long section, then on to the next section."""
        if not shiboken6.isValid(self) or generation != self._generation or self._body_layout is None:
            return
        if model.add_rows(ROWS_PER_STEP):
            _BUILD_STEPS.add(lambda: self._fill_table(generation, model, rest))
        else:
            self._section_done(generation, rest)

    def _section_done(self, generation: int, rest: list[SectionName]) -> None:
        if rest:
            self._next_section(generation, rest)
        else:
            self._body_layout = None
            self.record_shown.emit(self)


def _warnings(warnings: tuple[str, ...]) -> QFrame:
    frame = QFrame()
    frame.setObjectName("notice")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(12, 6, 12, 6)
    for text in warnings:
        label = QLabel("⚠  " + text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAccessibleName(f"Record warning: {text}")
        layout.addWidget(label)
    return frame
