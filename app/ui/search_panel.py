"""The search box, live NHS number check, results tree, and the per-practice results status area."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.core.model import PatientSummary, Practice
from app.core.nhs_number import normalise
from app.core.query import nhs_number_problem
from app.core.search import PracticeResults
from app.core.search_summary import SearchTally
from app.ui import style
from app.ui.gui_first import gui_busy
from app.ui.results_model import COLUMNS, AccessCheck, ResultsModel, SortedResults

PLACEHOLDER = "NHS number, name (family first) or date of birth"
TYPING_PAUSE_MS = 800
# Practices' answers that arrive close together are shown together: one update of the results at most
# every APPLY_INTERVAL_MS (the first answer of a search at once). A backlog is shown APPLY_ROWS_PER_PASS
# results (whole answers, at least one) per pass of the event loop, so the GUI thread never stalls on it.
APPLY_INTERVAL_MS = 50
APPLY_ROWS_PER_PASS = 20


class SearchBox(QLineEdit):
    """The query field; Down moves to the results so the keyboard path is search → arrow → Enter."""

    move_to_results = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Down:
            self.move_to_results.emit()
            return
        super().keyPressEvent(event)


class ResultsTree(QTreeView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._delegate = QStyledItemDelegate(self)  # owned here: `width_hint` asks it (see FitTable)
        self.setItemDelegate(self._delegate)
        self.setAccessibleName("Search results")
        self.setAccessibleDescription("Patients found at each practice. Press Enter to open a record.")
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setExpandsOnDoubleClick(False)
        self.setAllColumnsShowFocus(True)
        self.header().setAccessibleName("Search results columns")

    def width_hint(self, index: QModelIndex) -> int:
        """The width column 0 needs for this row, measured as resizeColumnToContents does, for one row."""
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        level = (1 if index.parent().isValid() else 0) + (1 if self.rootIsDecorated() else 0)
        return self._delegate.sizeHint(option, index).width() + level * self.indentation()


class SearchPanel(QWidget):
    """Shows one search at a time; the window feeds it each practice's answer as it arrives."""

    search_requested = Signal(str)
    open_requested = Signal(object)  # PatientSummary
    open_all_requested = Signal(str)  # an NHS number registered at several practices: open it at every one
    fold_toggled = Signal(bool)  # the "Search results (N)" toggle was clicked: True to fold the results away

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._practices: dict[str, Practice] = {}
        self._pending: list[str] = []
        self._tally = SearchTally()
        self._problems: list[tuple[str, str]] = []
        self._notes: list[tuple[str, str]] = []
        self._arrived: list[PracticeResults] = []  # answers not shown yet, in order of arrival
        self._applied_at = 0.0  # time.monotonic() of the last update of the results
        self._finishing: tuple[str | None, Callable[[], None] | None] | None = None  # finish() waiting for them
        self._last_error: str | None = ""  # differs from None, so the first call sets everything up
        self.folded = False  # the results folded away (a record is open): see set_folded
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)

        row = QHBoxLayout()
        row.setSpacing(8)
        self.label = QLabel("&Find a patient")
        self.label.setObjectName("heading")
        row.addWidget(self.label)
        self.box = SearchBox()
        self.box.setPlaceholderText(PLACEHOLDER)
        self.box.setAccessibleName("Find a patient")
        self.box.setAccessibleDescription(PLACEHOLDER + ". Press Enter to search every practice.")
        self.box.setToolTip(PLACEHOLDER + " (Ctrl+F). Press Enter to search every practice.")
        self.box.setClearButtonEnabled(True)
        for button in self.box.findChildren(QToolButton):  # the line edit's own clear button
            button.setAccessibleName("Clear the search box")
            button.setToolTip("Clear the search box")
        self.label.setBuddy(self.box)
        row.addWidget(self.box, 1)
        self.search_button = QPushButton("Search")
        self.search_button.setAccessibleName("Search every practice")
        self.search_button.setToolTip("Search every signed-in practice (Enter)")
        self.search_button.clicked.connect(self._submit)
        row.addWidget(self.search_button)
        layout.addLayout(row)
        self._search_row = row

        self.field_error = QLabel()
        self.field_error.setObjectName("fieldError")
        self.field_error.setAccessibleName("Search problem")
        self.field_error.setWordWrap(True)
        self.field_error.hide()
        layout.addWidget(self.field_error)

        summary_row = QHBoxLayout()
        summary_row.setSpacing(8)
        self.fold_button = QToolButton()
        self.fold_button.setObjectName("resultsToggle")
        self.fold_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.fold_button.setAutoRaise(True)
        self.fold_button.setStyleSheet(f"QToolButton {{ color: {style.BLUE}; font-weight: 600; }}")
        self.fold_button.clicked.connect(lambda: self.fold_toggled.emit(not self.folded))
        self.fold_button.hide()  # until there are results to fold
        summary_row.addWidget(self.fold_button, 0, Qt.AlignmentFlag.AlignTop)
        self.count_line = QLabel("Search for a patient by NHS number, name or date of birth.")
        self.count_line.setObjectName("countLine")
        self.count_line.setAccessibleName("Search summary")
        self.count_line.setWordWrap(True)
        summary_row.addWidget(self.count_line, 1)
        self.open_all_button = QPushButton("Open at every practice")
        self.open_all_button.setObjectName("secondaryButton")
        self.open_all_button.setAccessibleName("Open at every practice")
        self.open_all_button.setToolTip("Open this person's records from every practice they are registered at, "
                                        "in one view (the selected NHS number)")
        self.open_all_button.clicked.connect(self._open_all_current)
        self.open_all_button.hide()
        summary_row.addWidget(self.open_all_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(summary_row)

        self.results = ResultsModel(self)
        self.model = SortedResults(self.results, self)  # what the tree shows: sorted by the heading clicked
        self.tree = ResultsTree()
        self.tree.setModel(self.model)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for column, width in enumerate((230, 230, 110, 84, 120, 90, 80)):
            self.tree.setColumnWidth(column, width)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorClearable(True)  # a third click goes back to the list's own order
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        header.setToolTip("Click a heading to sort by it; click again to reverse, a third time for the list's "
                          "own order (name, then date of birth)")
        self.tree.setSortingEnabled(True)
        self.tree.activated.connect(self._activated)  # Enter, and double-click (or single, per style)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)
        self.tree.setMinimumHeight(140)
        layout.addWidget(self.tree, 1)

        # Practices that did not answer (and notes like "NHS number only"), named, never silently missing.
        self.status_area = QScrollArea()
        self.status_area.setWidgetResizable(True)
        self.status_area.setFrameShape(QFrame.Shape.NoFrame)
        self.status_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.status_area.setMaximumHeight(130)
        self.status_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.status_area.setAccessibleName("Results status")
        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        holder_layout.setSpacing(4)
        self.problems, self.problems_label = _status_frame("problems", "Practices without results")
        self.notes, self.notes_label = _status_frame("notes", "Search notes")
        holder_layout.addWidget(self.problems)
        holder_layout.addWidget(self.notes)
        self.status_area.setWidget(holder)
        self.status_area.hide()
        layout.addWidget(self.status_area)

        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(TYPING_PAUSE_MS)
        self._pause.timeout.connect(lambda: self.show_field_error(nhs_number_problem(self.box.text())))
        self.box.textChanged.connect(self._check_text)
        self.box.returnPressed.connect(self._submit)
        self.box.move_to_results.connect(self.focus_results)
        self._apply_timer = QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.timeout.connect(self._apply_arrived)
        self.show_field_error(None)
        self._update_fold_button()

    def add_to_search_row(self, widget: QWidget) -> None:
        """A widget at the end of the search row (the practices strip: one line of height saved)."""
        self._search_row.addWidget(widget)

    # -- folding away while a record is open -------------------------------------------------------------

    def set_folded(self, folded: bool) -> None:
        """Folded: only the search row and the "Search results (N)" toggle stay, so an open record gets the
        height; the results, their selection and the status lines are kept as they were."""
        self.folded = folded
        self.tree.setVisible(not folded)
        self.status_area.setVisible(not folded and bool(self._problems or self._notes))
        self._update_fold_button()
        self._update_open_all()

    def _update_fold_button(self) -> None:
        people = self.model.person_count()
        self.fold_button.setText(f"Search results ({people})")
        self.fold_button.setArrowType(Qt.ArrowType.RightArrow if self.folded else Qt.ArrowType.DownArrow)
        verb = "Show" if self.folded else "Hide"
        self.fold_button.setToolTip(f"{verb} the search results (Ctrl+F shows them and goes to the search box)")
        self.fold_button.setAccessibleName(f"{verb} search results, {people} "
                                           f"{'patient' if people == 1 else 'patients'}")

    # -- opening a person at every practice --------------------------------------------------------------

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_open_all()

    def _update_open_all(self) -> None:
        number = None if self.folded else self.model.group_number_at(self.tree.currentIndex())
        self.open_all_button.setVisible(number is not None)
        if number is not None:
            top = self.model.index_of(("group", number))
            count = self.model.rowCount(top)
            self.open_all_button.setText(f"Open at all {count} practices")
            self.open_all_button.setAccessibleName(f"Open at all {count} practices")

    def _open_all_current(self) -> None:
        number = self.model.group_number_at(self.tree.currentIndex())
        if number is not None:
            self.open_all_requested.emit(number)

    def _context_menu(self, position: QPoint) -> None:
        """Open (one registration, or the person at every practice) and Sort by: the keyboard's way to sort
        (the Menu key or Shift+F10), as clicking a heading is the mouse's."""
        index = self.tree.indexAt(position)
        menu = QMenu(self.tree)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        patient = self.model.patient_at(index) if index.isValid() else None
        if patient is not None:
            menu.addAction("&Open record", lambda: self.open_requested.emit(patient))
        number = self.model.group_number_at(index) if index.isValid() else None
        if number is not None:
            count = self.model.rowCount(self.model.index_of(("group", number)))
            menu.addAction(f"Open at &every practice ({count})", lambda: self.open_all_requested.emit(number))
        if self.model.rowCount():
            sort = menu.addMenu("&Sort by")
            header = self.tree.header()
            for column, title in enumerate(COLUMNS):
                reverse = header.sortIndicatorSection() == column \
                    and header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
                sort.addAction(f"{title}{' (reversed)' if reverse else ''}", partial(self.sort_by, column))
            sort.addAction("The list's own order (name, date of birth)", lambda: self.sort_by(-1))
        if menu.isEmpty():
            menu.deleteLater()
            return
        menu.popup(self.tree.viewport().mapToGlobal(position))

    def sort_by(self, column: int) -> None:
        """Sort by `column` (-1: the list's own order); by the column already sorted ascending: descending."""
        header = self.tree.header()
        again = header.sortIndicatorSection() == column and header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
        header.setSortIndicator(column, Qt.SortOrder.DescendingOrder if again else Qt.SortOrder.AscendingOrder)

    # -- input -------------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.box.selectAll()

    def focus_results(self) -> None:
        if self.model.rowCount() == 0:
            return
        if self.folded:
            self.fold_toggled.emit(False)
        self.tree.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self.tree.currentIndex().isValid():
            self.tree.setCurrentIndex(self.model.index(0, 0))

    def _check_text(self, text: str) -> None:
        """A wrong NHS number is flagged as it is typed; one still short of ten digits only after a pause,
        so the box does not turn red under every keystroke of a number being typed."""
        self._pause.stop()
        problem = nhs_number_problem(text)
        if problem and len(normalise(text.strip())) < 10:
            self.show_field_error(None)
            self._pause.start()
        else:
            self.show_field_error(problem)

    def show_field_error(self, message: str | None) -> None:
        """Red border and a message under the box; announced to screen readers."""
        if message == self._last_error:
            return
        self._last_error = message
        invalid = bool(message)
        self.box.setProperty("invalid", invalid)
        style.repolish(self.box)
        self.field_error.setText(message or "")
        self.field_error.setVisible(invalid)
        self.box.setAccessibleDescription(message if message else PLACEHOLDER)
        if message:
            _announce(self.field_error, message)

    def _submit(self) -> None:
        self.search_requested.emit(self.box.text())

    # -- results -----------------------------------------------------------------------------------

    def set_practices(self, practices: list[Practice]) -> None:
        self._practices = {p.id: p for p in practices}
        self.results.set_practices(practices)

    def set_access_check(self, check: AccessCheck | None) -> None:
        """How the access policy marks results (restricted patients); None without a policy."""
        self.results.set_access_check(check)

    def begin(self) -> None:
        """A new search: forget the previous one's results and status."""
        self._apply_timer.stop()
        self._arrived = []
        self._applied_at = 0.0
        self._finishing = None
        self.results.clear_results()
        self.fold_button.show()
        self._pending = list(self._practices)
        self._tally = SearchTally()
        self._problems = []
        self._notes = []
        self._refresh_status(finished=False)

    def add_result(self, result: PracticeResults) -> None:
        """One practice's answer. Shown with any others that arrive within APPLY_INTERVAL_MS."""
        self._arrived.append(result)
        if not self._apply_timer.isActive():
            since_ms = (time.monotonic() - self._applied_at) * 1000
            self._apply_timer.start(max(0, int(APPLY_INTERVAL_MS - since_ms)))

    def pending(self) -> list[str]:
        """Ids of the practices this search is still waiting for (whose answers are not shown yet)."""
        return list(self._pending)

    def finish(self, error: str | None = None, then: Callable[[], None] | None = None) -> None:
        """Every practice has answered (or the search failed with `error`). Once every answer is on
        screen, the summary says so and `then()` is called: at once, or after the last pass."""
        self._finishing = (error, then)
        if self._arrived:
            self._apply_timer.start(0)
        else:
            self._finish()

    def _finish(self) -> None:
        assert self._finishing is not None
        error, then = self._finishing
        self._finishing = None
        if error:
            for pid in self._pending:
                self._problems.append((pid, f"{self._name(pid)}: the search stopped before it answered "
                                            f"({error})."))
            self._pending = []
        self._refresh_status(finished=True)
        _announce(self.count_line, self.count_line.text())
        if then is not None:
            then()

    def _apply_arrived(self) -> None:
        """Show the answers that have arrived (up to APPLY_ROWS_PER_PASS results): their rows, the count
        and the status lines, in one go. The rest follow in the next pass."""
        with gui_busy():  # rows to lay out and paint: the core's loop waits its turn (app/ui/gui_first.py)
            self._apply_some_arrived()

    def _apply_some_arrived(self) -> None:
        self._apply_timer.stop()
        taken = rows = 0
        for result in self._arrived:
            if taken and rows + len(result.patients) > APPLY_ROWS_PER_PASS:
                break
            taken += 1
            rows += len(result.patients)
        arrived, self._arrived = self._arrived[:taken], self._arrived[taken:]
        if arrived:
            self._applied_at = time.monotonic()
            patients: list[PatientSummary] = []
            for result in arrived:
                if result.practice_id in self._pending:
                    self._pending.remove(result.practice_id)
                name = self._name(result.practice_id)
                self._tally.add(result, name)
                if result.error:
                    self._problems.append((result.practice_id, _prefixed(name, result.error)))
                elif result.refused_by_policy or result.unsupported:  # named, not counted as having answered
                    self._notes.append((result.practice_id, _prefixed(name, result.note or "")))
                else:
                    if result.note:
                        self._notes.append((result.practice_id, _prefixed(name, result.note)))
                    if result.unreadable_text:  # some of its answer is missing: named, never dropped silently
                        self._notes.append((result.practice_id, result.unreadable_text + "."))
                    patients.extend(result.patients)
            if patients:
                self._add_patients(patients)
        if self._arrived:
            self._refresh_status(finished=False)
            self._apply_timer.start(0)
        elif self._finishing is not None:
            self._finish()
        elif arrived:
            self._refresh_status(finished=False)

    def _add_patients(self, patients: list[PatientSummary]) -> None:
        current = self.model.patient_at(self.tree.currentIndex())
        added = self.results.add_patients(patients)
        for index in added.expand:  # new groups open; a group someone has closed stays closed
            self.tree.expand(self.model.mapFromSource(index))
        if added.samples:  # column 0 grows to fit (never shrinks), measured on one row of each kind
            width = max(self.tree.width_hint(index) for index in added.samples)
            width = max(width, self.tree.header().sectionSizeHint(0))
            if width > self.tree.columnWidth(0):
                self.tree.setColumnWidth(0, width)
        if current is not None:
            index = self.model.index_of((current.practice_id, current.local_id))
            if index.isValid() and index != self.tree.currentIndex():
                self.tree.setCurrentIndex(index)

    def _refresh_status(self, finished: bool) -> None:
        total = len(self._practices)
        people = self.model.person_count()
        if finished:
            text = self._tally.summary(people, total)
        else:
            noun = "patient" if people == 1 else "patients"
            waiting = ", ".join(self._name(pid) for pid in self._pending)
            text = f"Searching {total} {'practice' if total == 1 else 'practices'}… {people} {noun} so far"
            if waiting:
                text += f" · waiting for {waiting}"
        self.count_line.setText(text)
        self._show_lines(self.problems, self.problems_label, self._problems)
        self._show_lines(self.notes, self.notes_label, self._notes)
        self._update_fold_button()
        self._update_open_all()

    def _show_lines(self, frame: QFrame, label: QLabel, lines: list[tuple[str, str]]) -> None:
        frame.setVisible(bool(lines))
        self.status_area.setVisible(not self.folded and bool(self._problems or self._notes))
        html = "<br>".join(
            f"<span style='color:{self._colour(pid)}'>■</span> {_escape(text)}" for pid, text in lines)
        label.setText(html)
        label.setToolTip("\n".join(text for _, text in lines))
        label.setAccessibleDescription("; ".join(text for _, text in lines))

    def _activated(self, index: QModelIndex) -> None:
        patient = self.model.patient_at(index)
        if patient is not None:
            self.open_requested.emit(patient)
        else:
            first = index.siblingAtColumn(0)
            self.tree.setExpanded(first, not self.tree.isExpanded(first))

    def _name(self, practice_id: str) -> str:
        practice = self._practices.get(practice_id)
        return practice.name if practice else practice_id

    def _colour(self, practice_id: str) -> str:
        practice = self._practices.get(practice_id)
        return practice.colour if practice else style.SECONDARY


def _prefixed(name: str, message: str) -> str:
    """'Oakwood Surgery: did not answer…' — name the practice once, whether or not the message does."""
    message = message.replace(f": {name}: ", ": ")  # "X was not searched: X: why" reads as a stutter
    return message if name.lower() in message.lower() else f"{name}: {message}"


def _status_frame(object_name: str, accessible: str) -> tuple[QFrame, QLabel]:
    frame = QFrame()
    frame.setObjectName(object_name)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(10, 6, 8, 6)
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(accessible)
    layout.addWidget(label)
    frame.hide()
    return frame, label


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _announce(widget: QWidget, message: str) -> None:
    """Tell screen readers about a change they would otherwise miss."""
    if message and QAccessible.isActive():
        QAccessible.updateAccessibility(QAccessibleAnnouncementEvent(widget, message))
