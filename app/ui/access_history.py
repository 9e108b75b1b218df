"""Access history: who opened whose record, who searched for whom, and who looked at which locality figures
(rows naming no patient), from the local audit journal, with filters, export and review of flagged accesses.

Reading the journal and writing an export run on the core's loop (and its worker threads) through the bridge.
The journal is read a page at a time, newest first; each page is grouped into rows on the GUI thread
(app/ui/history_rows.py, a few milliseconds a page), one page per turn of the event loop. The first page's rows
go to the table at once (beginInsertRows); the later pages' rows, below the first screenful, are added together
when the last page is read (one insert and one paint, not one a page). Rows are made into text when first
painted, the rest a hundred a turn after the last page. No thread formats rows while the GUI thread paints:
with the GIL, a Python worker makes every Python call of a paint (the model's data, the headings) wait for it,
which stalled the window for as long as the whole read (up to 64 ms in the soak).

The window is built once and reused. It holds its rows only while it is shown: hidden (closed, or by the
idle lock) it lets them go, and it reads the journal again when it is next shown. Up to LIMIT entries of
patient identifiers are therefore not kept on a locked screen, nor kept for the rest of the day once the
window is closed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetrics,
    QHideEvent,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core import nhs_number, paths
from app.core.audit.model import Action, JournalEntry, is_flagged
from app.core.display import format_date
from app.core.model import Practice
from app.core.query import nhs_number_problem
from app.ui import style
from app.ui.bridge import AsyncBridge
from app.ui.gui_first import gui_busy
from app.ui.history_review import ReviewDialog
from app.ui.history_rows import (  # noqa: F401 - the columns are imported from here by the tests
    ACTION,
    COLUMNS,
    FLAG,
    HEADER_TIPS,
    OUTCOME,
    PATIENT,
    PRACTICE,
    REASON,
    ROLE,
    SECTIONS,
    TIME,
    USER,
    HistoryRow,
    RowBuilder,
    RowContext,
    flag_text,
    format_row,
    sort_rows,
)

LIMIT = 1000  # journal entries listed at once; filters narrow, export writes every match
FIRST_PAGE = 120  # entries read first (a screenful of rows and more); the rest follow in pages of PAGE
PAGE = 200
ACTION_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("All actions", None), ("Record opened", Action.READ.value), ("Search", Action.SEARCH.value),
    ("Break-glass", Action.BREAK_GLASS.value), ("Export", Action.EXPORT.value), ("Reviews", Action.REVIEW.value),
    ("Locality insight", Action.INSIGHT.value),
)
#: what "All actions" lists: reviews are shown on the rows they reviewed (and listed alone under "Reviews")
LISTED_ACTIONS = tuple(a.value for a in Action if a is not Action.REVIEW)
#: the widest a column is fitted to its text (the reason column takes what is left; drag to widen any)
MAX_WIDTHS = {TIME: 170, USER: 140, ROLE: 110, ACTION: 150, PATIENT: 280, PRACTICE: 200, SECTIONS: 380,
              OUTCOME: 130, FLAG: 300}
REASON_MIN = 140  # the reason column's width before it takes what is left
PAINT_WAIT_MS = 100  # the next page is read after the first one is painted, or after this long
FORMAT_CHUNK = 100  # rows made into text a turn once every page is read
FIT_ROWS = 30  # rows measured when fitting the columns: those on screen first, not all of them
NO_DATE = QDate(2000, 1, 1)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2
DISPLAY, ACCESSIBLE, TOOLTIP, FOREGROUND = (int(r) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.ForegroundRole))
ANSWERED_ROLES = frozenset({DISPLAY, ACCESSIBLE, TOOLTIP, FOREGROUND, int(SORT_ROLE), int(ENTRY_ROLE)})


# --- reading: a page at a time on the core's loop; rows made on the GUI thread ---------------------------

def _day(value: QDate) -> date:
    """A QDate as a date (QDate.toPython() is typed as returning object)."""
    return date(value.year(), value.month(), value.day())


@dataclass(frozen=True)
class Filters:
    user: str | None = None
    patient_nhs_number: str | None = None
    practice_id: str | None = None
    since: date | None = None
    until: date | None = None
    action: str | None = None
    flagged: bool = False  # only what is flagged for review (break-glass, self/family, denied): is_flagged

    def query_args(self, *, listing: bool = False) -> dict[str, Any]:
        """Journal.query's filters; `listing`: as the window lists them (reviews on their rows, not alone)."""
        from app.core.audit.export import day_end, day_start

        actions = [self.action] if self.action else (list(LISTED_ACTIONS) if listing else None)
        return {"user": self.user, "patient_nhs_number": self.patient_nhs_number, "practice_id": self.practice_id,
                "since": day_start(self.since) if self.since else None,
                "until": day_end(self.until) if self.until else None, "actions": actions}


