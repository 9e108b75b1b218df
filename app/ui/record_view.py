"""One patient's record in a tab: loading, then banner + sections, or the error with a Retry button."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
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
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.display import display_name, format_partial_date
from app.core.model import SECTION_TITLES, Entry, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.ui.patient_banner import PatientBanner

Key = tuple[str, str]
Index = QModelIndex | QPersistentModelIndex

NOT_PROVIDED = "Not provided by this practice's system"
NONE_RECORDED = "None recorded"
MAX_TABLE_ROWS = 14  # longer sections scroll inside their table rather than push the rest far away
WRAP_ROWS_UP_TO = 300  # sizing rows to wrapped text costs time; very long sections elide instead


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


class EntriesModel(QAbstractTableModel):
    """A section's entries, most recent first (undated last): date, description, status, detail."""

    HEADERS = ("Date", "Description", "Status", "Detail")

    def __init__(self, entries: tuple[Entry, ...], parent=None) -> None:
        super().__init__(parent)
        ordered = sorted(entries, key=lambda e: e.when or "", reverse=True)
        self.rows = [(format_partial_date(e.when), e.text, e.status or "", e.detail or "") for e in ordered]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                    Qt.ItemDataRole.AccessibleTextRole):
            return self.rows[index.row()][index.column()] or None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None


class FitTable(QTableView):
    """As tall as its rows (up to MAX_TABLE_ROWS), measured after the style sheet has applied."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.verticalHeader().sectionResized.connect(lambda *_: self.updateGeometry())

    def row_count(self) -> int:
        model = self.model()
        return model.rowCount() if model is not None else 0

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        hint = super().sizeHint()
        rows = sum(self.rowHeight(r) for r in range(min(self.row_count(), MAX_TABLE_ROWS)))
        header = self.horizontalHeader().sizeHint().height()
        scrollbar = self.horizontalScrollBar().sizeHint().height() if self.horizontalScrollBar().isVisible() else 0
        return QSize(hint.width(), header + rows + 2 * self.frameWidth() + scrollbar + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, self.sizeHint().height())


def _entries_table(title: str, entries: tuple[Entry, ...]) -> FitTable:
    table = FitTable()
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
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
    wrap = len(entries) <= WRAP_ROWS_UP_TO  # wrap long descriptions rather than cut them off
    table.setWordWrap(wrap)
    if wrap:
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if len(entries) <= MAX_TABLE_ROWS:
        table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return table


class RecordView(QWidget):
    """The content of one record tab. Shows nothing of the record until it has arrived."""

    retry_requested = Signal(object)  # the view itself

    def __init__(self, patient: PatientSummary, practice: Practice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.patient = patient
        self.practice = practice
        self.key: Key = (patient.practice_id, patient.local_id)
        self.record: PatientRecord | None = None
        self.state = "loading"
        self.error: str | None = None
        self.banner: PatientBanner | None = None
        self.sections: dict[SectionName, SectionBlock] = {}
        self.setAccessibleName(self.title())
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self.show_loading()

    def title(self) -> str:
        return f"{display_name(self.patient)} · {self.practice.name}"

    def _clear(self) -> None:
        self.banner = None
        self.sections = {}
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

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
        self._clear()
        self.state = "loaded"
        self.record = record
        self.error = None
        self.patient = record.patient
        self.banner = PatientBanner(record.patient, self.practice, record.retrieved_at)
        self._layout.addWidget(self.banner)
        if record.warnings:
            self._layout.addWidget(_warnings(record.warnings))

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setAccessibleName(f"Record of {display_name(record.patient)}")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        body = QWidget()
        body.setObjectName("centralArea")
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(10, 10, 10, 10)
        body_layout.setSpacing(10)
        for name in SECTION_TITLES:
            section = record.sections.get(name) or Section.failed(name, "the practice's system sent nothing "
                                                                         "for this section")
            block = SectionBlock(section, self.practice)
            self.sections[name] = block
            body_layout.addWidget(block)
        body_layout.addStretch(1)
        scroll.setWidget(body)
        self._layout.addWidget(scroll, 1)


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
