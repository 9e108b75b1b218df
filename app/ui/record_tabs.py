"""Record tabs in one or more side-by-side panes (a QSplitter of QTabWidgets)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QSplitter, QStackedWidget, QTabBar, QTabWidget, QWidget

from app.core.nhs_number import format_nhs_number
from app.ui import style
from app.ui.record_view import Key, RecordView

MAX_PANES = 3


class RecordPane(QTabWidget):
    """One pane of record tabs."""

    def __init__(self, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabsClosable(True)
        self.setMovable(True)
        self.setDocumentMode(False)
        self.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.setUsesScrollButtons(True)
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

    def refresh_tab(self, view: RecordView) -> None:
        """Title and tooltip follow the record (the practice's own spelling of the name, once loaded)."""
        pane = self.pane_of(view)
        if pane is None:
            return
        index = pane.indexOf(view)
        title = view.title()
        # Setting a tab's text or icon lays out the whole tab bar again, so only when it changes.
        if pane.tabText(index) != title:
            pane.setTabText(index, title)
        if pane.tabIcon(index).isNull():
            pane.setTabIcon(index, style.swatch_icon(view.practice.colour))
        tip = title
        if view.patient.nhs_number:
            tip += f"\nNHS No. {format_nhs_number(view.patient.nhs_number)}"
        pane.setTabToolTip(index, tip)
        view.setAccessibleName(title)
        bar = pane.tabBar()
        for side in (QTabBar.ButtonPosition.RightSide, QTabBar.ButtonPosition.LeftSide):
            button = bar.tabButton(index, side)
            if button is not None:
                button.setAccessibleName(f"Close {title}")
                button.setToolTip(f"Close {title} (Ctrl+W)")

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
        position = self.panes.index(after) + 1 if after is not None else len(self.panes)
        self.panes.insert(position, pane)
        self.splitter.insertWidget(position, pane)
        self._renumber()
        self.splitter.setSizes([1000] * len(self.panes))  # equal widths
        return pane

    def _insert(self, pane: RecordPane, view: RecordView) -> None:
        pane.addTab(view, style.swatch_icon(view.practice.colour), view.title())
        self.refresh_tab(view)
        self._update_page()  # also tells views_changed

    def _move(self, view: RecordView, target: RecordPane) -> None:
        source = self.pane_of(view)
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
        self.current_pane = pane

    def _renumber(self) -> None:
        for number, pane in enumerate(self.panes, start=1):
            pane.renumber(number)

    def _update_page(self) -> None:
        self.setCurrentWidget(self.splitter if self.views() else self.hint)
        self.views_changed.emit()

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        while new is not None:
            if isinstance(new, RecordPane) and new in self.panes:
                self.current_pane = new
                return
            new = new.parentWidget()
