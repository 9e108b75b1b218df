"""A record table: as tall as the rows it shows (never a scrollbar of its own: the record has one scroll
area), rows wrapped to their text, a report's title or a consultation's notes spanning the row."""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, QRect, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QResizeEvent,
    QStandardItem,
    QStandardItemModel,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from app.ui import style
from app.ui.record_rows import Row, TableSpec

WRAP_ROWS_UP_TO = 300  # sizing rows to wrapped text costs time; very long tables elide instead
ROWS_PER_STEP = 300  # "Show all" puts a long table's rows in over several steps
FIT_SHARE = 0.68  # the fitted columns (date, value, flag, ...) take at most this share of a narrow table's width
MIN_COLUMN = 56  # nor is one squeezed below this

_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_FONT = Qt.ItemDataRole.FontRole
_CELL_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren


class RowsModel(QStandardItemModel):
    """A group's rows, `first` of them at once and the rest by `add_rows` (after "Show all").

    Held in Qt items rather than answered from Python, so painting and measuring the table never waits
    for the interpreter lock (the core's thread is busy in Python while records arrive).

    The cells are written through the model's index API only: Qt makes every item itself (a copy of the
    prototype) and Python never holds a QStandardItem. A wrapper of an item that Qt later frees without
    telling Python would stay registered at that address and be handed out for the next object Qt puts
    there (see README: Dependability).
    """

    def __init__(self, spec: TableSpec, rows: tuple[Row, ...], first: int, parent: QObject | None = None) -> None:
        super().__init__(0, len(spec.headers), parent)
        self.spec = spec
        self.setItemPrototype(_cell_prototype())
        self.setHorizontalHeaderLabels(list(spec.headers))
        self.rows = rows
        self.add_rows(first)

    @property
    def complete(self) -> bool:
        return self.rowCount() == len(self.rows)

    def add_rows(self, count: int) -> bool:
        """Put up to `count` more rows in; True while some are still to come."""
        start = self.rowCount()
        end = min(start + count, len(self.rows))
        if end <= start:
            return not self.complete
        self.insertRows(start, end - start)
        # One dataChanged for the rows just inserted instead of one per cell.
        blocked = self.blockSignals(True)
        try:
            for number in range(start, end):
                self._write(number, self.rows[number])
        finally:
            self.blockSignals(blocked)
        self.dataChanged.emit(self.index(start, 0), self.index(end - 1, len(self.spec.headers) - 1), [])
        return not self.complete

    def _write(self, number: int, row: Row) -> None:
        alert_column = self.spec.alert_column
        for column, text in enumerate(row.cells):
            if not text:  # an empty cell holds nothing at all (no text, no tooltip)
                continue
            data: dict[int, object] = {_DISPLAY: text, _TOOLTIP: text, _ACCESSIBLE: text}
            if row.bold:
                data[_FONT] = _fonts().bold
            if row.muted:
                data[_FOREGROUND] = _fonts().muted
            if row.alert and column == alert_column:
                data[_FOREGROUND] = _fonts().alert
                if row.alert > 1:
                    data[_FONT] = _fonts().bold
            self.setItemData(self.index(number, column), data)


class _Fonts:
    def __init__(self) -> None:
        self.bold = QFont()
        self.bold.setBold(True)
        self.alert = QBrush(QColor(style.ERROR))
        self.muted = QBrush(QColor(style.SECONDARY))


_FONTS: _Fonts | None = None


def _fonts() -> _Fonts:
    global _FONTS
    if _FONTS is None:
        _FONTS = _Fonts()
    return _FONTS


def _cell_prototype() -> QStandardItem:
    """The item Qt copies for every cell: selectable, never edited, never a parent."""
    item = QStandardItem()
    item.setFlags(_CELL_FLAGS)
    return item


