"""One record section on screen, in exactly one of its states: its groups of entries (Active problems, Repeat
medication, ...), a failure with Retry (never "None recorded"), not provided by the practice's system, or
withheld under the access policy (never a failure).

A long group shows its first entries and "Show all N" rather than a scrollbar of its own: the record has one
scroll area. Past medication starts folded.
"""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.core.model import SECTION_TITLES, Practice, Section, SectionName
from app.ui.record_rows import BODY_TITLES, NONE_RECORDED, Group, groups_for
from app.ui.record_table import ROWS_PER_STEP, FitTable, RowsModel, make_table

Step = Callable[[], None]
AddStep = Callable[[Step], None]

NOT_PROVIDED = "Not provided by this practice's system"
WITHHELD_FOR_STUDY = "Withheld for this study"
WITHHELD_FOR_ROLE = "Not shown for your role"


def failure_text(section: SectionName, practice: Practice, reason: str | None) -> str:
    """Says plainly that a failed section is unknown, not empty."""
    why = (reason or "no reason given").strip().rstrip(".")
    if why.startswith(f"{practice.name}: "):  # the sentence already names the practice
        why = why[len(practice.name) + 2:]
    return (f"Could not load {SECTION_TITLES[section].lower()} from {practice.name}: {why}. "
            "This does not mean none are recorded.")


def withheld_text(research: bool) -> str:
    return WITHHELD_FOR_STUDY if research else WITHHELD_FOR_ROLE


