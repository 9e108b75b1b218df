"""Record tabs in one or more side-by-side panes (a QSplitter of QTabWidgets).

The patient is unmistakable: a tab says "SURNAME, Given · date of birth · practice", cut from the right when
room runs out (the whole title in its tooltip); with records side by side, each pane says whether the
patient beside it is the same person (same NHS number) or a different one, and different people's banners
carry different accents."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QSplitter, QStackedWidget, QTabBar, QTabWidget, QWidget

from app.core import patient_facts
from app.core.display import display_name
from app.core.model import PatientSummary
from app.core.nhs_number import format_nhs_number
from app.ui import style
from app.ui.access_dialogs import opened_by_break_glass
from app.ui.gui_first import gui_working
from app.ui.record_view import Key, RecordView

MAX_PANES = 3
MIN_TAB_WIDTH = 150  # a tab cut shorter than this no longer says whose record it is: scroll buttons instead
SAME_PATIENT = "Same patient (NHS number matches)"
SAME_PARTICIPANT = "Same participant (pseudonym matches)"
DIFFERENT_PATIENTS = "Different patients"
NOT_CONFIRMED = "Not confirmed as the same patient (no NHS number)"
#: the accents that tell different people apart side by side (not practice colours: those are the left bar)
PERSON_ACCENTS = ("#003087", "#ed8b00", "#330072")
SAME_ACCENT = "#007f3b"


def tab_title(view: RecordView) -> str:
    """'SAUNDERS, Abena · 12-Mar-1974 · Riverside Medical Centre' (the year only in the research view), with
    '⚠ ' first when the record was opened by break-glass."""
    patient = view.patient
    marker = "⚠ " if opened_by_break_glass(view.record) else ""
    born = patient_facts.born_text(patient).split(" (")[0]
    if patient.birth_date is None and not patient.pseudonym:
        born = "born not known"
    return f"{marker}{display_name(patient)} · {born} · {view.practice.name}"


def person_key(patient: PatientSummary) -> tuple[str, str]:
    """Who a record is of, as far as can be told: the NHS number, else the research pseudonym (one per NHS
    number per study), else this practice's own record only."""
    if patient.nhs_number:
        return ("nhs", patient.nhs_number)
    if patient.pseudonym:
        return ("pseudonym", patient.pseudonym)
    return ("local", f"{patient.practice_id}/{patient.local_id}")


class RecordTabBar(QTabBar):
    """Tabs that are cut from the right but never below MIN_TAB_WIDTH (Qt would cut them to 'A…y').

    Said in a style sheet rather than by overriding minimumTabSizeHint: Qt asks every tab for it each time
    the bar is laid out (every tab opened, renamed or closed), and a Python override made that 60 calls
    into Python per tab opened with 20 open."""

    def __init__(self) -> None:
        super().__init__()
        self.setStyleSheet(f"QTabBar::tab {{ min-width: {MIN_TAB_WIDTH}px; }}")