async def matching_entries(core: Any, filters: Filters, *, limit: int | None = None,
                           newest_first: bool = True) -> list[JournalEntry]:
    """Journal entries matching `filters` (the flagged-for-review filter is the one `mosaic audit flagged` uses)."""
    return await core.access_history(**filters.query_args(), limit=limit, newest_first=newest_first,
                                     flagged=filters.flagged)


@dataclass(frozen=True)
class Page:
    entries: list[JournalEntry]
    reviews: list[JournalEntry]
    names: dict[tuple[str, str], str]


async def read_page(core: Any, filters: Filters, limit: int, before: tuple[Any, int] | None) -> Page:
    """Up to `limit` entries older than `before` (newest first), the reviews of the flagged ones, and the names
    the core knows of their patients. On the core's loop and its worker threads: no formatting here (see
    app/ui/history_rows.py)."""
    entries = await core.access_history(**filters.query_args(listing=True), limit=limit, newest_first=True,
                                        flagged=filters.flagged, before=before)
    flagged = [e for e in entries if is_flagged(e)]
    reviews = await core.access_history(reviewed=[e.entry_id for e in flagged], newest_first=False,
                                        since=min(e.recorded_at for e in flagged)) if flagged else []
    names: dict[tuple[str, str], str] = {}
    if core.research_view() is None:
        from app.core.display import display_name

        known = getattr(core, "_known", {})  # the core's own summaries of patients it found this session
        for e in entries:
            if e.practice_id and e.patient_local_id and not e.details.get("patient_name"):
                patient = known.get((e.practice_id, e.patient_local_id))
                if patient is not None:
                    names[(e.practice_id, e.patient_local_id)] = display_name(patient)
    return Page(entries, reviews, names)


async def export_entries(core: Any, filters: Filters, path: Path, fmt: str, practices: list[Practice]) -> int:
    """Write every entry matching `filters` (no limit) to `path` as CSV or a FHIR Bundle; returns how many."""
    entries = await matching_entries(core, filters, newest_first=False)

    def write() -> None:
        from app.core.audit.export import to_csv, to_fhir_bundle

        if fmt == "csv":
            text = to_csv(entries)
        else:
            text = json.dumps(to_fhir_bundle(entries, {p.id: p for p in practices}), indent=2, ensure_ascii=False)
        paths.write_private_bytes(path, text.encode("utf-8"))  # patient identifiers: a new 0600 file, in one step

    await asyncio.to_thread(write)
    return len(entries)


