"""Search results as a two-level tree: one row per person; a person registered at several practices is a
parent row ("Registered at 2 practices") with one child row per registration.

The rows live in a QStandardItemModel, so the view paints them without calling back into Python: the
core's thread works in Python while practices answer, and a view that asked a Python model for every
cell it paints would wait for the interpreter lock over and over, right when results arrive. Each
practice's answer is merged in: new people are inserted at their place in the sorted list, a later
practice holding an NHS number already listed adds child rows under it, and nothing already shown is
built again, so the cost of an answer is the cost of its own rows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap, QStandardItem, QStandardItemModel

from app.core.display import display_name, format_date, format_patient_nhs_number, format_sex
from app.core.model import PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.search import PatientGroup
from app.ui import style

COLUMNS = ("Practice", "Name", "Date of birth", "NHS number", "Postcode", "Sex")
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2
GROUP_SIZE_ROLE = Qt.ItemDataRole.UserRole + 3
RESTRICTION_ROLE = Qt.ItemDataRole.UserRole + 4  # the access policy's mark on a registration, e.g. restricted

@dataclass(frozen=True)
class AccessMark:
    """What the access policy says about opening a result, shown after the name before anyone opens it."""

    text: str  # "Restricted — break-glass"
    why: str  # the tooltip: what opening it will ask for
    severe: bool = True  # red (restricted) or dark amber (a reason and a review flag)


#: the access policy's mark on a result, or None
AccessCheck = Callable[[PatientSummary], AccessMark | None]

Key = tuple[str, str]  # (practice id, practice-local patient id)
Index = QModelIndex | QPersistentModelIndex
SortKey = tuple[str, str, str]
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_AMBER_TEXT = "#8a4b00"  # amber legible on white (WCAG AA), for a mark that asks for a reason
_ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole
_FONT = Qt.ItemDataRole.FontRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole


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


class Added(NamedTuple):
    """What one `add_patients` call changed, for the view."""

    expand: list[QModelIndex]  # groups that have just become groups (new, or a single row that grew)
    samples: list[QModelIndex]  # a row of each kind not seen before in this search, to size column 0


class ResultsModel(QStandardItemModel):
    """Grows as practices answer; cleared by a new search."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self._practices: dict[str, Practice] = {}
        self._access_check: AccessCheck | None = None
        self._bold = QFont()
        self._bold.setBold(True)
        self._reset_state()

    def _reset_state(self) -> None:
        self._patients: list[PatientSummary] = []
        self.groups: list[PatientGroup] = []  # sorted; one per top-level row
        self._keys: list[SortKey] = []  # each group's sort key, parallel to the rows (kept sorted)
        # Rows are remembered by persistent index, never by QStandardItem: Qt deletes items it removes
        # without telling Python, and a kept wrapper would later be handed out for whatever new object
        # Qt puts at the same address (seen as "QStandardItem has no attribute setShortcut").
        self._group_items: dict[str, QPersistentModelIndex] = {}  # NHS number -> its person's row
        self._items: dict[Any, QPersistentModelIndex] = {}  # row key -> its column-0 cell, for index_of
        self._sampled: set[tuple] = set()

    # -- content -----------------------------------------------------------------------------------

    @property
    def patients(self) -> list[PatientSummary]:
        return list(self._patients)

    def set_practices(self, practices: list[Practice]) -> None:
        self._practices = {p.id: p for p in practices}

    def set_access_check(self, check: AccessCheck | None) -> None:
        """Results added from now on are marked as `check` says (None: no access policy, no marks)."""
        self._access_check = check

    def clear_results(self) -> None:
        self.removeRows(0, self.rowCount())
        self._reset_state()

    def add_patients(self, patients: list[PatientSummary] | tuple[PatientSummary, ...]) -> Added:
        """Merge more results in (one or several practices' answers, in arrival order).

        The rows end up exactly as if every result so far had been grouped and sorted afresh: people
        sorted by family name, given names and date of birth (ties in order of first arrival), and the
        registrations of one NHS number under one parent row, in order of arrival.
        """
        self._patients.extend(patients)
        grown: dict[str, list[PatientSummary]] = {}  # NHS number already listed -> its new registrations
        fresh: list[list[PatientSummary]] = []  # new people, in order of first arrival
        fresh_of_number: dict[str, list[PatientSummary]] = {}
        for patient in patients:
            number = patient.nhs_number
            if number:
                if number in self._group_items:
                    grown.setdefault(number, []).append(patient)
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

        expand: list[QStandardItem] = []
        touched: list[QStandardItem] = []  # column-0 items of new or changed rows
        for number, extra in grown.items():
            self._grow(number, extra, expand, touched)
        if fresh:
            self._insert_groups(fresh, expand, touched)
        return Added([self.indexFromItem(item) for item in expand], self._samples(touched))

    def _grow(self, number: str, extra: list[PatientSummary], expand: list[QStandardItem],
              touched: list[QStandardItem]) -> None:
        """A later answer holds an NHS number already listed: its registrations join that person's row."""
        top = self.itemFromIndex(QModelIndex(self._group_items[number]))
        row = top.row()
        old = self.groups[row]
        group = PatientGroup(old.nhs_number, old.members + tuple(extra))
        self.groups[row] = group
        if top.hasChildren():  # already a group: it says how many, and lists the new registrations
            self._fill_group([self.item(row, c) for c in range(len(COLUMNS))], group)
            new_members = extra
        else:  # one registration until now: the row becomes the person's, over one row per registration
            items = self._group_items_for(group)
            self.removeRow(row)
            self.insertRow(row, items)
            top = items[0]
            self._group_items[number] = self._items[("group", number)] = QPersistentModelIndex(top.index())
            expand.append(top)
            new_members = list(group.members)
        touched.append(top)
        for member in new_members:
            child = self._patient_items(member)
            top.appendRow(child)
            self._items[(member.practice_id, member.local_id)] = QPersistentModelIndex(child[0].index())
            touched.append(child[0])

    def _insert_groups(self, fresh: list[list[PatientSummary]], expand: list[QStandardItem],
                       touched: list[QStandardItem]) -> None:
        """Insert new people at their sorted places (after anyone already listed with the same key)."""
        items = []
        for members in fresh:
            group = PatientGroup(members[0].nhs_number or None, tuple(members))
            items.append((_group_sort_key(group), group))
        items.sort(key=lambda item: item[0])  # stable: equal keys stay in order of arrival
        placed = [(bisect_right(self._keys, key), key, group) for key, group in items]
        for at, key, group in reversed(placed):  # bottom up, so the positions worked out above stay right
            keyed: list[tuple[Any, QStandardItem]] = []
            if len(group.members) == 1:
                member = group.members[0]
                row = self._patient_items(member)
                keyed.append(((member.practice_id, member.local_id), row[0]))
            else:
                row = self._group_items_for(group)
                for member in group.members:
                    child = self._patient_items(member)
                    row[0].appendRow(child)
                    keyed.append(((member.practice_id, member.local_id), child[0]))
                    touched.append(child[0])
                keyed.append((("group", group.nhs_number or ""), row[0]))
                expand.append(row[0])
            self.groups.insert(at, group)
            self._keys.insert(at, key)
            self.insertRow(at, row)
            for row_key, item in keyed:  # indexes exist once the row is in the model
                self._items.setdefault(row_key, QPersistentModelIndex(item.index()))
            if group.nhs_number:
                self._group_items[group.nhs_number] = QPersistentModelIndex(row[0].index())
            touched.append(row[0])

    def _samples(self, touched: list[QStandardItem]) -> list[QModelIndex]:
        """One index for each kind of row not seen before in this search (what column 0 shows there)."""
        samples = []
        for item in touched:
            kind = (item.parent() is not None, item.data(PATIENT_ROLE) is None, item.text(),
                    item.data(GROUP_SIZE_ROLE))
            if kind not in self._sampled:
                self._sampled.add(kind)
                samples.append(self.indexFromItem(item))
        return samples

    def person_count(self) -> int:
        return len(self.groups)

    def patient_at(self, index: Index) -> PatientSummary | None:
        """The registration a row stands for; None for a group's parent row."""
        if not index.isValid():
            return None
        return index.data(PATIENT_ROLE)

    def index_of(self, key: Key) -> QModelIndex:
        kept = self._items.get(key)
        return QModelIndex(kept) if kept is not None and kept.isValid() else QModelIndex()

    # -- rows --------------------------------------------------------------------------------------

    def _patient_items(self, patient: PatientSummary) -> list[QStandardItem]:
        practice = self._practices.get(patient.practice_id)
        name = practice.name if practice else patient.practice_id
        mark = self._access_check(patient) if self._access_check is not None else None
        shown_name = display_name(patient) + (f"  ·  {mark.text}" if mark else "")
        born = str(patient.birth_year or "") if patient.pseudonym else format_date(patient.birth_date)
        number = "Withheld" if patient.pseudonym else format_patient_nhs_number(patient)  # the column is narrow
        texts = (name, shown_name, born, number, patient.postcode or "",
                 format_sex(patient.sex))
        tip = f"{display_name(patient)} at {name}. Press Enter or double-click to open the record."
        if mark:
            tip += f"\n{mark.text}: {mark.why}"
        items = _row_items(texts, tip, patient, (patient.practice_id, patient.local_id), 1)
        if practice:
            items[0].setIcon(style.swatch_icon(practice.colour))
        if mark:
            items[1].setData(mark.text, RESTRICTION_ROLE)
            items[1].setData(QColor(style.ERROR if mark.severe else _AMBER_TEXT), _FOREGROUND)
            items[1].setData(self._bold, _FONT)
        if not patient.nhs_number:
            items[3].setData(QColor(style.SECONDARY), _FOREGROUND)
        return items

    def _group_items_for(self, group: PatientGroup) -> list[QStandardItem]:
        items = [QStandardItem() for _ in COLUMNS]
        for item in items:
            item.setFlags(_FLAGS)
            item.setData(self._bold, _FONT)
        self._fill_group(items, group)
        return items

    def _fill_group(self, items: list[QStandardItem], group: PatientGroup) -> None:
        """What a person's parent row shows (set on new items, or updated when the group grows)."""
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
        key = ("group", group.nhs_number or "")
        for item, text in zip(items, texts, strict=True):
            item.setText(text)
            item.setData(text, _ACCESSIBLE)
            item.setToolTip(tip)
            item.setData(key, KEY_ROLE)
            item.setData(len(group.members), GROUP_SIZE_ROLE)
        items[0].setIcon(multi_swatch(colours))
        items[1].setData(QColor(style.ERROR) if differs else None, _FOREGROUND)


def _row_items(texts: tuple[str, ...], tip: str, patient: PatientSummary, key: Key, size: int) -> list[QStandardItem]:
    # What the cells of a row share is set once and cloned (one call to Qt per cell instead of six).
    shared = QStandardItem()
    shared.setFlags(_FLAGS)
    shared.setToolTip(tip)
    shared.setData(patient, PATIENT_ROLE)
    shared.setData(key, KEY_ROLE)
    shared.setData(size, GROUP_SIZE_ROLE)
    items = []
    for text in texts:
        item = shared.clone()
        item.setText(text)
        item.setData(text, _ACCESSIBLE)
        items.append(item)
    return items


def _group_sort_key(group: PatientGroup) -> tuple[str, str, str]:
    lead = group.members[0]
    born = lead.birth_date.isoformat() if lead.birth_date else ""
    return (lead.family.upper(), " ".join(lead.given).upper(), born)
