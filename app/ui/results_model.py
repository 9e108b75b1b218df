"""Search results as a two-level tree: one row per person; a person registered at several practices is a
parent row ("Registered at 2 practices") with one child row per registration.

A plain QAbstractItemModel over Python data: the view asks for what it paints, so a search with
hundreds of results costs no per-cell Qt calls (and no per-cell objects) when it is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from app.core.display import display_name, format_date, format_sex
from app.core.model import PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.search import PatientGroup, group_by_person
from app.ui import style

COLUMNS = ("Practice", "Name", "Date of birth", "NHS number", "Postcode", "Sex")
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2
GROUP_SIZE_ROLE = Qt.ItemDataRole.UserRole + 3

Key = tuple[str, str]  # (practice id, practice-local patient id)
Index = QModelIndex | QPersistentModelIndex
_TOP = 0  # internal id of top-level rows; a child's internal id is its parent's row + 1


def multi_swatch(colours: list[str], size: int = 14) -> QIcon:
    """Overlapping swatches, one per practice, marking a person registered at several practices."""
    step = size // 2
    width = size + step * (len(colours) - 1)
    pixmap = QPixmap(width, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    for i, colour in enumerate(reversed(colours)):
        painter.drawPixmap((len(colours) - 1 - i) * step, 0, style.swatch_pixmap(colour, size))
    painter.end()
    return QIcon(pixmap)


@dataclass
class _Row:
    """What one row shows, worked out once when the results change."""

    texts: tuple[str, ...]
    icon: QIcon | None
    tooltip: str
    patient: PatientSummary | None  # None for a group's parent row
    key: Any
    group_size: int = 1
    differs: bool = False


class ResultsModel(QAbstractItemModel):
    """Rebuilt from all results so far each time a practice answers (result sets are small)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._practices: dict[str, Practice] = {}
        self._patients: list[PatientSummary] = []
        self.groups: list[PatientGroup] = []
        self._rows: list[_Row] = []
        self._children: list[list[_Row]] = []
        self._bold = QFont()
        self._bold.setBold(True)

    # -- content -----------------------------------------------------------------------------------

    @property
    def patients(self) -> list[PatientSummary]:
        return list(self._patients)

    def set_practices(self, practices: list[Practice]) -> None:
        self._practices = {p.id: p for p in practices}

    def clear_results(self) -> None:
        self._patients = []
        self._rebuild()

    def add_patients(self, patients: list[PatientSummary] | tuple[PatientSummary, ...]) -> None:
        self._patients.extend(patients)
        self._rebuild()

    def person_count(self) -> int:
        return len(self.groups)

    def patient_at(self, index: Index) -> PatientSummary | None:
        """The registration a row stands for; None for a group's parent row."""
        row = self._row(index)
        return row.patient if row is not None else None

    def index_of(self, key: Key) -> QModelIndex:
        for r, row in enumerate(self._rows):
            if row.key == key:
                return self.createIndex(r, 0, _TOP)
            for c, child in enumerate(self._children[r]):
                if child.key == key:
                    return self.createIndex(c, 0, r + 1)
        return QModelIndex()

    def _rebuild(self) -> None:
        self.beginResetModel()
        self.groups = sorted(group_by_person(self._patients), key=_group_sort_key)
        self._rows, self._children = [], []
        for group in self.groups:
            if len(group.members) == 1:
                self._rows.append(self._patient_row(group.members[0]))
                self._children.append([])
            else:
                self._rows.append(self._group_row(group))
                self._children.append([self._patient_row(m) for m in group.members])
        self.endResetModel()

    def _patient_row(self, patient: PatientSummary) -> _Row:
        practice = self._practices.get(patient.practice_id)
        name = practice.name if practice else patient.practice_id
        texts = (name, display_name(patient), format_date(patient.birth_date),
                 format_nhs_number(patient.nhs_number) or "Not recorded", patient.postcode or "",
                 format_sex(patient.sex))
        tip = f"{display_name(patient)} at {name}. Press Enter or double-click to open the record."
        icon = style.swatch_icon(practice.colour) if practice else None
        return _Row(texts, icon, tip, patient, (patient.practice_id, patient.local_id))

    def _group_row(self, group: PatientGroup) -> _Row:
        lead = group.members[0]
        colours = [self._practices[m.practice_id].colour for m in group.members
                   if m.practice_id in self._practices]
        differs = len({(m.family.upper(), m.given, m.birth_date) for m in group.members}) > 1
        name = display_name(lead) + ("  (details differ)" if differs else "")
        texts = (f"Registered at {len(group.members)} practices", name, format_date(lead.birth_date),
                 format_nhs_number(group.nhs_number), "", format_sex(lead.sex))
        tip = (f"The same NHS number is registered at {len(group.members)} practices. "
               "Open each registration from the rows below.")
        if differs:
            tip += " The practices hold different names or dates of birth for this NHS number: check each."
        return _Row(texts, multi_swatch(colours), tip, None, ("group", group.nhs_number or ""),
                    len(group.members), differs)

    # -- QAbstractItemModel ------------------------------------------------------------------------

    def _row(self, index: Index) -> _Row | None:
        if not index.isValid():
            return None
        parent = index.internalId()
        if parent == _TOP:
            return self._rows[index.row()] if index.row() < len(self._rows) else None
        children = self._children[parent - 1] if parent - 1 < len(self._children) else []
        return children[index.row()] if index.row() < len(children) else None

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, _TOP)
        return self.createIndex(row, column, parent.row() + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == _TOP:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, _TOP)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        if not parent.isValid():
            return len(self._rows)
        if parent.internalId() == _TOP and parent.column() == 0 and parent.row() < len(self._children):
            return len(self._children[parent.row()])
        return 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return len(COLUMNS)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self._row(index)
        if row is None:
            return None
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return row.texts[column]
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return row.icon
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tooltip
        if role == Qt.ItemDataRole.FontRole and row.patient is None:
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.patient is None and row.differs and column == 1:
                return QColor(style.ERROR)
            if row.patient is not None and column == 3 and not row.patient.nhs_number:
                return QColor(style.SECONDARY)
            return None
        if role == PATIENT_ROLE:
            return row.patient
        if role == KEY_ROLE:
            return row.key
        if role == GROUP_SIZE_ROLE:
            return row.group_size
        return None


def _group_sort_key(group: PatientGroup) -> tuple[str, str, str]:
    lead = group.members[0]
    born = lead.birth_date.isoformat() if lead.birth_date else ""
    return (lead.family.upper(), " ".join(lead.given).upper(), born)