class HistoryModel(QAbstractTableModel):
    """The rows shown, added a page at a time (beginInsertRows), kept in the table's sort order."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[HistoryRow] = []
        self.order: tuple[int, bool] = (TIME, True)  # (column, descending)
        self.context = RowContext()  # what a row's cells are made with, when first asked for (formatted())
        self._failed_brush = QBrush(QColor(style.ERROR))

    def set_rows(self, rows: list[HistoryRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def add_rows(self, new: list[HistoryRow], changed: list[HistoryRow] | None = None) -> None:
        """Rows older than every row shown (a later page), and rows a page added to."""
        column, descending = self.order
        changed = changed or []
        for row in changed:
            row.cells = ()  # made again when next shown
        if column != TIME:  # sorted by their text: made now
            for row in [*new, *changed]:
                self.formatted(row)
        if changed:
            rows = {id(r) for r in changed}
            for n, row in enumerate(self.rows):
                if id(row) in rows:
                    self.dataChanged.emit(self.index(n, 0), self.index(n, len(COLUMNS) - 1))
        if not new:
            if changed and column != TIME:
                self._relayout(lambda: sort_rows(self.rows, column, descending))
            return
        if column == TIME and descending:  # the usual order: older rows go at the end
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(new) - 1)
            self.rows.extend(new)
            self.endInsertRows()
        elif column == TIME:  # oldest first: they go at the start
            self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
            self.rows[:0] = reversed(new)
            self.endInsertRows()
        else:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(new) - 1)
            self.rows.extend(new)
            self.endInsertRows()
            self._relayout(lambda: sort_rows(self.rows, column, descending))

    def _relayout(self, change: Any) -> None:
        """Reorder the rows with `change()`, keeping the selection (persistent indexes) on the same rows."""
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        held = [self.rows[i.row()] if 0 <= i.row() < len(self.rows) else None for i in before]
        change()
        where = {id(r): n for n, r in enumerate(self.rows)}
        after = [self.index(where[id(r)], i.column()) if r is not None and id(r) in where else QModelIndex()
                 for r, i in zip(held, before, strict=True)]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Called for every role of every cell painted (seven a cell): the roles answered are picked first.
        if role not in ANSWERED_ROLES or not index.isValid():
            return None
        row = self.formatted(self.rows[index.row()])
        if role in (DISPLAY, ACCESSIBLE):
            return row.cells[index.column()]
        if role == TOOLTIP:
            return row.tips[index.column()] or None
        if role == FOREGROUND:
            column = index.column()
            if (row.failed and column == OUTCOME) or (column == FLAG and row.unreviewed):
                return self._failed_brush
            return None
        if role == SORT_ROLE:
            return row.sort_keys[index.column()]
        return row.entry  # ENTRY_ROLE

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def formatted(self, row: HistoryRow) -> HistoryRow:
        """`row` with its cells made (rows are made into text when first shown or sorted by, not as read)."""
        if not row.cells:
            format_row(row, self.context)
        return row

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.order = (column, order == Qt.SortOrder.DescendingOrder)
        if column != TIME:
            for row in self.rows:  # usually done already, a chunk a turn after the last page (see _format_rest)
                self.formatted(row)
        self._relayout(lambda: sort_rows(self.rows, *self.order))


class FilterBar(QFrame):
    """The filters; Enter anywhere in them shows the entries (the table keeps Enter for itself)."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class AccessHistoryWindow(QWidget):
    """A separate, non-modal window. `loaded` and `exported` let tests wait instead of sleeping."""

    loaded = Signal(object)  # list[HistoryRow] (every page read), or None when the journal could not be read
    exported = Signal(object)  # the Path written, or None when the export failed
    reviewed = Signal(object)  # list of the REVIEW entries journaled, or an exception when it failed

    def __init__(self, bridge: AsyncBridge, core: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.bridge = bridge
        self.core = core
        self._generation = 0
        self._shown_filters: Filters | None = None
        self._stale = True  # no rows, or let go while hidden: the journal is read when the window is shown
        self._builder = RowBuilder()
        self._context = RowContext()
        self._pages = QTimer(self)  # the next page is asked for on a later turn of the event loop
        self._pages.setSingleShot(True)
        self._pages.setInterval(0)
        self._pages.timeout.connect(self._read_next)
        self._next: tuple[int, Filters, tuple[Any, int]] | None = None
        self._held: list[HistoryRow] = []  # rows of later pages, added when the last page is read
        self._after_paint = False  # the first page is on its way to the screen: the next is read after
        self.review_dialog: ReviewDialog | None = None
        self._wanted_widths: dict[int, int] = {}
        self.setObjectName("accessHistory")
        self.setWindowTitle("Access history · Mosaic")
        self.setAccessibleName("Access history")
        # The main window's style sheet applies here too (a window of its parent's); only what differs is set,
        # so that showing the window does not parse and match a second copy of the whole sheet.
        self.setStyleSheet(("" if parent is not None else style.STYLE_SHEET)
                           + f"QWidget#accessHistory {{ background: {style.BACKGROUND}; }}"
                           "QLineEdit { font-size: 10pt; padding: 4px 6px; }"
                           "QLineEdit:focus, QLineEdit[invalid=\"true\"] { padding: 3px 5px; }")
        self.resize(1280, 700)
        self._build()
        self.set_core(core)

    # -- construction ------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 10)
        heading = QLabel("Who opened which records, and who searched for whom, as recorded on this computer")
        heading.setObjectName("heading")
        heading.setWordWrap(True)
        layout.addWidget(heading)

        self.filters = FilterBar()
        self.filters.setObjectName("card")
        self.filters.submitted.connect(self.show_entries)
        grid = QGridLayout(self.filters)
        grid.setContentsMargins(10, 8, 10, 8)
        grid.setHorizontalSpacing(8)

        self.user_edit = QLineEdit()
        self.user_edit.setPlaceholderText("any user")
        self.user_edit.setAccessibleName("User login")
        self.user_edit.setToolTip("The user's login, exactly as recorded (for example jsmith)")
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("any patient")
        self.patient_edit.setAccessibleName("Patient NHS number")
        self.patient_edit.setToolTip("The patient's 10-digit NHS number")
        self.patient_edit.textChanged.connect(lambda _t: self._set_field_error(None))
        self.practice_combo = QComboBox()
        self.practice_combo.setAccessibleName("Practice")
        self.action_combo = QComboBox()
        self.action_combo.setAccessibleName("Action")
        for text, value in ACTION_CHOICES:
            self.action_combo.addItem(text, value)
        self.flagged_check = QCheckBox("Flagged for re&view only")
        self.flagged_check.setAccessibleName("Flagged for review only")
        self.flagged_check.setToolTip("Only accesses flagged for review: break-glass, the user's own or a family "
                                      "member's record, and accesses the policy denied (as mosaic audit flagged)")

        today = QDate.currentDate()
        self.from_check = QCheckBox("&From")
        self.from_check.setAccessibleName("Limit to entries from a date")
        self.from_date = self._date_edit("From date", today.addDays(-30))
        self.to_check = QCheckBox("&To")
        self.to_check.setAccessibleName("Limit to entries up to a date")
        self.to_date = self._date_edit("To date", today)
        for check, edit in ((self.from_check, self.from_date), (self.to_check, self.to_date)):
            check.toggled.connect(lambda on, e=edit: self._use_date(e, on))

        self.show_button = QPushButton("&Show")
        self.show_button.setAccessibleName("Show entries")
        self.show_button.setToolTip("Show the entries that match (Enter)")
        self.show_button.clicked.connect(self.show_entries)
        self.clear_button = QPushButton("C&lear filters")
        self.clear_button.setObjectName("secondaryButton")
        self.clear_button.setAccessibleName("Clear filters")
        self.clear_button.clicked.connect(self.clear_filters)

        def label(text: str, buddy: QWidget) -> QLabel:
            found = QLabel(text)
            found.setBuddy(buddy)
            return found

        grid.addWidget(label("&User login", self.user_edit), 0, 0)
        grid.addWidget(self.user_edit, 0, 1)
        grid.addWidget(label("&Patient NHS number", self.patient_edit), 0, 2)
        grid.addWidget(self.patient_edit, 0, 3)
        grid.addWidget(label("Pr&actice", self.practice_combo), 0, 4)
        grid.addWidget(self.practice_combo, 0, 5, 1, 3)
        grid.addWidget(self.from_check, 1, 0)
        grid.addWidget(self.from_date, 1, 1)
        grid.addWidget(self.to_check, 1, 2)
        grid.addWidget(self.to_date, 1, 3)
        grid.addWidget(label("Acti&on", self.action_combo), 1, 4)
        grid.addWidget(self.action_combo, 1, 5)
        grid.addWidget(self.show_button, 1, 6)
        grid.addWidget(self.clear_button, 1, 7)
        grid.addWidget(self.flagged_check, 2, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.setColumnStretch(5, 2)
        self.field_error = QLabel()
        self.field_error.setObjectName("fieldError")
        self.field_error.setAccessibleName("Filter problem")
        self.field_error.setVisible(False)
        grid.addWidget(self.field_error, 3, 0, 1, 8)
        layout.addWidget(self.filters)

        self.upstream = QFrame()
        self.upstream.setObjectName("problems")
        upstream_layout = QHBoxLayout(self.upstream)
        upstream_layout.setContentsMargins(10, 6, 10, 6)
        self.upstream_text = QLabel()
        self.upstream_text.setWordWrap(True)
        self.upstream_text.setObjectName("failureText")
        self.upstream_text.setAccessibleName("Upstream delivery problems")
        self.upstream_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        upstream_layout.addWidget(self.upstream_text)
        self.upstream.setVisible(False)
        layout.addWidget(self.upstream)

        self.model = HistoryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Access history entries")
        self.table.setAccessibleDescription("One row per search (every practice asked) or record opened. Click a "
                                            "column heading to sort.")
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setAccessibleName("Access history columns")
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(REASON, QHeaderView.ResizeMode.Stretch)  # the rest of the width
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(48)
        header.setSortIndicator(TIME, Qt.SortOrder.DescendingOrder)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # never measured per row
        # Always there: the first page's rows do not narrow the table by a scroll bar, which painted it twice
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.table.viewport().installEventFilter(self)
        self._fit_columns([])
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_review_button())
        self.table.doubleClicked.connect(lambda _index: self.review_selected())
        layout.addWidget(self.table, 1)

        bottom = QHBoxLayout()
        self.count_line = QLabel("")
        self.count_line.setObjectName("countLine")
        self.count_line.setAccessibleName("Number of entries")
        self.count_line.setWordWrap(True)
        bottom.addWidget(self.count_line, 1)
        self.export_button = QPushButton("&Export…")
        self.export_button.setAccessibleName("Export entries")
        self.export_button.setToolTip("Save every entry that matches the filters shown, as CSV or a FHIR "
                                      "Bundle of AuditEvents (Ctrl+E)")
        self.export_button.clicked.connect(self.choose_export)
        self.export_button.setEnabled(False)
        self.review_button = QPushButton("&Mark reviewed…")
        self.review_button.setAccessibleName("Mark reviewed")
        self.review_button.setToolTip("Record that you reviewed the selected flagged access, with a note (journaled "
                                      "under your name)")
        self.review_button.clicked.connect(self.review_selected)
        self.review_button.setEnabled(False)
        self.close_button = QPushButton("&Close")
        self.close_button.setObjectName("secondaryButton")
        self.close_button.setAccessibleName("Close access history")
        self.close_button.clicked.connect(self.close)
        bottom.addWidget(self.review_button)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)

        QShortcut(QKeySequence("Ctrl+E"), self, self.choose_export)
        QShortcut(QKeySequence("Ctrl+W"), self, self.close)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

        order = [self.user_edit, self.patient_edit, self.practice_combo, self.from_check, self.from_date,
                 self.to_check, self.to_date, self.action_combo, self.flagged_check, self.show_button,
                 self.clear_button, self.table, self.review_button, self.export_button, self.close_button]
        for first, second in zip(order, order[1:], strict=False):
            QWidget.setTabOrder(first, second)

    def _date_edit(self, name: str, initial: QDate) -> QDateEdit:
        """Unticked, the date reads "any date"; ticked, it offers the date it last had (`initial` at first)."""
        edit = QDateEdit(NO_DATE)
        edit.setProperty("chosen", initial)
        edit.setDisplayFormat("dd-MMM-yyyy")
        edit.setCalendarPopup(True)
        edit.setAccessibleName(name)
        edit.setMinimumDate(NO_DATE)
        edit.setSpecialValueText("any date")
        edit.setMaximumDate(QDate.currentDate().addYears(1))
        edit.setEnabled(False)
        return edit

    def _use_date(self, edit: QDateEdit, on: bool) -> None:
        self._set_field_error(None)
        if on:
            edit.setEnabled(True)
            edit.setDate(edit.property("chosen"))
        else:
            if edit.date() != NO_DATE:
                edit.setProperty("chosen", edit.date())
            edit.setDate(NO_DATE)
            edit.setEnabled(False)

    def set_core(self, core: Any) -> None:
        """Use `core` (a new one after the demo practices start); the practice list follows it."""
        self.core = core
        current = self.practice_combo.currentData()
        self.practice_combo.clear()
        self.practice_combo.addItem("All practices", None)
        for practice in core.practices if core is not None else []:
            self.practice_combo.addItem(f"{practice.name} ({practice.ods_code})", practice.id)
        found = self.practice_combo.findData(current)
        self.practice_combo.setCurrentIndex(max(found, 0))

    # -- filters -----------------------------------------------------------------------------------

    def _set_field_error(self, message: str | None) -> None:
        self.field_error.setText(message or "")
        self.field_error.setVisible(bool(message))
        invalid = bool(message) and "NHS number" in (message or "")
        if self.patient_edit.property("invalid") != invalid:
            self.patient_edit.setProperty("invalid", invalid)
            self.patient_edit.style().unpolish(self.patient_edit)
            self.patient_edit.style().polish(self.patient_edit)

    def current_filters(self) -> Filters | None:
        """The filters as typed, or None (with the problem shown) when one cannot be used."""
        patient_text = self.patient_edit.text().strip()
        patient = None
        if patient_text:
            digits = nhs_number.normalise(patient_text)
            problem = nhs_number_problem(patient_text)
            if problem is None and not (len(digits) == 10 and nhs_number.is_valid(digits)):
                problem = "Type the patient's 10-digit NHS number, for example 943 476 5919."
            if problem:
                self._set_field_error(problem)
                self.patient_edit.setFocus()
                return None
            patient = digits
        since = _day(self.from_date.date()) if self.from_check.isChecked() else None
        until = _day(self.to_date.date()) if self.to_check.isChecked() else None
        if since and until and since > until:
            self._set_field_error(f"The From date ({format_date(since)}) is after the To date "
                                  f"({format_date(until)}).")
            self.from_date.setFocus()
            return None
        self._set_field_error(None)
        return Filters(user=self.user_edit.text().strip() or None, patient_nhs_number=patient,
                       practice_id=self.practice_combo.currentData(), since=since, until=until,
                       action=self.action_combo.currentData(), flagged=self.flagged_check.isChecked())

    def set_filters(self, *, user: str | None = None, patient: str | None = None, practice_id: str | None = None,
                    since: date | None = None, until: date | None = None, action: str | None = None,
                    flagged: bool = False) -> None:
        self.user_edit.setText(user or "")
        self.patient_edit.setText(nhs_number.format_nhs_number(patient) if patient else "")
        self.practice_combo.setCurrentIndex(max(self.practice_combo.findData(practice_id), 0))
        for check, edit, day in ((self.from_check, self.from_date, since), (self.to_check, self.to_date, until)):
            check.setChecked(False)  # so that ticking it below shows `day`
            if day is not None:
                edit.setProperty("chosen", QDate(day.year, day.month, day.day))
                check.setChecked(True)
        self.action_combo.setCurrentIndex(max(self.action_combo.findData(action), 0))
        self.flagged_check.setChecked(flagged)

    def clear_filters(self) -> None:
        self.set_filters()
        self._set_field_error(None)
        self.show_entries()

    # -- loading -----------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale and not event.spontaneous():
            self.show_entries()  # with the filters as they were left

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override
        """Closed or hidden by the lock (not minimised): let the rows go, and any read still on its way."""
        super().hideEvent(event)
        if event.spontaneous():
            return
        self._generation += 1
        self._stale = True
        self._shown_filters = None
        self._pages.stop()
        self._next = None
        self._after_paint = False
        self._builder = RowBuilder()
        self._held = []
        self._context.names.clear()
        self.model.set_rows([])
        self.export_button.setEnabled(False)
        self.review_button.setEnabled(False)
        self.count_line.setText("")
        if self.review_dialog is not None:
            self.review_dialog.reject()

    def show_entries(self) -> None:
        filters = self.current_filters()
        if filters is None or self.core is None:
            return
        self._stale = False
        self._generation += 1
        self._pages.stop()
        self._after_paint = False
        # Show stays usable meanwhile: filters changed while the journal is read (as the window opens, say)
        # are shown by pressing it again, and the read under way is dropped.
        self.count_line.setText("Reading the audit journal…")
        self._context = RowContext({p.id: p for p in self.core.practices})
        self.model.context = self._context
        self._read(self._generation, filters, FIRST_PAGE + 1, None)

    def _read(self, generation: int, filters: Filters, limit: int, before: tuple[Any, int] | None) -> None:
        self.bridge.submit(read_page(self.core, filters, limit, before),
                           lambda page: self._page(generation, filters, limit, before is None, page),
                           lambda exc: self._load_failed(generation, exc), receiver=self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if self._after_paint and event.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, self, self._painted)  # after the paint, on the next turn
        return False

    def _painted(self) -> None:
        if self._after_paint:
            self._after_paint = False
            self._pages.start()

    def _read_next(self) -> None:
        if self._next is None or self._next[0] != self._generation:
            return
        generation, filters, before = self._next
        self._next = None
        self._read(generation, filters, min(PAGE, LIMIT - self._builder.entries) + 1, before)

    def _page(self, generation: int, filters: Filters, asked: int, first: bool, page: Page) -> None:
        """A page read: its rows made and added (one page per turn of the event loop), then the next asked for."""
        if generation != self._generation:
            return
        more = len(page.entries) == asked  # one more than wanted was asked for: is there another page?
        entries = page.entries[:asked - 1] if more else page.entries
        if first:
            self._builder = RowBuilder()
            self.model.order = self._sort_order()
            self.model.set_rows([])
        self._context.names.update(page.names)
        new, changed = self._builder.add(entries, page.reviews)
        if first:
            self._held = []
            self.model.add_rows(new, changed)
            self._fit_columns([self.model.formatted(r) for r in self.model.rows[:FIT_ROWS]])
        else:  # below the first screenful: held until the last page, then added at once (one insert, one paint)
            held = {id(r) for r in self._held}
            self._held.extend(new)
            self.model.add_rows([], [r for r in changed if id(r) not in held])
        truncated = more and self._builder.entries >= LIMIT
        if more and not truncated:
            last = entries[-1]
            self._next = (generation, filters, (last.recorded_at, last.seq or 0))
            if first:  # the next page is read once this one is painted: no worker's Python competes with the paint
                self.count_line.setText(f"{self._rows_text(filters, len(self.model.rows))} so far; reading more…")
                self._after_paint = True
                QTimer.singleShot(PAINT_WAIT_MS, self, self._painted)  # not shown (minimised): read on anyway
                self.table.viewport().update()
            else:
                self._pages.start()
            return
        self.model.add_rows(self._held)
        self._held = []
        self._format_rest(generation, filters, truncated)

    def _format_rest(self, generation: int, filters: Filters, truncated: bool) -> None:
        """Every page read: the rows not yet shown are made into text FORMAT_CHUNK a turn (so that sorting by a
        column, or export's count, never makes a thousand at once), then the entries are loaded."""
        if generation != self._generation:
            return
        left = [r for r in self.model.rows if not r.cells][:FORMAT_CHUNK]
        with gui_busy():  # the core's loop waits its turn meanwhile (app/ui/gui_first.py)
            for row in left:
                self.model.formatted(row)
        if len(left) == FORMAT_CHUNK:
            QTimer.singleShot(0, self, lambda: self._format_rest(generation, filters, truncated))
            return
        self._loaded(generation, filters, truncated)

    def _loaded(self, generation: int, filters: Filters, truncated: bool) -> None:
        self.show_button.setEnabled(True)
        self._shown_filters = filters
        rows = self.model.rows
        self.count_line.setText(self._count_text(filters, len(rows), truncated))
        self.export_button.setEnabled(bool(rows))
        self._update_review_button()
        self.loaded.emit(list(rows))

    def _sort_order(self) -> tuple[int, bool]:
        header = self.table.horizontalHeader()
        return header.sortIndicatorSection(), header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder

    def _fit_columns(self, rows: list[HistoryRow]) -> None:
        """Each column as wide as its heading and the text of the rows first on screen (up to MAX_WIDTHS): measured
        on FIT_ROWS rows, never on every row. The reason column takes the rest (at least REASON_MIN; the widest
        columns give way for it, the patient's last). Cut text ends in "…" and reads whole in its tooltip."""
        metrics = self.table.fontMetrics()
        wanted = {}
        for column in range(len(COLUMNS)):
            text = max((metrics.horizontalAdvance(r.cells[column]) for r in rows), default=0)
            wanted[column] = min(max(text + 16, self._heading_width(column)), MAX_WIDTHS.get(column, REASON_MIN))
        self._wanted_widths = wanted
        self._apply_widths()

    def _heading_width(self, column: int) -> int:
        bold = self.table.horizontalHeader().font()
        bold.setBold(True)  # the style sheet's headings are bold
        return QFontMetrics(bold).horizontalAdvance(COLUMNS[column]) + 28  # and the sort arrow

    def _apply_widths(self) -> None:
        wanted = dict(self._wanted_widths)
        if not wanted:
            return
        reason = wanted.pop(REASON)
        spare = self.table.viewport().width() - sum(wanted.values()) - reason
        for column, floor in ((SECTIONS, 170), (PRACTICE, 110), (FLAG, 180), (PATIENT, 250)):
            if spare >= 0:  # too wide: these give way, down to their heading's width (and `floor`)
                break
            give = min(-spare, max(wanted[column] - max(floor, self._heading_width(column)), 0))
            wanted[column] -= give
            spare += give
        for column, width in wanted.items():
            if self.table.columnWidth(column) != width:
                self.table.setColumnWidth(column, width)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._apply_widths()

    def _rows_text(self, filters: Filters, count: int) -> str:
        noun = "flagged " if filters.flagged else ""
        entries = self._builder.entries
        text = f"1 {noun}row" if count == 1 else f"{count:,} {noun}rows"
        return text + (f" ({entries:,} journal entries)" if entries != count else "")

    def _count_text(self, filters: Filters, count: int, truncated: bool) -> str:
        if truncated:
            return (f"{self._rows_text(filters, count)}: the newest {LIMIT:,} matching journal entries; older ones "
                    "are not listed. Narrow the filters (dates, user, patient) to see them. Export includes them all.")
        if count == 0:
            others = any(v is not None for v in (filters.user, filters.patient_nhs_number, filters.practice_id,
                                                  filters.since, filters.until, filters.action))
            if filters.flagged and not others:
                return "No accesses are flagged for review."
            return "No entries match these filters." if others or filters.flagged \
                else "The audit journal has no entries yet."
        return self._rows_text(filters, count)

    def _load_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.show_button.setEnabled(True)
        self.count_line.setText(f"The audit journal could not be read: {exc}")
        self.loaded.emit(None)

    # -- upstream ----------------------------------------------------------------------------------

    def set_upstream(self, text: str | None) -> None:
        """Deliveries refused by a destination (from the window's outbox status), or None."""
        self.upstream_text.setText(text or "")
        self.upstream.setVisible(bool(text))

    # -- export ------------------------------------------------------------------------------------

    def choose_export(self) -> None:
        if self._shown_filters is None or not self.export_button.isEnabled():
            return
        csv_filter, fhir_filter = "CSV spreadsheet (*.csv)", "FHIR Bundle of AuditEvents (*.json)"
        suggested = str(Path.home() / f"mosaic-access-history-{date.today().isoformat()}.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export access history", suggested,
                                                   f"{csv_filter};;{fhir_filter}")
        if not path:
            return
        fmt = "fhir" if chosen == fhir_filter or path.lower().endswith(".json") else "csv"
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".json" if fmt == "fhir" else ".csv")
        self.export_to(target, fmt)

    def export_to(self, path: Path, fmt: str = "csv") -> None:
        """Write every entry matching the filters shown (not only the newest LIMIT) to `path`."""
        if self._shown_filters is None or self.core is None:
            return
        self.export_button.setEnabled(False)
        self.count_line.setText(f"Exporting to {path}…")
        filters = self._shown_filters
        shown = self.model.rowCount()

        def done(count: int) -> None:
            self.export_button.setEnabled(True)
            self.count_line.setText(f"{self._count_text(filters, shown, False)} · exported {count:,} to {path}")
            self.exported.emit(path)

        def failed(exc: BaseException) -> None:
            self.export_button.setEnabled(True)
            self.count_line.setText(f"The export to {path} failed: {exc}. Choose another folder and try again.")
            self.exported.emit(None)

        self.bridge.submit(export_entries(self.core, filters, path, fmt, list(self.core.practices)), done, failed)

    # -- review ------------------------------------------------------------------------------------

    def selected_row(self) -> HistoryRow | None:
        current = self.table.currentIndex()
        return self.model.rows[current.row()] if current.isValid() and current.row() < len(self.model.rows) else None

    REVIEW_TIP = ("Record that you reviewed the selected flagged access, with a note (journaled under your name)")
    OWN_ACCESS_TIP = "This is your own access: someone else (the practice's privacy officer) must review it"

    def _update_review_button(self) -> None:
        row = self.selected_row()
        login = self.core.login if self.core is not None else None  # who the journal names: the user, or the OS login
        own = row is not None and login is not None and any(e.user.login == login for e in row.unreviewed)
        self.review_button.setEnabled(row is not None and bool(row.unreviewed) and not own)
        self.review_button.setToolTip(self.OWN_ACCESS_TIP if own else self.REVIEW_TIP)

    def review_selected(self) -> ReviewDialog | None:
        """Mark reviewed… for the selected row when it has a flagged access nobody has reviewed."""
        row = self.selected_row()
        if row is None or not row.unreviewed or self.core is None or not self.review_button.isEnabled():
            return None
        user = self.core.user
        reviewer = (user.display_name or user.login) if user is not None else None
        dialog = ReviewDialog(self.model.formatted(row), reviewer, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.mark_reviewed(row, dialog.note()))
        dialog.finished.connect(lambda _result: setattr(self, "review_dialog", None))
        self.review_dialog = dialog
        dialog.open()
        return dialog

    def mark_reviewed(self, row: HistoryRow, note: str) -> None:
        """Journal a review of each flagged entry of `row` not yet reviewed (as the signed-in user), then show
        the entries again with it."""
        from app.core.audit.review import mark_reviewed

        entries = row.unreviewed
        if not entries or self.core is None:
            return
        core = self.core

        async def review_all() -> list[JournalEntry]:
            return [await mark_reviewed(core, e.entry_id, note) for e in entries]

        def done(reviews: list[JournalEntry]) -> None:
            self.count_line.setText(f"Marked reviewed: {len(reviews)} flagged "
                                    f"{'entry' if len(reviews) == 1 else 'entries'} (journaled)")
            self.reviewed.emit(reviews)
            self.show_entries()

        def failed(exc: BaseException) -> None:
            self.count_line.setText(f"Not marked reviewed: {exc}")
            self.reviewed.emit(exc)

        self.review_button.setEnabled(False)
        self.bridge.submit(review_all(), done, failed, receiver=self)
