"""The "All practices" tab: one patient (by NHS number) from every practice they are registered at, in one timeline.

Opened from a results group's "Open at every practice" (MainWindow.open_all_practices). The reason for access is
asked once for the whole (the policy still decides per practice, in the core); each practice's record is opened
through the core's normal path (MosaicCore.open_all_practices: one journal entry per practice, committed before
anything is handed back). The tab shows, top to bottom:

- the patient banner, saying it is several practices ("Registered at: A, B") with the allergies of all of them;
- each practice's part: opened (with its registration), could not be opened, or refused by the policy, and why;
- the Differences a medicines reconciliation looks for (app/core/timeline.py), and the sections not compared;
- the timeline, newest first, each row marked with its practice's colour and name (an entry the same at several
  practices is one row naming them all), filterable by kind of entry and by practice.

The timeline and its rows are worked out on the core's thread; the GUI thread only builds widgets, in steps
(record_view.build_step), so no single step holds it long. The timeline is one table over Python data (a
QAbstractTableModel): rows of one line each, so a long history costs nothing to lay out.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QIcon, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from adapters.base import AdapterError
from app.core import nhs_number as nhs
from app.core.display import access_notes, display_name, format_date, format_datetime, format_partial_date
from app.core.model import SECTION_TITLES, Entry, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.core.policy import PolicyDecision, PolicyError
from app.ui import style
from app.ui.access_dialogs import ReasonDialog
from app.ui.error_box import error_box
from app.ui.loading_box import loading_box
from app.ui.patient_banner import PatientBanner
from app.ui.record_view import RecordView, build_step
from app.ui.results_model import multi_swatch

if TYPE_CHECKING:
    from app.core.all_practices import AllPractices, PracticeOpen
    from app.core.service import MosaicCore
    from app.core.timeline import Difference, PracticeMark, Timeline
    from app.ui.main_window import MainWindow

#: the practice id of an All practices tab's key (no practice has it: ids are letters, digits, "-" and "_")
ALL_PRACTICES_ID = "*all-practices*"
ALL_PRACTICES = Practice(ALL_PRACTICES_ID, "All practices", "", "", "", colour=style.DARK_BLUE)
STATUS_MS = 15000
EVERY_KIND = "Every kind of entry"
EVERY_PRACTICE = "Every practice"
_KIND_FILTERS = (SectionName.MEDICATIONS, SectionName.ALLERGIES, SectionName.PROBLEMS, SectionName.ENCOUNTERS,
                 SectionName.OBSERVATIONS, SectionName.IMMUNISATIONS)
_DIFFERENCE_WORDS = {"allergy": "Allergy", "medication": "Medication", "problem": "Problem",
                     "not-compared": "Not compared", "partial": "May be incomplete"}

_STYLE = (f"QFrame#practiceParts, QFrame#differences {{ background: {style.CARD}; border: 1px solid {style.BORDER}; }}"
          f"QLabel#differenceItem {{ border: none; border-left: 5px solid {style.BLUE}; padding: 2px 6px; }}"
          f"QLabel#differenceItem[kind=\"allergy\"] {{ border-left-color: {style.ERROR}; }}"
          f"QLabel#differenceItem[kind=\"not-compared\"], QLabel#differenceItem[kind=\"partial\"] "
          f"{{ background: {style.WARNING_BG}; "
          f"border-left-color: {style.WARNING_BORDER}; }}"
          f"QLabel#partStatus[status=\"failed\"], QLabel#partStatus[status=\"denied\"] {{ color: {style.ERROR}; "
          "font-weight: 600; }")


# --- what the core's thread prepares ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ShownRow:
    """One timeline row as the table shows it (worked out on the core's thread)."""

    date: str
    practices: str  # "Riverside Surgery", "Both practices"
    names: str  # every practice's name: "Riverside Surgery · Oakwood Medical Centre"
    practice_ids: tuple[str, ...]
    colours: tuple[str, ...]
    kind: str
    section: SectionName
    words: str


@dataclass(frozen=True)
class Prepared:
    """Everything the tab shows, ready for the GUI thread."""

    opened: AllPractices
    timeline: Timeline
    rows: tuple[ShownRow, ...]
    patient: PatientSummary | None
    combined: PatientRecord | None  # the banner's record: every practice's allergies
    difference_rows: tuple[frozenset[int], ...] = ()  # per difference: the timeline rows of its item


async def prepare(core: MosaicCore, number: str, reason: str | None) -> Prepared:
    """Open the patient at every practice (the core's normal path), then work out what the tab shows."""
    opened = await core.open_all_practices(number, reason=reason)
    # worked out in a worker thread: a long history takes a while, and the core's loop serves every practice
    return await asyncio.to_thread(_prepared, opened)


def _prepared(opened: AllPractices) -> Prepared:
    from app.core.timeline import ENTRY_KIND, rows

    timeline = opened.timeline()
    every = len(opened.records)
    read = rows(timeline)
    row_of = {id(item.entry): index for index, row in enumerate(read) for item in row.items}
    difference_rows = tuple(frozenset(row_of[id(e)] for e in d.entries if id(e) in row_of)
                            for d in timeline.differences)
    shown = tuple(ShownRow(date=format_partial_date(r.date) or "Undated",
                           practices=_practices_words(r.practices, every),
                           names=" · ".join(m.name for m in r.practices),
                           practice_ids=tuple(m.id for m in r.practices),
                           colours=tuple(m.colour for m in r.practices),
                           kind=ENTRY_KIND[r.section], section=r.section, words=r.words) for r in read)
    return Prepared(opened, timeline, shown, opened.patient, combined_record(opened), difference_rows)


def _practices_words(marks: tuple[PracticeMark, ...], every: int) -> str:
    """The practice column: the practice's name; "Both practices" or "All 3 practices" for an entry every opened
    practice holds the same (the names are in the tooltip); else the names."""
    if len(marks) > 1 and len(marks) == every:
        return "Both practices" if every == 2 else f"All {every} practices"
    return " · ".join(m.name for m in marks)


def combined_record(opened: AllPractices) -> PatientRecord | None:
    """A record for the banner: the first practice's patient, every practice's allergies (each once)."""
    from app.core.patient_facts import is_current_allergy
    from app.core.timeline import code_key, text_key

    records = opened.records
    if not records:
        return None
    first = records[0][1]
    seen: set[object] = set()
    allergies: list[Entry] = []
    loaded_sections = [s for _, r in records if (s := r.sections.get(SectionName.ALLERGIES)) is not None
                       and s.status == "loaded"]
    loaded = bool(loaded_sections)
    every = [e for s in loaded_sections for e in s.entries]
    # current ones first: an allergy current at one practice and ended at another is kept as current
    for entry in [e for e in every if is_current_allergy(e)] + [e for e in every if not is_current_allergy(e)]:
        keys = {("text", text_key(entry.text)), ("code", code_key(entry.coding))} - {("code", None)}
        if not keys & seen:
            allergies.append(entry)
        seen |= keys
    name = SectionName.ALLERGIES
    section = Section.loaded(name, allergies) if loaded else Section.failed(name, "not loaded from any practice")
    sections = {n: Section.loaded(n, []) for n in SectionName} | {name: section}
    return replace(first, sections=sections, warnings=(), access_flags=(), access_reason=None)


# --- the timeline table --------------------------------------------------------------------------------------

_DISPLAY = Qt.ItemDataRole.DisplayRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_DECORATION = Qt.ItemDataRole.DecorationRole
_ACCESSIBLE = Qt.ItemDataRole.AccessibleTextRole
Index = QModelIndex | QPersistentModelIndex


class TimelineModel(QAbstractTableModel):
    """The timeline rows (Python data; Qt holds no item of its own), filtered by kind of entry and practice."""

    HEADERS = ("Date", "Practice", "Type", "Entry")

    def __init__(self, rows: tuple[ShownRow, ...], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.all_rows = rows
        self.shown: list[ShownRow] = list(rows)
        self._icons: dict[tuple[str, ...], QIcon] = {}
        self.kind: SectionName | None = None
        self.practice_id: str | None = None
        self.only: frozenset[int] | None = None  # one difference's rows (the others hidden)

    def set_filter(self, kind: SectionName | None, practice_id: str | None, only: frozenset[int] | None = None) -> None:
        self.beginResetModel()
        self.kind, self.practice_id, self.only = kind, practice_id, only
        self.shown = [r for i, r in enumerate(self.all_rows) if (kind is None or r.section is kind)
                      and (practice_id is None or practice_id in r.practice_ids) and (only is None or i in only)]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt override
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:  # noqa: N802
        if orientation is Qt.Orientation.Horizontal and role == _DISPLAY:
            return self.HEADERS[section]
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row = self.shown[index.row()]
        column = index.column()
        if role in (_DISPLAY, _TOOLTIP, _ACCESSIBLE):
            text = (row.date, row.practices, row.kind, row.words)[column]
            if role in (_TOOLTIP, _ACCESSIBLE) and column == 1 and len(row.practice_ids) > 1:
                return f"The same entry at {len(row.practice_ids)} practices: {row.names}"
            return text
        if role == _DECORATION and column == 1:
            icon = self._icons.get(row.colours)
            if icon is None:
                icon = self._icons[row.colours] = multi_swatch(list(row.colours))
            return icon
        return None


class TimelineTable(QTableView):
    """The practice column gives way in a narrow pane (side by side), so the entry keeps its room."""

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        wanted = max(120, min(200, event.size().width() // 5))
        if self.columnWidth(1) != wanted:
            self.setColumnWidth(1, wanted)


def timeline_table(rows: tuple[ShownRow, ...]) -> QTableView:
    table = TimelineTable()
    table.setObjectName("timelineTable")
    table.setModel(TimelineModel(rows, table))
    table.setAccessibleName("Timeline, every practice, newest first")
    table.verticalHeader().hide()
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # one line each: nothing measured
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setShowGrid(False)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setTabKeyNavigation(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    metrics = table.fontMetrics()
    header.resizeSection(0, metrics.horizontalAdvance("00-Mmm-0000 00:00") + 16)
    header.resizeSection(1, 200)
    header.resizeSection(2, metrics.horizontalAdvance("Immunisation") + 16)
    table.verticalHeader().setDefaultSectionSize(metrics.height() + 10)
    return table


# --- the tab ---------------------------------------------------------------------------------------------

class AllPracticesView(RecordView):
    """One patient from every practice. A RecordView to the record tabs (titles, panes, closing, the lock), keyed
    (ALL_PRACTICES_ID, NHS number) so it never stands for one practice's record; `record` and `banner` stay None
    (the banner here speaks for several practices and lives in `patient_banner`)."""

    shown = Signal(object)  # the view, once every part is on screen (or the error is)
    open_alone = Signal(object)  # PracticeOpen: one practice's registration, to open in a tab of its own
    nhs_copied = Signal(str)  # what to tell the user once the banner's Copy NHS No. has copied it

    def __init__(self, number: str, known: PatientSummary | None = None, parent: QWidget | None = None) -> None:
        self.nhs_number = nhs.normalise(number)
        patient = _placeholder(self.nhs_number, known)
        self.reason: str | None = None
        self.prepared: Prepared | None = None
        self.patient_banner: PatientBanner | None = None
        self.parts: QFrame | None = None
        self.differences: QFrame | None = None
        self.difference_labels: list[QLabel] = []
        self.table: QTableView | None = None
        self.kind_filter: QComboBox | None = None
        self.practice_filter: QComboBox | None = None
        self._steps = 0
        self._reload: Callable[[], None] | None = None  # set by the window: the core again, with the same reason
        super().__init__(patient, ALL_PRACTICES)
        self.only_bar = QFrame()  # "Showing only …" above the timeline, when a difference's rows are shown
        self.only_label = QLabel()
        self._timeline_layout = QVBoxLayout()
        self.setStyleSheet(_STYLE)

    def title(self) -> str:
        return f"{display_name(self.patient)} · {ALL_PRACTICES.name}"

    @property
    def building(self) -> bool:
        return self.state == "loaded" and self._steps > 0

    def reload(self) -> None:
        if self._reload is not None and self.state != "loading":
            self._reload()

    # -- states ----------------------------------------------------------------------------------

    def show_loading(self) -> None:
        self._reset()
        self.state = "loading"
        self._layout.addWidget(loading_box(
            f"Opening the records of NHS No. {nhs.format_nhs_number(self.nhs_number)} at every practice they are "
            "registered at…", "Loading records from every practice"))

    def show_error(self, message: str) -> None:
        """Nothing could be shown (no practice has the patient, the research view, no journal): why, and Retry."""
        self._reset()
        self.state = "error"
        self.error = message
        page = error_box(f"NHS No. {nhs.format_nhs_number(self.nhs_number)} could not be opened at every "
                         "practice", message, "Retry opening the records at every practice")
        self.error_label, self.retry_button = page.message, page.retry
        self.retry_button.clicked.connect(self.reload)
        self._layout.addWidget(page.box)
        self.shown.emit(self)

    def show_record(self, record: PatientRecord) -> None:  # one practice's record never shows here
        raise TypeError("an All practices tab shows every practice's record: use show_outcome")

    def show_outcome(self, prepared: Prepared) -> None:
        """Put the patient from every practice on screen, in steps: banner and practices, differences, timeline."""
        self._reset()
        self.state = "loaded"
        self.prepared = prepared
        if prepared.patient is not None:
            self.patient = replace(prepared.patient, practice_id=ALL_PRACTICES_ID, local_id=self.nhs_number)
        generation = self._generation
        steps: list[Callable[[Prepared], None]] = [self._add_banner, self._add_parts, self._add_differences,
                                                   self._add_timeline, self._add_table]
        self._steps = len(steps)
        for step in steps:
            build_step(functools.partial(self._step, generation, step))

    def _step(self, generation: int, step: Callable[[Prepared], None]) -> None:
        if not shiboken6.isValid(self) or generation != self._generation or self.prepared is None:
            return
        step(self.prepared)
        self._steps -= 1
        if self._steps == 0:
            self.shown.emit(self)

    def _reset(self) -> None:
        self._clear()
        self.prepared = None
        self.error = None
        self.patient_banner = self.parts = self.differences = self.table = None
        self.kind_filter = self.practice_filter = None
        self.difference_labels = []
        self._steps = 0

    # -- the parts ---------------------------------------------------------------------------------

    def _add_banner(self, prepared: Prepared) -> None:
        from app.core.all_practices import registered_at

        opened = prepared.opened
        if prepared.patient is not None and prepared.combined is not None:
            first = opened.records[0][1]
            registered = registered_at(opened.opened)
            banner = PatientBanner(prepared.patient, replace(ALL_PRACTICES, name=registered), first.retrieved_at,
                                   record=prepared.combined)
            banner.setAccessibleName(f"Patient banner: {banner.name_text}, {registered}")
            banner.practice_label.setToolTip("The records come from every practice named here")
            where = registered_practices(opened)
            colours = [p.colour for p in where]
            for swatch in banner.findChildren(QLabel):
                if swatch.accessibleName() == f"{registered} colour":  # the banner's practice swatch: all of them
                    swatch.setPixmap(multi_swatch(colours).pixmap(14 + 7 * (len(colours) - 1), 14))
                    swatch.setAccessibleName("Colours of " + ", ".join(p.name for p in where))
            if prepared.patient.address is not None and not prepared.patient.pseudonym:
                banner.details_label.set_full_text(f"Address {prepared.patient.address.one_line()}")
            else:  # the registration (GP, type) is each practice's own: said per practice below
                banner.details_label.set_full_text("")
            self._mark_incomplete(banner, opened)
            if banner.copy_button is not None:
                banner.copy_button.clicked.connect(self._copy_nhs_number)
            self.patient_banner = banner
            self._layout.addWidget(banner)

    def _add_parts(self, prepared: Prepared) -> None:
        self.parts = _practice_parts(prepared.opened, self.reload, self.open_alone.emit)
        self._layout.addWidget(self.parts)

    def _mark_incomplete(self, banner: PatientBanner, opened: AllPractices) -> None:
        """"Record incomplete" when a practice could not be opened or a section of one failed; the allergies line
        says which practice's allergies are not in it."""
        missing_allergies = [o.practice.name for o in opened.opened  # failed, not provided or withheld there
                             if o.record is None or not _loaded(o.record, SectionName.ALLERGIES)]
        if missing_allergies:
            banner.allergies_label.setText(banner.allergies_label.text() + f"&nbsp; <b>⚠ Not known from "
                                           f"{_escape(', '.join(missing_allergies))}</b> — check before prescribing")
            banner.allergies_label.setAccessibleName(f"{banner.allergies.text}. Not known from "
                                                     f"{', '.join(missing_allergies)}")
        gaps = [f"{o.practice.name}: not opened" for o in opened.opened if o.record is None]
        gaps += [f"{o.practice.name}: {', '.join(SECTION_TITLES[n].lower() for n in names)} could not be loaded"
                 for o in opened.opened if o.record is not None and (names := _failed_names(o.record))]
        banner.incomplete_text = "Record incomplete — " + "; ".join(gaps) if gaps else None
        banner.incomplete_label.setVisible(bool(gaps))
        if gaps:
            banner.incomplete_label.setToolTip("; ".join(gaps) + ". What is shown is not the whole record: this "
                                               "does not mean none are recorded.")
            banner.incomplete_label.setAccessibleName(banner.incomplete_text or "")

    def _add_differences(self, prepared: Prepared) -> None:
        timeline = prepared.timeline
        frame = QFrame()
        frame.setObjectName("differences")
        frame.setAccessibleName("Differences between practices")
        layout = QVBoxLayout(frame)
        layout.setContentsMargins(10, 6, 10, 8)
        layout.setSpacing(4)
        compared = [p.name for p, _ in prepared.opened.records]
        unopened = [(o.practice.name, "could not be opened" if o.status == "failed" else
                     "was not opened under the access policy") for o in prepared.opened.problems]
        count = len(timeline.disagreements)
        heading = QLabel(f"Differences between practices ({count})" if count else "Differences between practices")
        heading.setObjectName("sectionTitle")
        layout.addWidget(heading)
        self.difference_labels = []
        lines: list[tuple[str, str]] = [
            ("not-compared", f"<b>⚠ Not compared</b>&nbsp; {_escape(name)} {why}, so what it records is not "
                             "known.") for name, why in unopened]
        if len(compared) < 2:
            lines.append(("none", "Nothing to compare: " + (f"only the record from {compared[0]} could be read."
                                                            if compared else "no practice's record could be read.")))
        else:
            lines += [(d.kind, _difference_html(d) + (f"&nbsp; <a href=\"{i}\">Show in timeline</a>"
                                                      if prepared.difference_rows[i] else ""))
                      for i, d in enumerate(timeline.differences)]
            if not timeline.disagreements:
                lines.append(("none", f"None found: {' and '.join(compared)} agree on allergies, repeat medication "
                                      "and problems."))
        listing = QWidget()
        items = QVBoxLayout(listing)
        items.setContentsMargins(0, 0, 0, 0)
        items.setSpacing(3)
        for kind, html in lines:
            label = QLabel(html)
            label.setObjectName("differenceItem" if kind != "none" else "secondary")
            label.setProperty("kind", kind)
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText if kind != "none" else Qt.TextFormat.PlainText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.LinksAccessibleByMouse
                                          | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
            label.setAccessibleName(_plain(html).removesuffix("  Show in timeline"))
            label.linkActivated.connect(lambda target: self.show_difference(int(target)))
            items.addWidget(label)
            self.difference_labels.append(label)
        if len(lines) > 6:  # a long list scrolls within a bounded box, so the timeline keeps its room
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            scroll.setWidget(listing)
            scroll.setMaximumHeight(170)
            scroll.setAccessibleName("Differences list")
            layout.addWidget(scroll)
        else:
            layout.addWidget(listing)
        self.differences = frame
        self._layout.addWidget(frame)

    def _add_timeline(self, prepared: Prepared) -> None:
        box = QWidget()
        box.setObjectName("centralArea")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        top = QHBoxLayout()
        heading = QLabel(f"Timeline, newest first ({len(prepared.timeline.items)} entries)")
        heading.setObjectName("sectionTitle")
        top.addWidget(heading)
        top.addStretch(1)
        self.kind_filter = QComboBox()
        self.kind_filter.setAccessibleName("Show entries of kind")
        self.kind_filter.addItem(EVERY_KIND, None)
        for name in _KIND_FILTERS:
            self.kind_filter.addItem(SECTION_TITLES[name], name.value)
        self.practice_filter = QComboBox()
        self.practice_filter.setAccessibleName("Show entries from practice")
        self.practice_filter.addItem(EVERY_PRACTICE, None)
        for practice, _ in prepared.opened.records:
            self.practice_filter.addItem(style.swatch_icon(practice.colour), practice.name, practice.id)
        for combo in (self.kind_filter, self.practice_filter):
            combo.currentIndexChanged.connect(self._filter_changed)
            top.addWidget(combo)
        layout.addLayout(top)
        self.only_bar = QFrame()
        self.only_bar.setObjectName("notice")
        only = QHBoxLayout(self.only_bar)
        only.setContentsMargins(8, 2, 8, 2)
        self.only_label = QLabel()
        self.only_label.setAccessibleName("Timeline narrowed to one item")
        self.only_label.setWordWrap(True)
        only.addWidget(self.only_label, 1)
        show_all = QPushButton("Show every entry")
        show_all.setObjectName("secondaryButton")
        show_all.setAccessibleName("Show every entry of the timeline")
        show_all.clicked.connect(self._filter_changed)
        only.addWidget(show_all)
        self.only_bar.hide()
        layout.addWidget(self.only_bar)
        self._timeline_layout = layout
        self._layout.addWidget(box, 1)

    def _add_table(self, prepared: Prepared) -> None:
        """The timeline table itself, in a step of its own (after its heading and filters)."""
        self.table = timeline_table(prepared.rows)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.table.setToolTip("Enter or double-click: open that practice's record in a tab of its own")
        self.table.activated.connect(self._row_activated)
        self._timeline_layout.addWidget(self.table, 1)

    def _row_activated(self, index: QModelIndex) -> None:
        """Enter or double-click on a row: the record of the row's (first) practice, in its own tab (the window's
        normal path: the policy, the journal)."""
        prepared, table = self.prepared, self.table
        model = table.model() if table is not None else None
        if prepared is None or not isinstance(model, TimelineModel) or not index.isValid():
            return
        practice_id = model.shown[index.row()].practice_ids[0]
        part = next((o for o in prepared.opened.opened if o.practice.id == practice_id and o.local_id), None)
        if part is not None:
            self.open_alone.emit(part)

    def show_difference(self, index: int) -> None:
        """Only the timeline rows of one difference's item (its history at every practice)."""
        prepared = self.prepared
        if prepared is None or self.table is None or self.kind_filter is None or self.practice_filter is None:
            return
        difference = prepared.timeline.differences[index]
        for combo in (self.kind_filter, self.practice_filter):
            blocked = combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(blocked)
        model = self.table.model()
        if isinstance(model, TimelineModel):
            model.set_filter(None, None, prepared.difference_rows[index])
        self.only_label.setText(f"Showing only {difference.item} ({len(prepared.difference_rows[index])} "
                                "entries, every practice).")
        self.only_bar.show()

    def _filter_changed(self) -> None:
        self.only_bar.hide()
        if self.table is None or self.kind_filter is None or self.practice_filter is None:
            return
        model = self.table.model()
        if isinstance(model, TimelineModel):
            kind = self.kind_filter.currentData()
            model.set_filter(SectionName(kind) if kind else None, self.practice_filter.currentData())

    def _copy_nhs_number(self) -> None:
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.nhs_number)
            self.nhs_copied.emit(f"Copied NHS number {nhs.format_nhs_number(self.nhs_number)} "
                                 f"({display_name(self.patient)}).")

    def text(self) -> str:
        """What the tab says above the timeline, in reading order (for tests and screen-reader checks)."""
        parts = [self.patient_banner.text()] if self.patient_banner is not None else []
        if self.parts is not None:
            parts += [label.accessibleName() for label in self.parts.findChildren(QLabel, "partStatus")]
        parts += [label.accessibleName() for label in self.difference_labels]
        return " | ".join(parts)


def registered_practices(opened: AllPractices) -> list[Practice]:
    """The practices the patient was found at (opened or not), in the directory's order."""
    return [o.practice for o in opened.opened if o.status == "ok" or o.local_id is not None]


def _placeholder(number: str, known: PatientSummary | None) -> PatientSummary:
    """Who the tab is for before any practice has answered: the search result's person, else the NHS number."""
    if known is not None:
        return replace(known, practice_id=ALL_PRACTICES_ID, local_id=number, nhs_number=number)
    return PatientSummary(ALL_PRACTICES_ID, number, number, f"NHS No. {nhs.format_nhs_number(number)}", (), None,
                          None, None)


def _failed(record: PatientRecord, name: SectionName) -> bool:
    section = record.sections.get(name)
    return section is None or section.status == "failed"


def _loaded(record: PatientRecord, name: SectionName) -> bool:
    section = record.sections.get(name)
    return section is not None and section.status == "loaded"


def _failed_names(record: PatientRecord) -> list[SectionName]:
    return [n for n in SECTION_TITLES if _failed(record, n)]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", html).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace(
        "&nbsp;", " ")


def _difference_html(d: Difference) -> str:
    marker = "⚠ " if d.kind in ("allergy", "not-compared", "partial") else ""
    return f"<b>{marker}{_DIFFERENCE_WORDS[d.kind]}</b>&nbsp; {_escape(d.text)}"


def _part_words(o: PracticeOpen) -> str:
    from app.core.patient_facts import registration_text

    if o.record is None:
        verb = "Refused under the access policy" if o.status == "denied" else "Could not be opened"
        return f"{verb}: {(o.why or 'no reason given').strip().rstrip('.')}."
    record = o.record
    words = [f"Opened, retrieved {format_datetime(record.retrieved_at)}"]
    registration = registration_text(record.patient, o.practice.name)
    if registration:
        words.append(f"registered {registration}")
    failed = _failed_names(record)
    if failed:
        words.append(f"INCOMPLETE: {', '.join(SECTION_TITLES[n].lower() for n in failed)} could not be loaded")
    notes = [*access_notes(record), *record.warnings]
    return "; ".join(words) + "." + "".join(f" ⚠ {n}" for n in notes)


def _practice_parts(opened: AllPractices, retry: Callable[[], None] | None = None,
                    open_alone: Callable[[PracticeOpen], None] | None = None) -> QFrame:
    """One line per practice: its colour and name, then opened / could not be opened / refused, and why."""
    frame = QFrame()
    frame.setObjectName("practiceParts")
    frame.setAccessibleName("Practices")
    grid = QGridLayout(frame)
    grid.setContentsMargins(10, 6, 10, 6)
    grid.setHorizontalSpacing(8)
    grid.setVerticalSpacing(3)
    for row, o in enumerate(opened.opened):
        swatch = QLabel()
        swatch.setPixmap(style.swatch_pixmap(o.practice.colour, 14))
        swatch.setAccessibleName(f"{o.practice.name} colour")
        grid.addWidget(swatch, row, 0, Qt.AlignmentFlag.AlignTop)
        name = QLabel(f"<b>{_escape(o.practice.name)}</b>")
        name.setAccessibleName(o.practice.name)
        grid.addWidget(name, row, 1, Qt.AlignmentFlag.AlignTop)
        words = _part_words(o)
        status = QLabel(words)
        status.setObjectName("partStatus")
        status.setProperty("status", o.status)
        status.setWordWrap(True)
        status.setTextFormat(Qt.TextFormat.PlainText)
        status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status.setAccessibleName(f"{o.practice.name}: {words}")
        grid.addWidget(status, row, 2)
        if o.status == "failed" and retry is not None:
            button = QPushButton("Retry")
            button.setObjectName("secondaryButton")
            button.setAccessibleName(f"Open every practice again ({o.practice.name} could not be opened)")
            button.setToolTip("Ask every practice again, with the same reason (Ctrl+R)")
            button.clicked.connect(retry)
            grid.addWidget(button, row, 3, Qt.AlignmentFlag.AlignTop)
        elif o.status == "denied" and o.needs == "break-glass" and o.local_id and open_alone is not None:
            button = QPushButton("Open by break-glass…")
            button.setObjectName("secondaryButton")
            button.setAccessibleName(f"Open the restricted record at {o.practice.name} alone, by break-glass")
            button.setToolTip("Opens this practice's record in a tab of its own, after the break-glass confirmation "
                              "and a written reason (flagged for review)")
            button.clicked.connect(functools.partial(open_alone, o))
            grid.addWidget(button, row, 3, Qt.AlignmentFlag.AlignTop)
    if opened.not_registered:
        names = ", ".join(p.name for p in opened.not_registered)
        absent = QLabel(f"Not registered at {names} (searched by NHS number).")
        absent.setObjectName("secondary")
        absent.setWordWrap(True)
        absent.setAccessibleName(absent.text())
        grid.addWidget(absent, len(opened.opened), 1, 1, 2)
    grid.setColumnStretch(2, 1)
    return frame


# --- opening it from the window ---------------------------------------------------------------------------------

def open_all_practices(window: MainWindow, number: str) -> AllPracticesView | None:
    """Open (or bring forward) the All practices tab for this NHS number: the policy is asked first (on the
    core's thread; no request), a reason once for the whole when any practice wants one, then every practice's
    record through the core. Returns the tab when it opens at once; None while a reason is asked for."""
    core = window.core
    if core is None:
        return None
    number = nhs.normalise(number)
    existing = window.records.find_view((ALL_PRACTICES_ID, number))
    if isinstance(existing, AllPracticesView):
        window.records.focus_view(existing)
        return existing
    if window.access_dialog is not None:
        return None  # one question at a time (the dialog is window-modal)
    known = _known_patient(window, number)
    if core.policy is None:
        return _open(window, number, known, None)

    def decided(decision: PolicyDecision) -> None:
        if decision.needs == "allowed":
            _open(window, number, known, None)
        elif decision.needs == "reason":
            _ask_reason(window, number, known, decision)
        else:
            window.statusBar().showMessage(f"Not opened at every practice: {decision.why}", STATUS_MS)
            box = QMessageBox(QMessageBox.Icon.Warning, "Not opened at every practice", decision.why, parent=window)
            box.setObjectName("accessDenied")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    window.bridge.submit(_decide(core, number), decided,
                         lambda exc: window.statusBar().showMessage(f"Not opened: {exc}", STATUS_MS), receiver=window)
    return None


async def _decide(core: MosaicCore, number: str) -> PolicyDecision:
    from app.core.all_practices import decision_for_all

    return decision_for_all(core, number)


def _known_patient(window: MainWindow, number: str) -> PatientSummary | None:
    """The person as the search results name them (for the tab's title until the practices answer)."""
    try:
        patients = window.search_panel.model.patients
    except AttributeError:
        return None
    return next((p for p in patients if nhs.normalise(p.nhs_number or "") == number), None)


def _registration(view: AllPracticesView, part: PracticeOpen) -> PatientSummary:
    """The patient's registration at one practice, to open it alone through the window's normal path (the core
    knows it from the search by NHS number, and decides on its own summary of it)."""
    return replace(view.patient, practice_id=part.practice.id, local_id=part.local_id or "", address=None,
                   registration=None, postcode=None)


def _who(number: str, known: PatientSummary | None) -> str:
    shown = f"NHS No. {nhs.format_nhs_number(number)}"
    if known is None:
        return shown
    born = f", born {format_date(known.birth_date)}" if known.birth_date else ""
    return f"{display_name(known)} ({shown}{born})"


def _ask_reason(window: MainWindow, number: str, known: PatientSummary | None, decision: PolicyDecision) -> None:
    if window.access_dialog is not None:
        return
    dialog = ReasonDialog(decision, _who(number, known), "every practice they are registered at", window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def given() -> None:
        if dialog is window.access_dialog:
            window.access_dialog = None
            _open(window, number, known, dialog.reason())

    def cancelled() -> None:
        if dialog is window.access_dialog:
            window.access_dialog = None
            window.statusBar().showMessage(f"Not opened: no reason for access was given for {_who(number, known)}.",
                                           STATUS_MS)

    dialog.accepted.connect(given)
    dialog.rejected.connect(cancelled)
    window.access_dialog = dialog
    window.statusBar().showMessage(f"A reason for access is needed to open {_who(number, known)} at every practice.",
                                   STATUS_MS)
    dialog.open()
    window.access_dialog_opened.emit(dialog)


def _open(window: MainWindow, number: str, known: PatientSummary | None, reason: str | None) -> AllPracticesView:
    existing = window.records.find_view((ALL_PRACTICES_ID, number))
    if isinstance(existing, AllPracticesView):
        window.records.focus_view(existing)
        return existing
    view = AllPracticesView(number, known)
    view.reason = reason
    view._reload = lambda: _load(window, view)
    view.open_alone.connect(lambda part: window.open_patient(_registration(view, part)))
    view.nhs_copied.connect(lambda words: window.statusBar().showMessage(words, STATUS_MS))
    window.records.add(view)
    _load(window, view)
    return view


def _load(window: MainWindow, view: AllPracticesView) -> None:
    core = window.core
    if core is None:
        return
    if view.state != "loading":
        view.show_loading()
    window.statusBar().showMessage(f"Opening {_who(view.nhs_number, None)} at every practice…", STATUS_MS)

    def done(prepared: Prepared) -> None:
        view.show_outcome(prepared)
        window.records.refresh_tab(view)
        _set_tab_icon(window, view, [p.colour for p in registered_practices(prepared.opened)])
        window.statusBar().showMessage(_outcome_words(prepared.opened), STATUS_MS)

    def failed(exc: BaseException) -> None:
        if isinstance(exc, PolicyError):
            message = f"Not opened under the access policy: {exc.decision.why}"
        elif isinstance(exc, AdapterError):
            message = exc.message
        else:
            message = str(exc) or type(exc).__name__
        view.show_error(message)
        window.statusBar().showMessage(f"Not opened at every practice: {message}", STATUS_MS)

    window.bridge.submit(prepare(core, view.nhs_number, view.reason), done, failed, receiver=view)


def _set_tab_icon(window: MainWindow, view: AllPracticesView, colours: list[str]) -> None:
    pane = window.records.pane_of(view)
    if pane is not None and colours:
        pane.setTabIcon(pane.indexOf(view), multi_swatch(colours))


def _outcome_words(opened: AllPractices) -> str:
    ok = [o.practice.name for o in opened.opened if o.status == "ok"]
    words = f"Opened at {len(ok)} of {len(opened.opened)} practices"
    problems = opened.problems
    if problems:
        words += "; not opened at " + ", ".join(o.practice.name for o in problems) + " (see the tab)"
    return words + "."
