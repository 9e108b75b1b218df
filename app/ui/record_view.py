"""One patient's record in a tab: loading, then banner + sections, or the error with a Retry button.

A record is put on screen in steps so that the GUI thread never stalls on it: the banner (with any
warnings) at once, then the sections one at a time, each step in its own turn of the event loop (see
`_BuildSteps`). `RecordView.record_shown` is emitted once the last section is on screen.

A record that arrives in a tab out of sight (ten opened at once: nine are behind the tenth) is held, not laid
out: it is laid out, in the same steps, when its tab is brought forward (`lay_out_if_held`). A record moved to
another pane drops its widgets first (`unload`) and is laid out again there from the record it holds: no new
request and no new journal entry. Both keep the GUI thread free: re-styling and laying out a whole record
that nobody can see is what held it for 100 ms and more (issue 9).

The body reads as a GP system's summary does: allergies and active problems first (visible without
scrolling on a laptop screen, also side by side), then significant past problems, medication (repeat,
acute, past folded), consultations with their notes, results grouped by report, immunisations. What each
section shows is built in app/ui/record_rows.py and results_table.py, its widgets in record_sections.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.display import display_name
from app.core.model import PatientRecord, PatientSummary, Practice, Section, SectionName
from app.ui.access_dialogs import access_strip, opened_by_break_glass
from app.ui.error_box import error_box
from app.ui.gui_first import gui_busy
from app.ui.loading_box import loading_box
from app.ui.patient_banner import PatientBanner
from app.ui.record_rows import BODY_ORDER, NONE_RECORDED
from app.ui.record_sections import NOT_PROVIDED, SectionBlock, failure_text
from app.ui.trends import attach_trends

log = logging.getLogger("mosaic.ui.record")

Key = tuple[str, str]

BUILD_BUDGET_S = 0.005  # record-building steps run per event-loop pass (at least one)
__all__ = ["BODY_ORDER", "NONE_RECORDED", "NOT_PROVIDED", "RecordView", "build_step", "failure_text",
           "watch_building"]


class _BuildSteps:
    """The steps of every record being put on screen, in order, for at most BUILD_BUDGET_S per pass of
    the event loop (then the rest in the next pass), so input and painting get their turn in between."""

    def __init__(self) -> None:
        self._steps: deque[Callable[[], None]] = deque()
        self._timer: QTimer | None = None
        self.watchers: list[Callable[[bool], None]] = []  # told True when steps start coming, False when done

    def add(self, step: Callable[[], None]) -> None:
        starting = not self._steps
        self._steps.append(step)
        self._post()
        if starting:
            self._tell(True)

    def _tell(self, building: bool) -> None:
        for watcher in list(self.watchers):
            try:
                watcher(building)
            except Exception:
                log.exception("a record-building watcher failed")

    def _post(self) -> None:
        # A zero timer rather than a posted event: timers, input and painting get their turn after each
        # pass (a chain of posted events runs twice between two ticks of a timer).
        if self._timer is None or not shiboken6.isValid(self._timer):
            self._timer = QTimer()
            self._timer.setSingleShot(True)
            self._timer.setInterval(0)
            self._timer.timeout.connect(self._run)
        if not self._timer.isActive():
            self._timer.start()

    def _run(self) -> None:
        with gui_busy():  # the core's loop waits while these steps run and Qt lays out what they add
            self._run_steps()

    def _run_steps(self) -> None:
        deadline = time.perf_counter() + BUILD_BUDGET_S
        while self._steps:
            step = self._steps.popleft()
            try:
                step()
            except Exception:
                log.exception("building a record view failed")
            if time.perf_counter() >= deadline:
                break
        if self._steps:
            self._post()
        else:
            self._tell(False)


_BUILD_STEPS = _BuildSteps()


class RecordView(QWidget):
    """The content of one record tab. Shows nothing of the record until it has arrived."""

    retry_requested = Signal(object)  # the view itself
    section_retry_requested = Signal(object, object)  # the view, the SectionName to read again
    record_shown = Signal(object)  # the view itself, once show_record has put every section on screen
    record_ready = Signal(object)  # the view itself, once the record is on screen or held for when it is seen

    def __init__(self, patient: PatientSummary, practice: Practice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.patient = patient
        self.practice = practice
        self.key: Key = (patient.practice_id, patient.local_id)
        self.record: PatientRecord | None = None
        self.state = "loading"
        self.error: str | None = None
        self.banner: PatientBanner | None = None
        self.access_strip: QFrame | None = None  # how the record was opened, when the access is flagged
        self.sections: dict[SectionName, SectionBlock] = {}
        self._generation = 0  # bumped whenever the content is replaced: steps of an older build stop
        self._body_layout: QVBoxLayout | None = None
        self._building = False
        self._held = False  # the record has arrived out of sight: laid out when its tab is brought forward
        self._ready_told = False  # record_ready emitted for this record
        self._trends: QWidget | None = None  # the trend charts, when app/ui/trends.py has added them
        self.body_scroll: QScrollArea | None = None
        self.setAccessibleName(self.title())
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self.show_loading()

    def title(self) -> str:
        marker = "⚠ " if opened_by_break_glass(self.record) else ""
        return f"{marker}{display_name(self.patient)} · {self.practice.name}"

    def _clear(self, at_once: bool = False) -> None:
        """Drop what is on screen; `at_once` deletes the widgets now rather than in a later pass (before
        the view moves: deleted widgets are not re-styled on the way)."""
        self.stop_building()
        self.banner = None
        self.access_strip = None
        self.sections = {}
        self._body_layout = None
        self._building = False
        self._held = False
        self._trends = None
        self.body_scroll = None
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                if at_once:
                    shiboken6.delete(widget)
                else:
                    widget.deleteLater()

    def stop_building(self) -> None:
        """Abandon a record still being put on screen (the view is reloading or closing)."""
        self._generation += 1

    @property
    def building(self) -> bool:
        """The record has arrived and its sections are still being put on screen."""
        return self.state == "loaded" and self._building

    @property
    def held(self) -> bool:
        """The record has arrived out of sight and is not laid out yet (see the module's docstring)."""
        return self.state == "loaded" and self._held

    def unload(self) -> None:
        """Before the view moves to another pane: drop the record's widgets now and hold the record, to be
        laid out again where it lands (`lay_out_if_held`). Loading and error pages are kept: they are small."""
        if self.state != "loaded" or self.record is None:
            return
        record = self.record
        self._clear(at_once=True)
        self.record = record
        self._held = True

    def lay_out_if_held(self) -> None:
        """Lay out a record that arrived (or moved) out of sight, now that its tab is in front: from the next
        pass of the event loop, as a build step, so the pass that brought the tab forward (a split, a move, a
        click on the tab) lays out and paints the panes first and the record's banner follows (issue 9: the
        split view's stall was both in one pass)."""
        if self.held and self.record is not None:
            generation = self._generation
            build_step(lambda: self._lay_out_held(generation))

    def _lay_out_held(self, generation: int) -> None:
        if not shiboken6.isValid(self) or generation != self._generation or self.record is None:
            return  # closed, reloading or moved again since
        if self.held and not self.out_of_sight():  # still in front (else held until it is brought forward)
            self._lay_out(self.record)

    def show_loading(self) -> None:
        self._clear()
        self.state = "loading"
        self.record = None
        self.error = None
        self._layout.addWidget(loading_box(f"Opening the record of {display_name(self.patient)} from "
                                           f"{self.practice.name}…", "Loading record"))

    def show_error(self, message: str) -> None:
        """The whole record could not be opened: the reason and Retry, and no record data."""
        self._clear()
        self.state = "error"
        self.error = message
        self.record = None
        page = error_box(f"The record could not be opened from {self.practice.name}", message,
                         f"Retry opening the record from {self.practice.name}",
                         hint="Check the practice's status in the Practices panel, then try again.",
                         retry_tip="Ask the practice for this record again")
        self.error_label, self.retry_button = page.message, page.retry
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(self))
        self._layout.addWidget(page.box)

    def show_record(self, record: PatientRecord) -> None:
        """Show a record that has arrived in full: the banner now, the sections over the next few passes
        of the event loop (in order), then `record_shown`. Nothing of it is shown before it arrived. Out of
        sight (a tab behind another), the record is held and laid out when the tab is brought forward."""
        self._clear()
        self.state = "loaded"
        self.record = record
        self.error = None
        self.patient = record.patient
        self._ready_told = False
        if self.out_of_sight():
            self._held = True
            self._tell_ready()
            return
        self._lay_out(record)

    def out_of_sight(self) -> bool:
        """Hidden on purpose (a tab behind another: its pane hid it), not merely not shown yet."""
        return self.isHidden() and self.testAttribute(Qt.WidgetAttribute.WA_WState_ExplicitShowHide)

    def _tell_ready(self) -> None:
        if not self._ready_told:
            self._ready_told = True
            self.record_ready.emit(self)

    def _lay_out(self, record: PatientRecord) -> None:
        self._held = False
        # The banner always comes first: no section is ever on screen without it.
        self.banner = PatientBanner(record.patient, self.practice, record.retrieved_at, record=record)
        self._layout.addWidget(self.banner)
        # How the record was opened (break-glass, self/family) first, in red/amber, right under the banner.
        self.access_strip = access_strip(record)
        if self.access_strip is not None:
            self._layout.addWidget(self.access_strip)
        if record.warnings:
            self._layout.addWidget(_warnings(record.warnings))

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the body fits the pane
        scroll.setAccessibleName(f"Record of {display_name(record.patient)}")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.body_scroll = scroll
        body = QWidget()
        body.setObjectName("centralArea")
        self._body_layout = QVBoxLayout(body)
        self._body_layout.setContentsMargins(6, 6, 6, 6)
        self._body_layout.setSpacing(6)
        self._body_layout.addStretch(1)
        scroll.setWidget(body)
        self._layout.addWidget(scroll, 1)
        self._building = True
        self._next_section(self._generation, list(BODY_ORDER))
        # Trend charts (app/ui/trends.py): at the top of the results, drawn once every section is on screen.
        attach_trends(self, record, build_step)

    @property
    def research(self) -> bool:
        """The research view: the record is pseudonymised (no notes, withheld sections said as such)."""
        return bool(self.patient.pseudonym)

    def _next_section(self, generation: int, names: list[SectionName]) -> None:
        """Queue the step that adds the next section; after the last one the record is on screen."""
        _BUILD_STEPS.add(lambda: self._add_section(generation, names))

    def _block(self, name: SectionName) -> SectionBlock:
        record = self.record
        assert record is not None
        section = record.sections.get(name) or Section.failed(name, "the practice's system sent nothing "
                                                                    "for this section")
        block = SectionBlock(section, self.practice, _BUILD_STEPS.add, research=self.research)
        block.retry_requested.connect(lambda which: self.section_retry_requested.emit(self, which))
        if name is SectionName.OBSERVATIONS and self._trends is not None:
            block.add_above_groups(self._trends)
        return block

    def _add_section(self, generation: int, names: list[SectionName]) -> None:
        if not shiboken6.isValid(self) or generation != self._generation or self._body_layout is None:
            return  # closed, reloading, or showing something else since
        name, rest = names[0], names[1:]
        block = self._block(name)
        self.sections[name] = block
        self._body_layout.insertWidget(self._body_layout.count() - 1, block)  # before the stretch
        block.fit()
        if rest:
            self._next_section(generation, rest)
        else:
            self._building = False
            self.record_shown.emit(self)
            self._tell_ready()

    # --- one section again (Retry in a failed section) -------------------------------------------------

    def replace_section(self, section: Section) -> None:
        """Show a section read again (a retried one) in place of the one on screen; the rest stays. A record
        held out of sight (moved to another pane meanwhile) keeps it for when it is laid out."""
        record = self.record
        if record is not None and self.held:
            self.record = dataclasses.replace(record, sections={**record.sections, section.name: section})
            return
        old = self.sections.get(section.name)
        if record is None or old is None or self._body_layout is None or not shiboken6.isValid(old):
            return
        self.record = record = dataclasses.replace(record, sections={**record.sections, section.name: section})
        if self.banner is not None and shiboken6.isValid(self.banner):  # its allergies line, "Record incomplete"
            self.banner.set_record(record)  # in place: its side-by-side accent and Copy wiring stay
        if section.name is SectionName.OBSERVATIONS and self._trends is not None:
            old.release(self._trends)  # the trend charts stay (whoever made them keeps them up to date)
        block = self._block(section.name)
        index = self._body_layout.indexOf(old)
        self._body_layout.insertWidget(index, block)
        block.fit()
        self._body_layout.removeWidget(old)
        old.hide()
        old.deleteLater()
        self.sections[section.name] = block
        if section.name is SectionName.OBSERVATIONS and self._trends is None:  # results read again: their trends
            attach_trends(self, record, build_step)

    def section_retry_failed(self, name: SectionName) -> None:
        block = self.sections.get(name)
        if block is not None and shiboken6.isValid(block):
            block.retry_failed()

    # --- trend charts (app/ui/trends.py) --------------------------------------------------------------

    def add_trends(self, widget: QWidget) -> None:
        """Put `widget` (the trend charts) at the top of the Results section, now or when it is built.
        The record view owns it from then on; showing another record drops it."""
        self._trends = widget
        block = self.sections.get(SectionName.OBSERVATIONS)
        if block is not None:
            block.add_above_groups(widget)


def watch_building(watcher: Callable[[bool], None]) -> Callable[[], None]:
    """Call `watcher(True)` when record views start being put on screen and `watcher(False)` once no step is
    left (app/ui/lock.py stops sampling input meanwhile). Returns the function that stops watching."""
    _BUILD_STEPS.watchers.append(watcher)
    return lambda: _BUILD_STEPS.watchers.remove(watcher) if watcher in _BUILD_STEPS.watchers else None


def build_step(step: Callable[[], None]) -> None:
    """Run `step` in the record views' build queue: after every step queued before it, within the GUI-stall
    budget (for parts of a record built later, such as the trend charts)."""
    _BUILD_STEPS.add(step)


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
