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

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap, QStandardItem, QStandardItemModel

from app.core.display import display_name, format_date, format_patient_nhs_number, format_sex
from app.core.model import PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.search import PatientGroup
from app.ui import style
from app.ui.result_cells import age_cell, age_sort_key, born_sort_key, name_sort_key, text_sort_key

COLUMNS = ("Practice", "Name", "Date of birth", "Age", "NHS number", "Postcode", "Sex")
PRACTICE_COLUMN, NAME_COLUMN, BORN_COLUMN, AGE_COLUMN, NUMBER_COLUMN, POSTCODE_COLUMN, SEX_COLUMN = range(7)
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2
GROUP_SIZE_ROLE = Qt.ItemDataRole.UserRole + 3
RESTRICTION_ROLE = Qt.ItemDataRole.UserRole + 4  # the access policy's mark on a registration, e.g. restricted
SORT_ROLE = Qt.ItemDataRole.UserRole + 5  # what a column sorts by when its heading is clicked (a string)
NHS_NUMBER_ROLE = Qt.ItemDataRole.UserRole + 6  # a row's NHS number (column 0 only), for Open at every practice
ADDRESS_WITHHELD = "Withheld"

@dataclass(frozen=True)
class AccessMark:
    """What the access policy says about opening a result, shown after the name before anyone opens it."""

    text: str  # "Restricted — break-glass"
    why: str  # the tooltip: what opening it will ask for
    severe: bool = True  # red (restricted) or dark amber (a reason and a review flag)
    #: the core withheld where the patient lives (a restricted record): the row says "Withheld", never blank
    withholds_address: bool = False


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
_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_DECORATION = Qt.ItemDataRole.DecorationRole


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
    """Grows as practices answer; cleared by a new search.

    Cells are written through the model's index API only (insertRows, setItemData): Qt makes each item
    itself as a copy of the prototype, and Python never holds a QStandardItem. Qt frees items it removes
    without telling Python, so a kept wrapper would stay registered at that address and be handed out
    for whatever Qt puts there next (seen as "QStandardItem has no attribute setShortcut" and as
    "QStandardItem.sizeHint() takes no arguments"). Rows are remembered by persistent index.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        prototype = QStandardItem()  # made in Python, so Qt tells Python when it frees it
        prototype.setFlags(_FLAGS)
        self.setItemPrototype(prototype)
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
        self._group_rows: dict[str, QPersistentModelIndex] = {}  # NHS number -> its person's row
        self._rows: dict[Any, QPersistentModelIndex] = {}  # row key -> its column-0 cell, for index_of
        self._sampled: set[tuple[Any, ...]] = set()

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
                if number in self._group_rows:
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

        expand: list[QPersistentModelIndex] = []
        touched: list[QPersistentModelIndex] = []  # column-0 cells of new or changed rows
        for number, extra in grown.items():
            self._grow(number, extra, expand, touched)
        if fresh:
            self._insert_groups(fresh, expand, touched)
        return Added([_plain(kept) for kept in expand if kept.isValid()], self._samples(touched))

    def _grow(self, number: str, extra: list[PatientSummary], expand: list[QPersistentModelIndex],
              touched: list[QPersistentModelIndex]) -> None:
        """A later answer holds an NHS number already listed: its registrations join that person's row."""
        row = self._group_rows[number].row()
        old = self.groups[row]
        group = PatientGroup(old.nhs_number, old.members + tuple(extra))
        self.groups[row] = group
        top = self.index(row, 0)
        if self.hasChildren(top):  # already a group: it says how many, and lists the new registrations
            self._fill_group(row, QModelIndex(), group)
            new_members = extra
        else:  # one registration until now: the row becomes the person's, over one row per registration
            self.removeRow(row)
            self._insert_group_row(row, group)
            top = self.index(row, 0)
            self._group_rows[number] = self._rows[("group", number)] = QPersistentModelIndex(top)
            expand.append(QPersistentModelIndex(top))
            new_members = list(group.members)
        touched.append(QPersistentModelIndex(top))
        touched.extend(self._append_children(top, new_members))

    def _insert_groups(self, fresh: list[list[PatientSummary]], expand: list[QPersistentModelIndex],
                       touched: list[QPersistentModelIndex]) -> None:
        """Insert new people at their sorted places (after anyone already listed with the same key)."""
        items = []
        for members in fresh:
            group = PatientGroup(members[0].nhs_number or None, tuple(members))
            items.append((_group_sort_key(group), group))
        items.sort(key=lambda item: item[0])  # stable: equal keys stay in order of arrival
        placed = [(bisect_right(self._keys, key), key, group) for key, group in items]
        for at, key, group in reversed(placed):  # bottom up, so the positions worked out above stay right
            self.groups.insert(at, group)
            self._keys.insert(at, key)
            if len(group.members) == 1:
                member = group.members[0]
                self.insertRow(at)
                self._fill_patient(at, QModelIndex(), member)
                top = QPersistentModelIndex(self.index(at, 0))
                self._remember((member.practice_id, member.local_id), top)
            else:
                self._insert_group_row(at, group)
                top = QPersistentModelIndex(self.index(at, 0))
                touched.extend(self._append_children(_plain(top), list(group.members)))
                self._remember(("group", group.nhs_number or ""), top)
                expand.append(top)
            if group.nhs_number:
                self._group_rows[group.nhs_number] = top
            touched.append(top)

    def _insert_group_row(self, row: int, group: PatientGroup) -> None:
        self.insertRow(row)
        for column in range(len(COLUMNS)):
            self.setData(self.index(row, column), self._bold, _FONT)
        self._fill_group(row, QModelIndex(), group)

    def _append_children(self, top: QModelIndex, members: list[PatientSummary]) -> list[QPersistentModelIndex]:
        """One child row per registration under a person's row; their column-0 cells."""
        parent = QPersistentModelIndex(top)
        first = self.rowCount(top)
        if self.columnCount(top) < len(COLUMNS):
            self.insertColumns(0, len(COLUMNS) - self.columnCount(top), top)
        self.insertRows(first, len(members), top)
        cells = []
        for offset, member in enumerate(members):
            here = _plain(parent)
            self._fill_patient(first + offset, here, member)
            cell = QPersistentModelIndex(self.index(first + offset, 0, here))
            self._remember((member.practice_id, member.local_id), cell)
            cells.append(cell)
        return cells

    def _remember(self, key: Any, cell: QPersistentModelIndex) -> None:
        """The row a key opens: the first one listed, unless that row has since been replaced."""
        kept = self._rows.get(key)
        if kept is None or not kept.isValid():
            self._rows[key] = cell

    def _samples(self, touched: list[QPersistentModelIndex]) -> list[QModelIndex]:
        """One index for each kind of row not seen before in this search (what column 0 shows there)."""
        samples = []
        for kept in touched:
            index = _plain(kept)
            if not index.isValid():
                continue
            kind = (index.parent().isValid(), index.data(PATIENT_ROLE) is None, index.data(),
                    index.data(GROUP_SIZE_ROLE))
            if kind not in self._sampled:
                self._sampled.add(kind)
                samples.append(index)
        return samples

    def person_count(self) -> int:
        return len(self.groups)

    def patient_at(self, index: Index) -> PatientSummary | None:
        """The registration a row stands for; None for a group's parent row."""
        if not index.isValid():
            return None
        patient = index.data(PATIENT_ROLE)
        return patient if isinstance(patient, PatientSummary) else None

    def index_of(self, key: Key) -> QModelIndex:
        kept = self._rows.get(key)
        return _plain(kept) if kept is not None and kept.isValid() else QModelIndex()

    # -- rows --------------------------------------------------------------------------------------

    def _fill_patient(self, row: int, parent: QModelIndex, patient: PatientSummary) -> None:
        """What a registration's row shows, written into the (new, empty) row `row` under `parent`."""
        practice = self._practices.get(patient.practice_id)
        name = practice.name if practice else patient.practice_id
        mark = self._access_check(patient) if self._access_check is not None else None
        shown_name = display_name(patient) + (f"  ·  {mark.text}" if mark else "")
        born = str(patient.birth_year or "") if patient.pseudonym else format_date(patient.birth_date)
        number = "Withheld" if patient.pseudonym else format_patient_nhs_number(patient)  # the column is narrow
        age, age_words = age_cell(patient)
        withheld = bool(mark and mark.withholds_address)
        postcode = ADDRESS_WITHHELD if withheld else _postcode(patient)
        texts = (name, shown_name, born, age, number, postcode, format_sex(patient.sex))
        tip = f"{display_name(patient)} at {name}. Press Enter or double-click to open the record."
        if patient.is_deceased:
            tip += f"\n{age_words}."
        if mark:
            tip += f"\n{mark.text}: {mark.why}"
        if withheld:
            tip += "\nWhere this patient lives is withheld: their record is restricted."
        shared: dict[int, Any] = {_TOOLTIP: tip, PATIENT_ROLE: patient,
                                  KEY_ROLE: (patient.practice_id, patient.local_id), GROUP_SIZE_ROLE: 1}
        cells = [{**shared, _DISPLAY: text, _ACCESSIBLE: text} for text in texts]
        cells[PRACTICE_COLUMN][NHS_NUMBER_ROLE] = patient.nhs_number or ""
        sort_keys = (text_sort_key(name), name_sort_key(patient), born_sort_key(patient), age_sort_key(patient),
                     patient.nhs_number or "~", text_sort_key("" if withheld else postcode), text_sort_key(texts[6]))
        for cell, key in zip(cells, sort_keys, strict=True):
            cell[SORT_ROLE] = key
        cells[AGE_COLUMN][_ACCESSIBLE] = age_words
        if practice:
            cells[PRACTICE_COLUMN][_DECORATION] = style.swatch_icon(practice.colour)
        if mark:
            cells[NAME_COLUMN][RESTRICTION_ROLE] = mark.text
            cells[NAME_COLUMN][_FOREGROUND] = QColor(style.ERROR if mark.severe else _AMBER_TEXT)
            cells[NAME_COLUMN][_FONT] = self._bold
        if patient.is_deceased:
            cells[AGE_COLUMN][_FONT] = self._bold
        if withheld:
            cells[POSTCODE_COLUMN][_FOREGROUND] = QColor(style.SECONDARY)
            cells[POSTCODE_COLUMN][_ACCESSIBLE] = "Address withheld: restricted record"
        if not patient.nhs_number:
            cells[NUMBER_COLUMN][_FOREGROUND] = QColor(style.SECONDARY)
        for column, roles in enumerate(cells):
            self.setItemData(self.index(row, column, parent), roles)

    def _fill_group(self, row: int, parent: QModelIndex, group: PatientGroup) -> None:
        """What a person's parent row shows (on a new row, or updated when the group grows)."""
        lead = group.members[0]
        colours = [self._practices[m.practice_id].colour for m in group.members
                   if m.practice_id in self._practices]
        differs = len({(m.family.upper(), m.given, m.birth_date) for m in group.members}) > 1
        name = display_name(lead) + ("  (details differ)" if differs else "")
        age, _ = age_cell(lead)
        texts = (f"Registered at {len(group.members)} practices", name, format_date(lead.birth_date), age,
                 format_nhs_number(group.nhs_number), "", format_sex(lead.sex))
        tip = (f"The same NHS number is registered at {len(group.members)} practices. Open each registration "
               "from the rows below, or all of them at once with Open at every practice.")
        if differs:
            tip += " The practices hold different names or dates of birth for this NHS number: check each."
        key = ("group", group.nhs_number or "")
        lead_practice = self._practices.get(lead.practice_id)
        sort_keys = (text_sort_key(lead_practice.name if lead_practice else lead.practice_id), name_sort_key(lead),
                     born_sort_key(lead), age_sort_key(lead), group.nhs_number or "~", "~", text_sort_key(texts[6]))
        for column, text in enumerate(texts):
            index = self.index(row, column, parent)
            for role, value in ((_DISPLAY, text), (_ACCESSIBLE, text), (_TOOLTIP, tip), (KEY_ROLE, key),
                                (GROUP_SIZE_ROLE, len(group.members)), (SORT_ROLE, sort_keys[column])):
                self.setData(index, value, role)
        self.setData(self.index(row, PRACTICE_COLUMN, parent), group.nhs_number or "", NHS_NUMBER_ROLE)
        self.setData(self.index(row, 0, parent), multi_swatch(colours), _DECORATION)
        self.setData(self.index(row, NAME_COLUMN, parent), QColor(style.ERROR) if differs else None, _FOREGROUND)