class FitTable(QTableView):
    """As tall as its rows: no scrollbar of its own (the record scrolls as one).

    Sized by hand rather than with Qt's ResizeToContents modes, which measure every cell again on each
    layout pass: `fit_to_contents` (called once the style sheet applies) sets the fitted columns to their
    widest text, and each row is as tall as its wrapped text needs. Only a cell wider than its column (or a
    spanning row wider than its span) is measured (by the item delegate, as Qt measures it, and remembered
    per width); every other row is one line high. Rows are fitted again when those columns change width.
    """

    def __init__(self, spec: TableSpec, wrap: bool = False) -> None:
        super().__init__()
        self.spec = spec
        # The table's own delegate, made and kept here: it is the one `_cell_height` asks. Qt's default
        # delegate has no Python owner, so its wrapper could be a stale one left at the same address.
        self._delegate = QStyledItemDelegate(self)
        self.setItemDelegate(self._delegate)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalHeader().sectionResized.connect(lambda *_: self.updateGeometry())
        self._wrap = wrap
        self._fitted = False
        self._fitting = False
        self._fit_again = False
        self._text_margin = 0
        self._grid = 0
        self._widths: list[tuple[float, ...]] = []  # per row: each cell's text on one line (0: empty; a span: one)
        self._breaks: list[tuple[bool, ...]] = []  # per row: each cell's text has a line break
        self._line_height = 0  # a row of one-line text
        self._heights: dict[tuple[int, int, int], int] = {}  # (row, column, width) -> cell height
        self._column_widths: dict[int, int] = {}  # every column's width, as sectionResized tells them
        self._natural: dict[int, int] = {}  # the fitted columns' widths for their widest text
        self._spans: set[int] = set()  # rows whose second cell runs to the last column
        # The heading's height, measured once the style sheet applies (fit_to_contents). Asking the header
        # each time costs milliseconds whenever the record moves to another pane: moving re-polishes every
        # widget of the record, which drops the header's own cached size, and the layout asks every table.
        self._header_height: int | None = None
        self.horizontalHeader().sectionResized.connect(self._column_resized)

    def row_count(self) -> int:
        model = self.model()
        return model.rowCount() if model is not None else 0

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().sizeHint()
        header_view = self.horizontalHeader()
        rows = self.verticalHeader().length()
        header = 0 if header_view.isHidden() else (
            self._header_height if self._header_height is not None else header_view.sizeHint().height())
        scrollbar = self.horizontalScrollBar().sizeHint().height() if self.horizontalScrollBar().isVisible() else 0
        return QSize(hint.width(), header + rows + 2 * self.frameWidth() + scrollbar + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, self.sizeHint().height())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        event.ignore()  # the record scrolls as one: the wheel goes to the record's scroll area

    def fit_to_contents(self) -> None:
        """Size the columns and rows to the text, with the fonts and margins the style sheet gives."""
        model = self.model()
        if not isinstance(model, RowsModel):
            return
        self.ensurePolished()
        metrics = QFontMetricsF(self.font())
        bold_font = QFont(self.font())
        bold_font.setBold(True)
        bold = QFontMetricsF(bold_font)
        # What QCommonStyle puts around an item's text, and the grid line QTableView adds to a cell.
        self._text_margin = 2 * (self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1)
        self._grid = 1 if self.showGrid() else 0
        header = self.horizontalHeader()
        self._header_height = header.sizeHint().height()
        rows = model.rows
        alert_column = self.spec.alert_column
        columns = range(len(self.spec.headers))

        def width(row: Row, column: int) -> float:
            text = row.cells[column]
            if not text:
                return 0.0
            heavy = row.bold or (row.alert > 1 and column == alert_column)
            return (bold if heavy else metrics).horizontalAdvance(text)

        self._spans = {n for n, row in enumerate(rows) if row.span}
        self._widths = [tuple(width(row, c) for c in columns) for row in rows]  # a span: its text in column 1
        self._breaks = [tuple("\n" in text or "\u2028" in text for text in row.cells) for row in rows]
        for column in self.spec.wrap if self.spec.compact else ():  # its text on one line, for `_share`
            widest = max((widths[column] for n, widths in enumerate(self._widths) if n not in self._spans), default=0.0)
            self._natural[column] = max(math.ceil(widest) + self._text_margin + self._grid,
                                        header.sectionSizeHint(column) if self.spec.headings else MIN_COLUMN)
        for column in self.spec.fit:
            widest = max((widths[column] for n, widths in enumerate(self._widths) if n not in self._spans or
                          column == 0), default=0.0)
            contents = math.ceil(widest) + self._text_margin + self._grid if widest else 0
            self._natural[column] = max(contents, header.sectionSizeHint(column) if self.spec.headings else 0)
            header.resizeSection(column, self._natural[column])
        for column in columns[2:]:  # a column with nothing in it (no status to say) takes no room
            if not any(row.cells[column] for row in rows if not row.span):
                self.setColumnHidden(column, True)
        self._line_height = self.verticalHeader().sectionSizeHint(0)
        plain = next(((r, c) for r, (texts, breaks) in enumerate(zip(self._widths, self._breaks, strict=True))
                      if r not in self._spans and r < model.rowCount()
                      for c in columns if texts[c] and not breaks[c]), None)
        if plain is not None:  # one line of text: its height in a column wide enough, as Qt measures it
            self._line_height = max(self._line_height, self._cell_height(plain[0], plain[1], 1 << 20))
        self._column_widths = {c: self.columnWidth(c) for c in columns}
        self._fitted = True
        self._apply_spans(0)
        self._share(self.viewport().width())
        self._fit_rows()

    def _share(self, width: int) -> None:
        """The fitted columns as wide as their text while that leaves the rest (the description) room; in a
        narrow pane they share FIT_SHARE of the width and wrap, so no table scrolls sideways."""
        if not self._fitted or width <= 0:
            return
        fitted = [c for c in self.spec.fit if not self.isColumnHidden(c)]
        widths = {c: self._natural[c] for c in fitted}
        limit = int(width * FIT_SHARE)
        if sum(widths.values()) > limit:
            squeezed = sorted((c for c in fitted if c != 0), key=lambda c: widths[c])  # the date keeps its width
            room = max(limit - widths.get(0, 0), MIN_COLUMN * len(squeezed))
            for n, column in enumerate(squeezed):  # the narrow ones keep their width, the widest share what is left
                level = room // (len(squeezed) - n)
                widths[column] = max(MIN_COLUMN, min(widths[column], level))
                room -= widths[column]
        if self.spec.compact:  # a value beside its name: descriptions as wide as their text, the last to the edge
            shown = [c for c in range(len(self.spec.headers)) if not self.isColumnHidden(c)]
            last = shown[-1] if shown else None
            sharing = [c for c in self.spec.wrap if c in shown]  # the last among them, if it is one, stretches
            room = width - sum(widths.values())
            for n, column in enumerate(sorted(sharing, key=lambda c: self._natural.get(c, 0))):
                share = max(MIN_COLUMN, room // (len(sharing) - n))
                widths[column] = min(self._natural.get(column, share), share)
                room -= widths[column]
            if last is not None:  # to the edge: what the others leave
                widths[last] = max(MIN_COLUMN, width - sum(size for column, size in widths.items() if column != last))
        header = self.horizontalHeader()
        for column, size in widths.items():
            if header.sectionSize(column) != size:
                header.resizeSection(column, size)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._share(self.viewport().width())

    def _apply_spans(self, start: int) -> None:
        last = len(self.spec.headers) - 1
        for row in sorted(self._spans):
            if row >= start and row < self.row_count():
                self.setSpan(row, 1, 1, last)

    def rows_added(self, start: int) -> None:
        """Rows from `start` on were put in ("Show all"): span and fit them."""
        self._apply_spans(start)
        self._fit_rows()
        self.updateGeometry()

    def _column_resized(self, column: int, old: int, new: int) -> None:
        # Emitted before the header has taken the new width in (columnWidth still answers the old one).
        if column in self._column_widths and old != new:
            self._column_widths[column] = new
            if self._fitted:
                self._fit_rows()

    def _fit_rows(self) -> None:
        if not self._wrap or not self._widths:
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
        """Each row as tall as its tallest cell: only a cell wider than its column (or a spanning row wider than
        its span) is measured; the rest are one line high."""
        shown = [c for c in range(len(self.spec.headers)) if not self.isColumnHidden(c)]
        widths = self._column_widths
        span_width = sum(widths[c] for c in shown if c >= 1)
        spare = self._text_margin + 2  # 2 px spare for rounding
        header = self.verticalHeader()
        for row in range(self.row_count()):
            texts, breaks = self._widths[row], self._breaks[row]
            height = self._line_height
            if row in self._spans:
                if texts[1] and (breaks[1] or texts[1] > span_width - spare):
                    height = max(height, self._cell_height(row, 1, span_width))
                if texts[0] and (breaks[0] or texts[0] > widths[0] - spare):
                    height = max(height, self._cell_height(row, 0, widths[0]))
            else:
                for column in shown:
                    if texts[column] and (breaks[column] or texts[column] > widths[column] - spare):
                        height = max(height, self._cell_height(row, column, widths[column]))
            if header.sectionSize(row) != height:
                header.resizeSection(row, height)

    def _cell_height(self, row: int, column: int, width: int) -> int:
        """The height the delegate asks for this cell at this width, as QTableView measures it."""
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


def make_table(title: str, spec: TableSpec, rows: tuple[Row, ...], first: int) -> FitTable:
    wrap = len(rows) <= WRAP_ROWS_UP_TO  # wrap long descriptions rather than cut them off
    table = FitTable(spec, wrap)
    table.setModel(RowsModel(spec, rows, first, table))
    table.setAccessibleName(f"{title} table")
    table.horizontalHeader().setAccessibleName(f"{title} columns")
    if not spec.headings:
        table.horizontalHeader().hide()
    table.verticalHeader().setObjectName("rowHeader")  # hidden, but its padding would set the rows' height
    table.verticalHeader().setMinimumSectionSize(1)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setTabKeyNavigation(False)  # Tab leaves the table, arrows move inside it
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    header = table.horizontalHeader()
    header.setHighlightSections(False)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)  # over its column's text
    for column in spec.fit:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
    for column in spec.wrap:
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed if spec.compact else
                                    QHeaderView.ResizeMode.Stretch)
    table.setWordWrap(wrap)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    return table
