"""Search results as a two-level tree: one row per person; a person registered at several practices is a
parent row ("Registered at 2 practices") with one child row per registration.

A plain QAbstractItemModel over Python data: the view asks for what it paints, so a search with
hundreds of results costs no per-cell Qt calls (and no per-cell objects). Each practice's answer is
merged in: new people are inserted at their place in the sorted list (beginInsertRows), a later
practice holding an NHS number already listed adds child rows under it, and nothing already shown is
rebuilt, so the cost of an answer is the cost of its own rows.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, NamedTuple

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from app.core.display import display_name, format_date, format_sex
from app.core.model import PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.search import PatientGroup
from app.ui import style

COLUMNS = ("Practice", "Name", "Date of birth", "NHS number", "Postcode", "Sex")
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2
GROUP_SIZE_ROLE = Qt.ItemDataRole.UserRole + 3

Key = tuple[str, str]  # (practice id, practice-local patient id)
Index = QModelIndex | QPersistentModelIndex
SortKey = tuple[str, str, str]
# Internal id of top-level rows. A child's internal id is its group's uid (1, 2, …), which stays the same
# when rows are inserted above the group, so indexes held by the view (current, selected) stay right.
_TOP = 0


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


class Added(NamedTuple):
    """What one `add_patients` call changed, for the view."""

    expand: list[QModelIndex]  # groups that have just become groups (new, or a single row that grew)
    samples: list[QModelIndex]  # a row of each kind not seen before in this search, to size column 0


class ResultsModel(QAbstractItemModel):
    """Grows as practices answer; cleared by a new search."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._practices: dict[str, Practice] = {}
        self._bold = QFont()
        self._bold.setBold(True)
        self._reset_state()

    def _reset_state(self) -> None:
        self._patients: list[PatientSummary] = []
        self.groups: list[PatientGroup] = []  # sorted; one per top-level row
        self._rows: list[_Row] = []
        self._children: list[list[_Row]] = []
        self._keys: list[SortKey] = []  # each group's sort key, parallel to the rows (kept sorted)
        self._uids: list[int] = []  # each group's uid, parallel to the rows
        self._row_of: dict[int, int] = {}  # uid -> top-level row
        self._uid_of_number: dict[str, int] = {}
        self._next_uid = 1
        self._sampled: set[tuple] = set()

    # -- content -----------------------------------------------------------------------------------

    @property
    def patients(self) -> list[PatientSummary]:
        return list(self._patients)

    def set_practices(self, practices: list[Practice]) -> None:
        self._practices = {p.id: p for p in practices}

    def clear_results(self) -> None:
        self.beginResetModel()
        self._reset_state()
        self.endResetModel()

    def add_patients(self, patients: list[PatientSummary] | tuple[PatientSummary, ...]) -> Added:
        """Merge more results in (one or several practices' answers, in arrival order).

        The rows end up exactly as if every result so far had been grouped and sorted afresh: people
        sorted by family name, given names and date of birth (ties in order of first arrival), and the
        registrations of one NHS number under one parent row, in order of arrival.
        """
        self._patients.extend(patients)
        grown: dict[int, list[PatientSummary]] = {}  # uid of a listed group -> its new members
        fresh: list[list[PatientSummary]] = []  # new groups, in order of first arrival
        fresh_of_number: dict[str, list[PatientSummary]] = {}
        for patient in patients:
            number = patient.nhs_number
            if number:
                uid = self._uid_of_number.get(number)
                if uid is not None:
                    grown.setdefault(uid, []).append(patient)
                    continue
                members = fresh_of_number.get(number)
                if members is not None:
                    members.append(patient)
                    continue
                fresh_of_number[number] = members = []
                members.append(patient)
            else:
                members = [patient]
            fresh.append(members)

        expand: list[int] = []  # uids
        touched: list[tuple[int, int | None]] = []  # (uid, child row or None) of new or changed rows
        for uid, extra in grown.items():
            became_group = self._grow(uid, extra, touched)
            if became_group:
                expand.append(uid)
        if fresh:
            expand.extend(self._insert_groups(fresh, touched))
        return Added([self.createIndex(self._row_of[uid], 0, _TOP) for uid in expand],
                     self._samples(touched))

    def _grow(self, uid: int, extra: list[PatientSummary], touched: list[tuple[int, int | None]]) -> bool:
        """A later answer holds an NHS number already listed: its registrations join that person's row."""
        row = self._row_of[uid]
        old = self.groups[row]
        group = PatientGroup(old.nhs_number, old.members + tuple(extra))
        children = self._children[row]
        became_group = not children
        added = [self._patient_row(m) for m in (group.members if became_group else extra)]
        first = len(children)
        self.beginInsertRows(self.createIndex(row, 0, _TOP), first, first + len(added) - 1)
        children.extend(added)
        self.groups[row] = group
        self.endInsertRows()
        self._rows[row] = self._group_row(group)
        self.dataChanged.emit(self.createIndex(row, 0, _TOP), self.createIndex(row, len(COLUMNS) - 1, _TOP))
        touched.append((uid, None))
        touched.extend((uid, r) for r in range(first, first + len(added)))
        return became_group

    def _insert_groups(self, fresh: list[list[PatientSummary]], touched: list[tuple[int, int | None]]) -> list[int]:
        """Insert new people at their sorted places, one beginInsertRows per run of adjacent new rows."""
        items = []
        for members in fresh:
            group = PatientGroup(members[0].nhs_number or None, tuple(members))
            items.append((_group_sort_key(group), group))
        items.sort(key=lambda item: item[0])  # stable: equal keys stay in order of arrival
        runs: list[tuple[int, list[tuple[SortKey, PatientGroup]]]] = []
        for item in items:
            at = bisect_right(self._keys, item[0])  # after listed people with the same key (they came first)
            if runs and runs[-1][0] == at:
                runs[-1][1].append(item)
            else:
                runs.append((at, [item]))
        expand: list[int] = []
        for at, run in reversed(runs):  # from the bottom up, so the positions worked out above stay right
            uids, rows, children = [], [], []
            for _key, group in run:
                uid = self._next_uid
                self._next_uid += 1
                uids.append(uid)
                if group.nhs_number:
                    self._uid_of_number[group.nhs_number] = uid
                if len(group.members) == 1:
                    rows.append(self._patient_row(group.members[0]))
                    children.append([])
                    touched.append((uid, None))
                else:
                    rows.append(self._group_row(group))
                    children.append([self._patient_row(m) for m in group.members])
                    expand.append(uid)
                    touched.append((uid, None))
                    touched.extend((uid, r) for r in range(len(group.members)))
            self.beginInsertRows(QModelIndex(), at, at + len(run) - 1)
            self.groups[at:at] = [group for _key, group in run]
            self._keys[at:at] = [key for key, _group in run]
            self._rows[at:at] = rows
            self._children[at:at] = children
            self._uids[at:at] = uids
            for row in range(at, len(self._uids)):
                self._row_of[self._uids[row]] = row
            self.endInsertRows()
        return expand

    def _samples(self, touched: list[tuple[int, int | None]]) -> list[QModelIndex]:
        """One index for each kind of row not seen before in this search (what column 0 shows there)."""
        samples = []
        for uid, child in touched:
            row = self._row_of[uid]
            item = self._rows[row] if child is None else self._children[row][child]
            kind = (child is not None, item.patient is None, item.texts[0], item.group_size)
            if kind in self._sampled:
                continue
            self._sampled.add(kind)
            samples.append(self.createIndex(row, 0, _TOP) if child is None else self.createIndex(child, 0, uid))
        return samples

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
                    return self.createIndex(c, 0, self._uids[r])
        return QModelIndex()

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
        uid = index.internalId()
        if uid == _TOP:
            return self._rows[index.row()] if index.row() < len(self._rows) else None
        parent = self._row_of.get(uid)
        children = self._children[parent] if parent is not None else []
        return children[index.row()] if index.row() < len(children) else None

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, _TOP)
        return self.createIndex(row, column, self._uids[parent.row()])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == _TOP:
            return QModelIndex()
        row = self._row_of.get(index.internalId())
        return self.createIndex(row, 0, _TOP) if row is not None else QModelIndex()

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