class GroupBlock(QWidget):
    """A group's heading and table (or "None recorded"), with "Show all N" when it is long."""

    def __init__(self, group: Group, add_step: AddStep, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self._add_step = add_step
        self.table: FitTable | None = None
        self.show_all_button: QPushButton | None = None
        self.toggle: QToolButton | None = None
        self.message = ""  # what stands for the table when the group is empty
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        self._layout = layout
        if group.collapsed:
            self.toggle = QToolButton()
            self.toggle.setObjectName("groupToggle")
            self.toggle.setCheckable(True)
            self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            self.toggle.setArrowType(Qt.ArrowType.RightArrow)
            self.toggle.setText(group.heading)
            self.toggle.setAccessibleName(f"{group.heading}: show or hide")
            self.toggle.toggled.connect(self._toggled)
            layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        else:
            self.title_label = QLabel(group.heading)
            self.title_label.setObjectName("groupTitle")
            self.title_label.setAccessibleName(group.heading)
            layout.addWidget(self.title_label)
            self._fill()

    @property
    def expanded(self) -> bool:
        return self.toggle is None or self.toggle.isChecked()

    def _toggled(self, on: bool) -> None:
        assert self.toggle is not None
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        if on and self.table is None and self._layout.count() == 1:
            self._fill()
        for n in range(1, self._layout.count()):
            item = self._layout.itemAt(n)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.setVisible(on and (widget is not self.show_all_button or self._more()))

    def _more(self) -> bool:
        model = self.table.model() if self.table is not None else None
        return isinstance(model, RowsModel) and not model.complete

    def _fill(self) -> None:
        group = self.group
        if not group.rows:
            self.message = group.empty_text
            self._layout.addWidget(note(group.empty_text, "noneRecorded"))
            return
        self.table = make_table(group.title, group.spec, group.rows, group.first)
        self._layout.addWidget(self.table)
        if self.window() is not self:  # in a window already (unfolded later): the style sheet applies now
            self.table.fit_to_contents()
        if group.has_more:
            self.show_all_button = QPushButton(f"Show all {group.count} {group.noun}")
            self.show_all_button.setObjectName("secondaryButton")
            self.show_all_button.setAccessibleName(f"Show all {group.count} {group.noun} in {group.title}")
            self.show_all_button.clicked.connect(self.show_all)
            self._layout.addWidget(self.show_all_button, 0, Qt.AlignmentFlag.AlignLeft)

    def show_all(self) -> None:
        """Every row, a few hundred per step of the event loop; the button goes once they are all in."""
        table, button = self.table, self.show_all_button
        if table is None or button is None:
            return
        model = table.model()
        assert isinstance(model, RowsModel)
        button.setEnabled(False)
        button.setText("Showing all…")

        def more() -> None:
            if not shiboken6.isValid(self) or not shiboken6.isValid(table):
                return
            start = model.rowCount()
            going = model.add_rows(ROWS_PER_STEP)
            table.rows_added(start)
            if going:
                self._add_step(more)
            else:
                button.hide()

        self._add_step(more)


class SectionBlock(QFrame):
    """A titled block for one section, in exactly one of its states. `retry_requested` asks for this section
    alone again (a failed one)."""

    retry_requested = Signal(object)  # the SectionName

    def __init__(self, section: Section, practice: Practice, add_step: AddStep, *, research: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.section = section
        self.setObjectName("sectionBlock")
        title = BODY_TITLES[section.name]
        self.setAccessibleName(f"{title} section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(6)
        self.groups: list[GroupBlock] = []
        self.retry_button: QPushButton | None = None
        self.message = ""
        if section.status == "loaded":
            for group in groups_for(section, notes=not research):
                block = GroupBlock(group, add_step)
                self.groups.append(block)
                layout.addWidget(block)
            if self.groups and not any(g.group.rows for g in self.groups):  # loaded, and really empty
                self.message = self.groups[0].group.empty_text
            return
        heading = _heading(section.name)
        self.title_label = QLabel(heading)
        self.title_label.setObjectName("groupTitle")
        self.title_label.setAccessibleName(heading)
        layout.addWidget(self.title_label)
        if section.status == "failed":
            self.message = failure_text(section.name, practice, section.error)
            layout.addWidget(self._failure_box())
        elif section.status == "withheld":
            self.message = withheld_text(research)
            layout.addWidget(note(self.message, "withheld"))
        else:
            self.message = NOT_PROVIDED
            layout.addWidget(note(NOT_PROVIDED, "notProvided"))

    def fit(self) -> None:
        """Size the tables to their text: once the block is in the window, where the style sheet applies."""
        for table in self.tables:
            table.fit_to_contents()

    def add_above_groups(self, widget: QWidget) -> None:
        """Put `widget` (the trend charts) under the section's title, above its table."""
        if self.groups and not self.groups[0].group.collapsed:
            self.groups[0].layout().insertWidget(1, widget)  # type: ignore[union-attr]
        else:
            self.layout().addWidget(widget)  # type: ignore[union-attr]
        widget.show()

    def release(self, widget: QWidget) -> None:
        """Take `widget` back out (before this block is deleted), so that it outlives the block."""
        widget.setParent(None)

    @property
    def table(self) -> FitTable | None:
        """The first group's table (None when the section has none on screen)."""
        return next((g.table for g in self.groups if g.table is not None), None)

    @property
    def tables(self) -> list[FitTable]:
        return [g.table for g in self.groups if g.table is not None]

    def _failure_box(self) -> QFrame:
        box = QFrame()
        box.setObjectName("failure")
        box_layout = QHBoxLayout(box)
        box_layout.setContentsMargins(10, 8, 10, 8)
        label = QLabel("⚠  " + self.message)
        label.setObjectName("failureText")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAccessibleName(self.message)
        box_layout.addWidget(label, 1)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName(f"Retry loading {SECTION_TITLES[self.section.name].lower()}")
        self.retry_button.setToolTip("Ask the practice for this section again")
        self.retry_button.clicked.connect(self._retry)
        box_layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        return box

    def _retry(self) -> None:
        if self.retry_button is not None:
            self.retry_button.setEnabled(False)
            self.retry_button.setText("Retrying…")
        self.retry_requested.emit(self.section.name)

    def retry_failed(self) -> None:
        """The retry did not get through: the button may be pressed again."""
        if self.retry_button is not None and shiboken6.isValid(self.retry_button):
            self.retry_button.setEnabled(True)
            self.retry_button.setText("Retry")


def _heading(name: SectionName) -> str:
    """A section's heading when it has no groups on screen: problems are read as Active problems first."""
    return "Active problems" if name is SectionName.PROBLEMS else BODY_TITLES[name]


def note(text: str, object_name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setAccessibleName(text)
    return label


__all__ = ["NONE_RECORDED", "NOT_PROVIDED", "GroupBlock", "SectionBlock", "failure_text", "withheld_text"]
