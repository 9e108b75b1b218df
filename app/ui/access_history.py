"""Access history: who opened whose record, from the local audit journal, with filters and export.

The window is thin. Reading the journal, formatting and sorting its rows and writing an export all run on
the core's loop (and its worker threads) through the bridge; the GUI thread only shows the rows it is handed.

The window is built once and reused. It holds its rows only while it is shown: hidden (closed, or by the
idle lock) it lets them go, and it reads the journal again when it is next shown. Up to LIMIT rows of
patient identifiers are therefore not kept on a locked screen, nor kept for the rest of the day once the
window is closed.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QHideEvent, QKeyEvent, QKeySequence, QShortcut, QShowEvent
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
from app.core.audit.model import Action, JournalEntry, Outcome
from app.core.display import format_date, format_datetime
from app.core.model import SECTION_TITLES, Practice, SectionName
from app.core.query import nhs_number_problem
from app.ui import style
from app.ui.bridge import AsyncBridge

LIMIT = 1000  # rows listed at once; filters narrow, export writes every match
ACTION_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("All actions", None), ("Record opened", Action.READ.value), ("Search", Action.SEARCH.value),
    ("Break-glass", Action.BREAK_GLASS.value), ("Export", Action.EXPORT.value),
)
ACTION_TEXT = {Action.READ: "Record opened", Action.SEARCH: "Search", Action.BREAK_GLASS: "Break-glass",
               Action.EXPORT: "Export"}
OUTCOME_TEXT = {Outcome.SUCCESS: "Success", Outcome.FAILURE: "Failed", Outcome.DENIED: "Denied"}
COLUMNS = ("Time", "User", "Role", "Action", "Practice", "NHS number", "Sections shown / search", "Reason",
           "Outcome", "Review flag", "Workstation")
WIDTHS = (155, 80, 60, 95, 150, 105, 190, 170, 80, 110, 90)  # the reason wide enough to read when reviewing
HEADER_TIPS = ("Local time, to the second", "The user's login", "The user's role, when known",
               "Record opened, or a search", "The practice asked", "The patient's NHS number",
               "What the user saw: the record's sections, or what was searched for and how many were found",
               "The reason the user gave, when asked", "Whether it worked (hover for why not)",
               "Why the access is flagged for review: break-glass, self or family, or denied by the access policy",
               "The computer used")
NO_DATE = QDate(2000, 1, 1)
TIME, USER, ROLE, ACTION, PRACTICE, PATIENT, SECTIONS, REASON, OUTCOME, FLAG, WORKSTATION = range(len(COLUMNS))
FLAG_TEXT = {"break-glass": "Break-glass", "self-or-family": "Self or family", "denied": "Denied"}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 2


# --- rows: built on the core's loop, shown on the GUI thread ------------------------------------------------

def _day(value: QDate) -> date:
    """A QDate as a date (QDate.toPython() is typed as returning object)."""
    return date(value.year(), value.month(), value.day())


@dataclass(frozen=True)
class HistoryRow:
    entry: JournalEntry
    cells: tuple[str, ...]
    sort_keys: tuple[Any, ...]
    tips: tuple[str, ...]
    failed: bool


def _practice_text(entry: JournalEntry, practices: dict[str, Practice]) -> str:
    practice = practices.get(entry.practice_id or "")
    if practice is not None:
        return practice.name
    return entry.practice_id or ""  # no longer configured: say what the journal holds


def _searched_text(entry: JournalEntry) -> str:
    query = entry.details.get("query") or {}
    parts = []
    if query.get("nhs_number"):
        parts.append(f"NHS number {nhs_number.format_nhs_number(query['nhs_number'])}")
    name = " ".join(str(query[k]) for k in ("family", "given") if query.get(k))
    if name:
        parts.append(name)
    if query.get("birth_date"):
        try:
            parts.append("born " + format_date(date.fromisoformat(query["birth_date"])))
        except ValueError:
            parts.append("born " + str(query["birth_date"]))
    if query.get("nhs_number") and len(parts) == 1:
        text = "Search by NHS number"
    else:
        text = "Search for " + (", ".join(parts) if parts else "(nothing recorded)")
    results = entry.details.get("results")
    if results is not None:
        text += f" · {results} found"
    return text


def _section_title(value: str) -> str:
    try:
        return SECTION_TITLES[SectionName(value)]
    except (ValueError, KeyError):
        return value


def _sections_text(entry: JournalEntry) -> str:
    if entry.action is Action.SEARCH:
        return _searched_text(entry)
    text = ", ".join(_section_title(v) for v in entry.sections)
    if len(entry.sections) == len(SectionName) and len(set(entry.sections)) == len(SectionName):
        text = f"Whole record ({len(SectionName)} sections)"
    failed = entry.details.get("sections_failed")
    if failed:
        text += ("; " if text else "") + f"could not load {len(failed)}"
    return text or ("None (the record was not shown)" if entry.outcome is not Outcome.SUCCESS else "")


def flag_text(entry: JournalEntry) -> str:
    """Why the entry is flagged for review ("" when it is not), as `mosaic audit flagged` names it."""
    flags = [str(f) for f in entry.details.get("flags") or ([entry.details["flag"]] if entry.details.get("flag")
                                                            else [])]
    if entry.action is Action.BREAK_GLASS and "break-glass" not in flags:
        flags.insert(0, "break-glass")
    names = [FLAG_TEXT.get(f, f) for f in flags if f != "denied"]
    if entry.outcome is Outcome.DENIED:
        return "Denied" + (f" ({', '.join(names)})" if names else "")
    return ", ".join(names) if names or not entry.details.get("flagged") else "Flagged"


def history_row(entry: JournalEntry, practices: dict[str, Practice]) -> HistoryRow:
    """How one journal entry reads in the table, with what each column sorts by and its tooltip."""
    local = entry.recorded_at.astimezone()
    when = f"{format_datetime(entry.recorded_at)}:{local.second:02d}"  # to the second: entries come close together
    user = entry.user.login
    role = entry.user.role or ""
    action = ACTION_TEXT.get(entry.action, str(entry.action))
    practice = _practice_text(entry, practices)
    patient = nhs_number.format_nhs_number(entry.patient_nhs_number) if entry.patient_nhs_number else ""
    sections = _sections_text(entry)
    reason = entry.purpose or ""
    outcome = OUTCOME_TEXT.get(entry.outcome, str(entry.outcome))
    flag = flag_text(entry)
    cells = (when, user, role, action, practice, patient, sections, reason, outcome, flag, entry.workstation)
    stamp = entry.recorded_at.astimezone(UTC)
    sort_keys: tuple[Any, ...] = ((stamp.isoformat(), entry.seq or 0),) + tuple(c.casefold() for c in cells[1:])
    user_tip = entry.user.display_name if entry.user.display_name != user else ""
    if entry.user.professional_ids:
        user_tip += ("\n" if user_tip else "") + "\n".join(f"{k}: {v}" for k, v in entry.user.professional_ids.items())
    patient_tip = f"Practice's own patient id: {entry.patient_local_id}" if entry.patient_local_id else ""
    outcome_tip = entry.outcome_detail or ""
    if entry.details.get("sections_failed"):
        outcome_tip += ("\n" if outcome_tip else "") + "Sections that could not be loaded: " + ", ".join(
            entry.details["sections_failed"])
    tips = (f"{when} local time ({stamp:%Y-%m-%d %H:%M:%S} UTC)\nJournal entry {entry.seq} · {entry.entry_id}",
            user_tip, "", "", f"ODS code {entry.practice_ods}" if entry.practice_ods else "", patient_tip,
            ", ".join(_section_title(v) for v in entry.sections) or sections, reason, outcome_tip,
            "Flagged for review" + (f": {entry.outcome_detail}" if entry.outcome_detail else "") if flag else "", "")
    return HistoryRow(entry, cells, sort_keys, tips, entry.outcome is not Outcome.SUCCESS)


@dataclass(frozen=True)
class Filters:
    user: str | None = None
    patient_nhs_number: str | None = None
    practice_id: str | None = None
    since: date | None = None
    until: date | None = None
    action: str | None = None
    flagged: bool = False  # only what is flagged for review (break-glass, self/family, denied): is_flagged

    def query_args(self) -> dict[str, Any]:
        from app.core.audit.export import day_end, day_start

        return {"user": self.user, "patient_nhs_number": self.patient_nhs_number, "practice_id": self.practice_id,
                "since": day_start(self.since) if self.since else None,
                "until": day_end(self.until) if self.until else None,
                "actions": [self.action] if self.action else None}


async def matching_entries(core: Any, filters: Filters, *, limit: int | None = None,
                           newest_first: bool = True) -> list[JournalEntry]:
    """Journal entries matching `filters` (the flagged-for-review filter is the one `mosaic audit flagged` uses)."""
    return await core.access_history(**filters.query_args(), limit=limit, newest_first=newest_first,
                                     flagged=filters.flagged)


def sort_rows(rows: list[HistoryRow], column: int, descending: bool) -> None:
    """In place, by `column` (then by time), as the table sorts when a column heading is clicked."""
    rows.sort(key=lambda r: (r.sort_keys[column], r.sort_keys[TIME]), reverse=descending)


async def load_rows(core: Any, filters: Filters, practices: list[Practice], *, sort_column: int = TIME,
                    descending: bool = True) -> tuple[list[HistoryRow], bool]:
    """The newest LIMIT matching entries as table rows, sorted as the table is (runs on the core loop and a
    worker thread, not the GUI thread), and whether there were more."""
    entries = await matching_entries(core, filters, limit=LIMIT + 1)
    by_id = {p.id: p for p in practices}

    def rows_of() -> list[HistoryRow]:
        rows = [history_row(e, by_id) for e in entries[:LIMIT]]
        sort_rows(rows, sort_column, descending)
        return rows

    rows = await asyncio.to_thread(rows_of)
    return rows, len(entries) > LIMIT


async def export_entries(core: Any, filters: Filters, path: Path, fmt: str, practices: list[Practice]) -> int:
    """Write every entry matching `filters` (no limit) to `path` as CSV or a FHIR Bundle; returns how many."""
    entries = await matching_entries(core, filters, newest_first=False)

    def write() -> None:
        from app.core.audit.export import to_csv, to_fhir_bundle

        if fmt == "csv":
            text = to_csv(entries)
        else:
            text = json.dumps(to_fhir_bundle(entries, {p.id: p for p in practices}), indent=2, ensure_ascii=False)
        partial = path.with_name(path.name + ".part")
        with paths.open_private(partial, "w", newline="") as out:  # patient identifiers: user-only (0600)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    await asyncio.to_thread(write)
    return len(entries)


class HistoryModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[HistoryRow] = []
        self._failed_brush = QBrush(QColor(style.ERROR))

    def set_rows(self, rows: list[HistoryRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return row.cells[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tips[column] or None
        if role == Qt.ItemDataRole.ForegroundRole and ((row.failed and column == OUTCOME)
                                                       or (column == FLAG and row.cells[FLAG])):
            return self._failed_brush
        if role == SORT_ROLE:
            return row.sort_keys[column]
        if role == ENTRY_ROLE:
            return row.entry
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        sort_rows(self.rows, column, order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()


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

    loaded = Signal(object)  # list[HistoryRow], or None when the journal could not be read
    exported = Signal(object)  # the Path written, or None when the export failed

    def __init__(self, bridge: AsyncBridge, core: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.bridge = bridge
        self.core = core
        self._generation = 0
        self._shown_filters: Filters | None = None
        self._stale = True  # no rows, or let go while hidden: the journal is read when the window is shown
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
        self.table.setAccessibleDescription("One row per search or record opened. Click a column heading to sort.")
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
        header.setStretchLastSection(True)
        header.setSortIndicator(TIME, Qt.SortOrder.DescendingOrder)
        for column, width in enumerate(WIDTHS):
            self.table.setColumnWidth(column, width)
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
        self.close_button = QPushButton("&Close")
        self.close_button.setObjectName("secondaryButton")
        self.close_button.setAccessibleName("Close access history")
        self.close_button.clicked.connect(self.close)
        bottom.addWidget(self.export_button)
        bottom.addWidget(self.close_button)
        layout.addLayout(bottom)

        QShortcut(QKeySequence("Ctrl+E"), self, self.choose_export)
        QShortcut(QKeySequence("Ctrl+W"), self, self.close)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

        order = [self.user_edit, self.patient_edit, self.practice_combo, self.from_check, self.from_date,
                 self.to_check, self.to_date, self.action_combo, self.flagged_check, self.show_button,
                 self.clear_button, self.table, self.export_button, self.close_button]
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
        self.model.set_rows([])
        self.export_button.setEnabled(False)
        self.count_line.setText("")

    def show_entries(self) -> None:
        filters = self.current_filters()
        if filters is None or self.core is None:
            return
        self._stale = False
        self._generation += 1
        generation = self._generation
        # Show stays usable meanwhile: filters changed while the journal is read (as the window opens, say)
        # are shown by pressing it again, and the read under way is dropped.
        self.count_line.setText("Reading the audit journal…")
        practices = list(self.core.practices)
        order = self._sort_order()
        self.bridge.submit(load_rows(self.core, filters, practices, sort_column=order[0], descending=order[1]),
                           lambda result: self._loaded(generation, filters, result[0], result[1], order),
                           lambda exc: self._load_failed(generation, exc))

    def _sort_order(self) -> tuple[int, bool]:
        header = self.table.horizontalHeader()
        return header.sortIndicatorSection(), header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder

    def _loaded(self, generation: int, filters: Filters, rows: list[HistoryRow], truncated: bool,
                order: tuple[int, bool] = (TIME, True)) -> None:
        if generation != self._generation:
            return
        self.show_button.setEnabled(True)
        self._shown_filters = filters
        if self._sort_order() != order:  # a column heading was clicked while they were read
            sort_rows(rows, *self._sort_order())
        self.model.set_rows(rows)
        self.count_line.setText(self._count_text(filters, len(rows), truncated))
        self.export_button.setEnabled(bool(rows))
        self.loaded.emit(rows)

    def _count_text(self, filters: Filters, count: int, truncated: bool) -> str:
        if truncated:
            return (f"Showing the newest {LIMIT:,} matching entries; older ones are not listed. Narrow the filters "
                    "(dates, user, patient) to see them. Export includes them all.")
        if count == 0:
            others = any(v is not None for v in (filters.user, filters.patient_nhs_number, filters.practice_id,
                                                  filters.since, filters.until, filters.action))
            if filters.flagged and not others:
                return "No accesses are flagged for review."
            return "No entries match these filters." if others or filters.flagged \
                else "The audit journal has no entries yet."
        noun = "flagged " if filters.flagged else ""
        return f"1 {noun}entry" if count == 1 else f"{count:,} {noun}entries"

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