class RecordPane(QTabWidget):
    """One pane of record tabs."""

    def __init__(self, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabBar(RecordTabBar())
        self.setTabsClosable(True)
        self.setMovable(True)
        self.setDocumentMode(False)
        self.setElideMode(Qt.TextElideMode.ElideRight)  # the name and date of birth come first: keep them
        self.setUsesScrollButtons(True)
        self.identity_mark = QLabel()  # "Different patients" / "Same patient (NHS number matches)"
        self.identity_mark.setObjectName("identityMark")
        self.identity_mark.hide()
        self.setCornerWidget(self.identity_mark, Qt.Corner.TopRightCorner)
        self.renumber(number)

    def renumber(self, number: int) -> None:
        self.setAccessibleName(f"Record pane {number}")
        self.tabBar().setAccessibleName(f"Record tabs, pane {number}")

    def views(self) -> list[RecordView]:
        return [w for i in range(self.count()) if isinstance(w := self.widget(i), RecordView)]


class RecordArea(QStackedWidget):
    """All open records. Knows which pane is current (the one holding focus or last clicked)."""

    view_closed = Signal(object)  # RecordView, so the window can drop its pending load
    views_changed = Signal()
    current_view_changed = Signal(object)  # the RecordView in front of the current pane, or None
    copy_nhs_requested = Signal(object)  # RecordView whose banner's Copy button was pressed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Records")
        self.hint = QLabel("Open a patient from the search results (Enter or double-click) to see the record "
                           "here.\nRecords open in tabs; Split view (Ctrl+\\) shows two side by side.")
        self.hint.setObjectName("hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setAccessibleName("No records open")
        self.addWidget(self.hint)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setAccessibleName("Record panes")
        self.addWidget(self.splitter)
        self.panes: list[RecordPane] = []
        self.current_pane = self._new_pane()
        self._forward_pass = False  # a view was brought forward in this pass of the event loop
        self._forward: RecordView | None = None  # added later in the same pass: brought forward after it
        app = QApplication.instance()
        if not isinstance(app, QApplication):  # widgets cannot exist without one; narrows the Optional
            raise RuntimeError("RecordTabs needs a QApplication")
        app.focusChanged.connect(self._focus_changed)

    # -- queries -----------------------------------------------------------------------------------

    def views(self) -> list[RecordView]:
        return [v for pane in self.panes for v in pane.views()]

    def find_view(self, key: Key) -> RecordView | None:
        return next((v for v in self.views() if v.key == key), None)

    def pane_of(self, view: RecordView) -> RecordPane | None:
        return next((p for p in self.panes if p.indexOf(view) >= 0), None)

    def current_view(self) -> RecordView | None:
        if self._forward is not None and shiboken6.isValid(self._forward) and self.pane_of(self._forward):
            return self._forward  # on its way forward (see `add`)
        widget = self.current_pane.currentWidget()
        return widget if isinstance(widget, RecordView) else None

    # -- changes -----------------------------------------------------------------------------------

    def add(self, view: RecordView) -> None:
        """Open a new tab in the current pane and bring it forward.

        Several opened in one pass of the event loop (ten records at once): the first is brought forward at
        once and the last at the end of the pass. Bringing each forward in turn would show, lay out and hide
        every one of them on the way (2 ms or more each, holding the GUI thread)."""
        gui_working()  # a new tab to lay out and paint: the core's loop waits its turn
        self._insert(self.current_pane, view)
        if self._forward_pass:
            self._forward = view
            return
        self.focus_view(view)
        self._forward_pass = True
        QTimer.singleShot(0, self, self._forward_last)

    def _forward_last(self) -> None:
        self._forward_pass = False
        view = self._forward
        if view is not None and shiboken6.isValid(view):
            self.focus_view(view)
        self._forward = None

    def focus_view(self, view: RecordView) -> None:
        self._forward = None  # this one now, whatever was on its way forward
        pane = self.pane_of(view)
        if pane is None:
            return
        pane.setCurrentWidget(view)
        self.current_pane = pane
        self.setCurrentWidget(self.splitter)
        pane.tabBar().setFocus(Qt.FocusReason.OtherFocusReason)
        self._people_changed()

    def refresh_tab(self, view: RecordView) -> None:
        """Title and tooltip follow the record (the practice's own spelling of the name, once loaded)."""
        pane = self.pane_of(view)
        if pane is None:
            return
        index = pane.indexOf(view)
        title = tab_title(view)
        # Setting a tab's text or icon lays out the whole tab bar again, so only when it changes.
        if pane.tabText(index) != title:
            pane.setTabText(index, title)
        if pane.tabIcon(index).isNull():
            pane.setTabIcon(index, style.swatch_icon(view.practice.colour))
        tip = title
        if view.patient.nhs_number:
            tip += f"\nNHS No. {format_nhs_number(view.patient.nhs_number)}"
        if pane.tabToolTip(index) != tip:
            pane.setTabToolTip(index, tip)
        banner = view.banner
        if banner is not None:
            if banner.record is not view.record:  # the allergies line and "Record incomplete" follow the record
                banner.set_record(view.record)
            if not banner.property("copyWired"):
                banner.setProperty("copyWired", True)
                banner.copy_nhs_requested.connect(lambda v=view: self.copy_nhs_requested.emit(v))
        view.setAccessibleName(title)
        bar = pane.tabBar()
        for side in (QTabBar.ButtonPosition.RightSide, QTabBar.ButtonPosition.LeftSide):
            button = bar.tabButton(index, side)
            if button is not None:
                button.setAccessibleName(f"Close {title}")
                button.setToolTip(f"Close {title} (Ctrl+W)")
        self._people_changed()

    def close_view(self, view: RecordView) -> None:
        pane = self.pane_of(view)
        if pane is None:
            return
        view.stop_building()
        pane.removeTab(pane.indexOf(view))
        self._drop_if_empty(pane)
        self.view_closed.emit(view)
        view.deleteLater()
        self._update_page()

    def close_current(self) -> bool:
        view = self.current_view()
        if view is None:
            view = next(iter(self.views()), None)
        if view is None:
            return False
        self.close_view(view)
        return True

    def split_current(self) -> bool:
        """Move the current tab into a new pane beside it. False when there is nothing to split."""
        view = self.current_view()
        if view is None or self.current_pane.count() < 2:
            return False
        if len(self.panes) >= MAX_PANES:
            return self.move_current_to_other()
        target = self._new_pane(after=self.current_pane)
        self._move(view, target)
        return True

    def move_current_to_other(self) -> bool:
        """Move the current tab to the next pane (making one when there is only one pane)."""
        view = self.current_view()
        if view is None:
            return False
        if len(self.panes) == 1:
            return self.split_current()
        source = self.current_pane
        target = self.panes[(self.panes.index(source) + 1) % len(self.panes)]
        self._move(view, target)
        return True

    # -- internals ---------------------------------------------------------------------------------

    def _new_pane(self, after: RecordPane | None = None) -> RecordPane:
        pane = RecordPane(len(self.panes) + 1)
        pane.tabCloseRequested.connect(lambda index, p=pane: self._close_index(p, index))
        pane.tabBarClicked.connect(lambda _index, p=pane: self._set_current(p))
        pane.currentChanged.connect(lambda index, p=pane: self._front_changed(p, index))
        position = self.panes.index(after) + 1 if after is not None else len(self.panes)
        self.panes.insert(position, pane)
        self.splitter.insertWidget(position, pane)
        self._renumber()
        self.splitter.setSizes([1000] * len(self.panes))  # equal widths
        return pane

    def _front_changed(self, pane: RecordPane, index: int) -> None:
        view = pane.widget(index)
        if isinstance(view, RecordView):
            view.lay_out_if_held()  # a record that arrived behind another tab, now in front
        self._people_changed()

    def _insert(self, pane: RecordPane, view: RecordView) -> None:
        pane.addTab(view, style.swatch_icon(view.practice.colour), view.title())
        self.refresh_tab(view)
        self._update_page()  # also tells views_changed

    def _move(self, view: RecordView, target: RecordPane) -> None:
        source = self.pane_of(view)
        view.unload()  # laid out again where it lands (re-styling a whole record on the way held the GUI)
        if source is not None:
            source.removeTab(source.indexOf(view))
        self._insert(target, view)
        if source is not None:
            self._drop_if_empty(source)
        self.focus_view(view)

    def _drop_if_empty(self, pane: RecordPane) -> None:
        """An empty pane goes away, except the last one."""
        if pane.count() or len(self.panes) == 1:
            return
        index = self.panes.index(pane)
        self.panes.remove(pane)
        pane.hide()
        pane.setParent(None)
        pane.deleteLater()
        self._renumber()
        if self.current_pane is pane:
            self.current_pane = self.panes[min(index, len(self.panes) - 1)]

    def _close_index(self, pane: RecordPane, index: int) -> None:
        view = pane.widget(index)
        if isinstance(view, RecordView):
            self.close_view(view)

    def _set_current(self, pane: RecordPane) -> None:
        if self.current_pane is not pane:
            self.current_pane = pane
            self._people_changed()

    def _renumber(self) -> None:
        for number, pane in enumerate(self.panes, start=1):
            pane.renumber(number)

    def _update_page(self) -> None:
        self.setCurrentWidget(self.splitter if self.views() else self.hint)
        self.views_changed.emit()
        self._people_changed()

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        while new is not None:
            if isinstance(new, RecordPane) and new in self.panes:
                self._set_current(new)
                return
            new = new.parentWidget()

    # -- whose records are side by side ------------------------------------------------------------

    def _people_changed(self) -> None:
        """Mark the panes (same or different people) and tell the window which record is in front."""
        self.mark_people()
        self.current_view_changed.emit(self.current_view())

    def shown_views(self) -> list[RecordView]:
        """The record in front of each pane, left to right."""
        return [w for p in self.panes if isinstance(w := p.currentWidget(), RecordView)]

    def mark_people(self) -> None:
        """Side by side, each pane says whether its patient is the one beside it, and different people get
        different banner accents. One pane (or one record): no marks."""
        fronts = [(p, w) for p in self.panes if isinstance(w := p.currentWidget(), RecordView)]
        if len(fronts) < 2:
            for pane in self.panes:
                _set_mark(pane, None, None)
            for view in self.views():
                if view.banner is not None:
                    view.banner.set_accent(None)
            return
        keys = [person_key(v.patient) for _p, v in fronts]
        people = list(dict.fromkeys(keys))  # in pane order
        for i, (pane, view) in enumerate(fronts):
            text = _relation(view.patient, [v.patient for j, (_p, v) in enumerate(fronts) if j != i])
            if text == DIFFERENT_PATIENTS:
                colour = PERSON_ACCENTS[people.index(keys[i]) % len(PERSON_ACCENTS)]
            else:
                colour = SAME_ACCENT if text in (SAME_PATIENT, SAME_PARTICIPANT) else style.WARNING_BORDER
            _set_mark(pane, text, colour)
            if view.banner is not None:
                view.banner.set_accent(colour)
        for pane in self.panes:  # a pane showing nothing (all its tabs closed meanwhile)
            if not isinstance(pane.currentWidget(), RecordView):
                _set_mark(pane, None, None)


def _relation(patient: PatientSummary, others: list[PatientSummary]) -> str:
    """What a pane says of its patient against the others shown: the same person only on a matching NHS number
    (or pseudonym); different when an NHS number (pseudonym), name or date of birth differs; otherwise not
    confirmed either way."""
    key = person_key(patient)
    if all(person_key(o) == key for o in others) and key[0] != "local":
        return SAME_PATIENT if key[0] == "nhs" else SAME_PARTICIPANT
    for other in others:
        theirs = person_key(other)
        if key[0] != "local" and theirs[0] == key[0] and theirs != key:
            return DIFFERENT_PATIENTS
        if (display_name(other), other.birth_date, other.birth_year) != (display_name(patient), patient.birth_date,
                                                                          patient.birth_year):
            return DIFFERENT_PATIENTS
    return NOT_CONFIRMED


def _set_mark(pane: RecordPane, text: str | None, colour: str | None) -> None:
    mark = pane.identity_mark
    if text is None or colour is None:
        mark.hide()
        mark.setProperty("markText", None)
        return
    if mark.property("markText") == text and mark.property("markColour") == colour and mark.isVisibleTo(pane):
        return
    mark.setProperty("markText", text)
    mark.setProperty("markColour", colour)
    symbol = "=" if text in (SAME_PATIENT, SAME_PARTICIPANT) else "≠" if text == DIFFERENT_PATIENTS else "?"
    mark.setText(f"{symbol} {text}")
    mark.setAccessibleName(text)
    mark.setToolTip({SAME_PATIENT: "The records side by side have the same NHS number: one person, registered at "
                                   "more than one practice.",
                     SAME_PARTICIPANT: "The records side by side are of one research participant.",
                     DIFFERENT_PATIENTS: "The records side by side are of different people: check the banner "
                                         "before acting on either.",
                     NOT_CONFIRMED: "A record side by side has no NHS number: whether these are one person "
                                    "cannot be told. Check name, date of birth and address."}.get(text, text))
    text_colour = style.TEXT if colour == style.WARNING_BORDER else "white"
    mark.setStyleSheet(f"background: {colour}; color: {text_colour}; font-weight: 700; padding: 3px 8px; "
                       "border-radius: 3px; margin: 2px 4px;")
    mark.show()