def _postcode(patient: PatientSummary) -> str:
    if patient.postcode:
        return patient.postcode
    return (patient.address.postcode or "") if patient.address is not None else ""


def _plain(kept: QPersistentModelIndex) -> QModelIndex:
    """The model index a persistent index stands for now (invalid once its row is gone)."""
    return QModelIndex(kept)  # type: ignore[call-overload]  # PySide6's stubs omit this overload


def _group_sort_key(group: PatientGroup) -> tuple[str, str, str]:
    lead = group.members[0]
    born = lead.birth_date.isoformat() if lead.birth_date else ""
    return (lead.family.upper(), " ".join(lead.given).upper(), born)


class SortedResults(QSortFilterProxyModel):
    """The results as the tree shows them: in the model's own order (family name, given names, date of birth)
    until a heading is clicked, then by that column (SORT_ROLE), both ways; each group's registrations stay
    under their person and are sorted among themselves. Qt sorts in C++: nothing here is called per row."""

    def __init__(self, source: ResultsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results = source
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)  # answers arriving later go to their sorted places

    @property
    def patients(self) -> list[PatientSummary]:
        return self.results.patients

    def person_count(self) -> int:
        return self.results.person_count()

    def patient_at(self, index: Index) -> PatientSummary | None:
        return self.results.patient_at(index)

    def index_of(self, key: Key) -> QModelIndex:
        """The row showing this registration (or ("group", NHS number): its person's row), as the tree has it."""
        return self.mapFromSource(self.results.index_of(key))

    def clear_results(self) -> None:
        self.results.clear_results()

    def group_number_at(self, index: QModelIndex) -> str | None:
        """The NHS number of the person registered at several practices whose row (or registration) this is."""
        if not index.isValid():
            return None
        top = index.siblingAtColumn(0)
        if top.parent().isValid():
            top = top.parent()
        number = top.data(NHS_NUMBER_ROLE)
        return number if number and (top.data(GROUP_SIZE_ROLE) or 0) > 1 else None
