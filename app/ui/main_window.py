"""The main window: practices panel, search, and record tabs, wired to the core through the bridge.

Nothing here decides policy, writes audit or speaks HTTP: every call goes to MosaicCore on the
bridge's loop, and every answer comes back to the GUI thread through the bridge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from adapters.base import AdapterError
from app.core.display import display_name, format_date, format_datetime
from app.core.model import PatientRecord, PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.policy import FLAG_SELF_OR_FAMILY, PolicyDecision, PolicyError, PolicyFileError
from app.core.query import QueryError, parse_query
from app.core.search import PracticeResults, SearchOutcome
from app.core.service import AccessSummary, MosaicCore
from app.core.sessions import PracticeState, PracticeStatus
from app.ui import style
from app.ui.access_dialogs import BreakGlassDialog, ReasonDialog
from app.ui.access_history import AccessHistoryWindow
from app.ui.bridge import AsyncBridge
from app.ui.empty_state import NoPracticesPanel
from app.ui.message_area import MessageArea
from app.ui.patient_actions import PatientActions
from app.ui.practices_panel import PracticesPanel
from app.ui.practices_strip import PracticesFold, PracticesStrip
from app.ui.record_tabs import RecordArea
from app.ui.record_view import RecordView
from app.ui.results_fold import ResultsFold
from app.ui.results_model import AccessMark
from app.ui.search_panel import SearchPanel
from app.ui.section_retry import retry_section
from app.ui.timeline_view import AllPracticesView, open_all_practices

if TYPE_CHECKING:
    from app.core.audit.journal import DestinationStatus
    from app.ui.locality.window import LocalityWindow
    from app.ui.lock import WindowLock

StartDemo = Callable[[], list[Practice]]
STATUS_MS = 15000
RESTRICTED_MARK = "Restricted — break-glass"
SELF_FAMILY_MARK = "You or family? — reason needed"


@dataclass(frozen=True)
class AccessGrant:
    """What a record view was opened with under the access policy; Reload and Retry reuse it."""

    purpose: str | None = None
    break_glass: bool = False


class MainWindow(QMainWindow):
    """Signals let tests and benchmarks wait for the window instead of sleeping."""

    practice_state_changed = Signal(object)  # PracticeState
    sign_in_finished = Signal(object)  # list[PracticeState], when every practice has settled
    search_finished = Signal(object)  # SearchOutcome (None if the search itself failed)
    record_finished = Signal(object)  # RecordView, once it shows the record or the error
    outbox_status_changed = Signal(object)  # list[DestinationStatus], once the status bar shows it
    access_dialog_opened = Signal(object)  # ReasonDialog or BreakGlassDialog, shown (window-modal) with open()
    access_refused = Signal(str)  # the status-bar message, once a refused attempt has been journaled
    closed = Signal()

    def __init__(self, bridge: AsyncBridge, *, start_demo: StartDemo | None = None) -> None:
        super().__init__()
        self.bridge = bridge
        self.core: MosaicCore | None = None
        # What the window knows of the core, as copies: the GUI thread never reads the core's live state
        # (the core's thread changes it); everything else comes through the bridge.
        self._practices: dict[str, Practice] = {}
        self._has_policy = False
        self._decisions: dict[tuple[str, str], PolicyDecision] = {}  # (practice, local id) -> from the core
        self._start_demo = start_demo
        self._started = False
        self._search_generation = 0
        self._search_future: concurrent.futures.Future[Any] | None = None
        self._loads: dict[int, concurrent.futures.Future[Any]] = {}
        self._grants: dict[int, AccessGrant] = {}  # id(view) -> the reason / break-glass it was opened with
        self.access_dialog: ReasonDialog | BreakGlassDialog | None = None
        self.lock: WindowLock | None = None  # the idle lock, set once the window is built (app.build_window)
        self._lock_watched = False
        self.access_history: AccessHistoryWindow | None = None
        self.locality: LocalityWindow | None = None  # the Locality view, made when first opened (Ctrl+Shift+L)
        self._upstream_problem: str | None = None
        self.setWindowTitle("Mosaic · GP practices")
        self.setAccessibleName("Mosaic")
        self.setWindowIcon(style.app_icon())
        self._fit_to_screen(1400, 880)
        self.setStyleSheet(style.STYLE_SHEET)
        self._build_widgets()
        self._build_actions()
        self.patient_actions = PatientActions(self)  # title, copy NHS number, print / PDF (app/ui/patient_actions.py)
        self._build_folds()
        self._set_tab_order()

    # -- construction ------------------------------------------------------------------------------

    def _fit_to_screen(self, width: int, height: int) -> None:
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and screen.width() > 0:
            width = min(width, screen.width() - 40)
            height = min(height, screen.height() - 40)
        self.resize(width, height)

    def _build_widgets(self) -> None:
        self.practices_panel = PracticesPanel()
        self.practices_panel.retry_requested.connect(self.retry)
        self.practices_panel.sign_in_all_requested.connect(self.sign_in_all)
        self.practices_dock = QDockWidget("Practices", self)
        self.practices_dock.setObjectName("practicesDock")
        self.practices_dock.setAccessibleName("Practices panel")
        self.practices_dock.setWidget(self.practices_panel)
        self.practices_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                        | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.practices_dock.setMinimumWidth(250)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.practices_dock)
        self.resizeDocks([self.practices_dock], [290], Qt.Orientation.Horizontal)
        for button in self.practices_dock.findChildren(QWidget):
            if button.inherits("QAbstractButton") and not button.accessibleName():
                button.setAccessibleName("Close practices panel")  # the dock's own title-bar button

        self.search_panel = SearchPanel()
        self.search_panel.search_requested.connect(self.run_search)
        self.search_panel.open_requested.connect(self.open_patient)
        self.search_panel.open_all_requested.connect(self.open_all_practices)
        self.records = RecordArea()
        self.records.view_closed.connect(self._view_closed)
        self.records.views_changed.connect(self._update_record_actions)

        main = QWidget()
        main.setObjectName("centralArea")
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(10, 10, 10, 6)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setAccessibleName("Search and records")
        self.splitter.addWidget(self.search_panel)
        self.splitter.addWidget(self.records)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.practices_strip = PracticesStrip()  # stands for the practices panel while every practice is well
        self.search_panel.add_to_search_row(self.practices_strip)
        main_layout.addWidget(self.splitter)
        self.messages = MessageArea(self.statusBar())  # outcomes that stay (app/ui/message_area.py)
        main_layout.addWidget(self.messages)

        self.no_practices = NoPracticesPanel(can_start_demo=self._start_demo is not None)
        self.no_practices.start_demo_requested.connect(self.start_demo)
        self.pages = QStackedWidget()
        self.pages.addWidget(main)
        self.pages.addWidget(self.no_practices)
        self.setCentralWidget(self.pages)

        self.audit_label = QLabel("Audit: not started")
        self.audit_label.setObjectName("auditStatus")
        self.audit_label.setAccessibleName("Audit upload status")
        self.audit_label.setToolTip("Entries of the audit journal still to be sent to the practices. "
                                    "View ▸ Access history (Ctrl+H) lists what was recorded.")
        self.statusBar().addPermanentWidget(self.audit_label)
        self.user_label = QLabel("")
        self.user_label.setAccessibleName("Signed-in user")
        self.statusBar().addPermanentWidget(self.user_label)
        self.role_label = QLabel("")  # the user's role under the access policy; the research view says so
        self.role_label.setAccessibleName("Role under the access policy")
        self.role_label.hide()
        self.statusBar().addPermanentWidget(self.role_label)
        self.online_label = QLabel("No practices")
        self.online_label.setAccessibleName("Practices online")
        self.statusBar().addPermanentWidget(self.online_label)
        self.statusBar().setAccessibleName("Status")

    def _action(self, text: str, shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
                slot: Callable[[], Any], tip: str) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        bar.setAccessibleName("Menu bar")
        file_menu = bar.addMenu("&File")
        self.quit_action = self._action("&Quit", QKeySequence.StandardKey.Quit, self.close, "Close Mosaic")
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        file_menu.addAction(self.quit_action)

        practices_menu = bar.addMenu("&Practices")
        self.sign_in_action = self._action("&Sign in to all practices", "F5", self.sign_in_all,
                                           "Sign in to every configured practice at once")
        practices_menu.addAction(self.sign_in_action)
        self.show_practices_action = self.practices_dock.toggleViewAction()
        self.show_practices_action.setText("Show &practices panel")
        self.show_practices_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        practices_menu.addAction(self.show_practices_action)
        self.start_demo_action = self._action("Start &demo practices", None, self.start_demo,
                                              "Start demo practices on this computer (made-up patients)")
        self.start_demo_action.setVisible(self._start_demo is not None)
        practices_menu.addAction(self.start_demo_action)

        search_menu = bar.addMenu("&Search")
        self.find_action = self._action("&Find a patient", QKeySequence.StandardKey.Find,
                                        self.search_panel.focus_search,
                                        "Type an NHS number, a name (family name first) or a date of birth")
        self.find_action.setShortcut(QKeySequence("Ctrl+F"))
        search_menu.addAction(self.find_action)
        self.results_action = self._action("Go to &results", "Ctrl+Shift+R", self.search_panel.focus_results,
                                           "Move to the search results")
        search_menu.addAction(self.results_action)

        record_menu = bar.addMenu("&Record")
        self.close_tab_action = self._action("&Close record tab", "Ctrl+W", self.close_current_tab,
                                             "Close the record tab you are looking at")
        self.split_action = self._action("&Split view", "Ctrl+\\", self.split_view,
                                         "Show the current record beside the others")
        self.move_action = self._action("&Move tab to other pane", "Ctrl+Shift+M", self.move_tab,
                                        "Move the current record tab to the next pane")
        self.next_tab_action = self._action("&Next record tab", "Ctrl+PgDown", lambda: self._cycle_tab(1),
                                            "Show the next record tab in this pane")
        self.previous_tab_action = self._action("&Previous record tab", "Ctrl+PgUp",
                                                lambda: self._cycle_tab(-1),
                                                "Show the previous record tab in this pane")
        for action in (self.close_tab_action, self.split_action, self.move_action, self.next_tab_action,
                       self.previous_tab_action):
            record_menu.addAction(action)
        self.reload_action = self._action("&Reload record", "Ctrl+R", self.reload_current,
                                          "Ask the practice for the current record again (also retries a "
                                          "record that could not be opened)")
        record_menu.addAction(self.reload_action)

        view_menu = bar.addMenu("&View")
        self.next_pane_action = self._action("Next &area", "F6", lambda: self._cycle_focus(1),
                                             "Move between practices, search, results and records")
        self.previous_pane_action = self._action("Previous a&rea", "Shift+F6", lambda: self._cycle_focus(-1),
                                                 "Move between practices, search, results and records")
        view_menu.addAction(self.next_pane_action)
        view_menu.addAction(self.previous_pane_action)
        self.access_history_action = self._action("Access &history…", "Ctrl+H", self.open_access_history,
                                                  "Who opened which records: the audit journal on this "
                                                  "computer, with filters and export")
        view_menu.addAction(self.access_history_action)
        self.locality_action = self._action("&Locality…", "Ctrl+Shift+L", self.open_locality,
                                            "Appointments, capacity and demand across the practices, compared "
                                            "with peers (figures only, no patient)")
        view_menu.addAction(self.locality_action)
        self._update_record_actions()

    def _build_folds(self) -> None:
        """The results give their height to an open record; the practices panel folds to a strip when all is well
        (app/ui/results_fold.py, app/ui/practices_strip.py)."""
        self.results_fold = ResultsFold(self.search_panel, self.splitter, self.records)
        self.find_action.triggered.connect(self.results_fold.show_results)
        self.practices_fold = PracticesFold(self.practices_panel, self.practices_dock, self.practices_strip,
                                            self.show_practices_action,
                                            may_unfold=lambda: self.lock is None or not self.lock.locked)

    def _set_tab_order(self) -> None:
        panel = self.search_panel
        QWidget.setTabOrder(panel.box, panel.search_button)
        QWidget.setTabOrder(panel.search_button, panel.tree)

    # -- the core ----------------------------------------------------------------------------------

    def set_core(self, core: MosaicCore) -> None:
        """Use `core` from now on. Build it with `on_state=window.on_core_state`."""
        self.core = core
        practices = list(core.practices)  # fixed for the core's life
        self._practices = {p.id: p for p in practices}
        self._has_policy = core.policy is not None  # fixed for the core's life
        self._decisions = {}
        self.practices_panel.set_practices(practices)
        self.search_panel.set_practices(practices)
        for state in core.sessions.states():  # before the core's thread has started on them
            self.practices_panel.set_state(state)
        self._update_online()
        self.pages.setCurrentIndex(0 if practices else 1)
        self.practices_dock.setVisible(bool(practices))
        self.practices_fold.refresh()
        self.sign_in_action.setEnabled(bool(practices))
        if self.access_history is not None:
            self.access_history.set_core(core)
        self.search_panel.set_access_check(self._restriction if self._has_policy else None)

    def _restriction(self, patient: PatientSummary) -> AccessMark | None:
        """The mark a search result gets when opening it will need break-glass or (self/family) a reason and be
        flagged for review (the core decided it when the result arrived)."""
        decision = self._decisions.get((patient.practice_id, patient.local_id))
        if decision is None:
            return None
        if decision.needs == "break-glass":
            return AccessMark(RESTRICTED_MARK, "this record is restricted by the practice. It opens only by "
                              "break-glass, with a written reason, and the access is flagged for review.",
                              withholds_address=True)  # the core withheld the address (SHOWN_WHEN_RESTRICTED)
        if FLAG_SELF_OR_FAMILY in decision.flags:
            return AccessMark(SELF_FAMILY_MARK, "this patient appears to be you or a member of your family. "
                              "Opening the record needs a reason and is flagged for review.", severe=False)
        return None

    def on_core_state(self, state: PracticeState) -> None:
        """The core's state listener: runs on the core's loop thread, so hop to the GUI thread."""
        self.bridge.post(lambda: self._apply_state(state))

    def _apply_state(self, state: PracticeState) -> None:
        if self.core is None or state.practice.id not in self.practices_panel.rows:
            return
        self.practices_panel.set_state(state)
        self.practices_fold.refresh()
        self._update_online()
        if state.status is PracticeStatus.FAILED:
            self.statusBar().showMessage(f"{state.practice.name}: {state.detail}", STATUS_MS)
        self.practice_state_changed.emit(state)

    def _update_online(self) -> None:
        total = len(self.practices_panel.rows)
        online = self.practices_panel.online_count()
        self.online_label.setText(f"{online} of {total} practices online" if total else "No practices")

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._started:
            self._started = True
            self.results_fold.share_height()
            QTimer.singleShot(0, self._first_shown)  # the window paints before any network starts

    def _first_shown(self) -> None:
        if self.core is not None and self._practices:
            self.sign_in_all()
            self.search_panel.focus_search()
        elif self._start_demo is not None:
            self.no_practices.start_button.setFocus()

    # -- sessions ----------------------------------------------------------------------------------

    def sign_in_all(self) -> None:
        if self.core is None or not self._practices:
            return
        self.statusBar().showMessage(f"Signing in to {len(self._practices)} practices…", STATUS_MS)
        self.bridge.submit(self._sign_in(self.core), self._signed_in, self._sign_in_failed)

    @staticmethod
    async def _sign_in(core: MosaicCore) -> tuple[list[PracticeState], AccessSummary]:
        """With an identity provider: the user signs in once (browser), then every practice opens."""
        if core.identity is not None and not core.identity.signed_in:
            await core.sign_in_user()
            return core.sessions.states(), core.access_summary()
        return await core.sign_in(), core.access_summary()

    def _signed_in(self, answer: tuple[list[PracticeState], AccessSummary]) -> None:
        states, summary = answer
        user = summary.user
        if user is not None:
            self.user_label.setText(f"Signed in: {user.display_name}" + (f" ({user.role})" if user.role else ""))
            self.user_label.setToolTip(f"Login {user.login}; SDS user id {user.sds_user_id or 'unknown'}; "
                                       f"organisation {user.org_ods or 'unknown'}")
        self._show_role(summary)
        online = sum(1 for s in states if s.status is PracticeStatus.ONLINE)
        failed = [s.practice.name for s in states if s.status is PracticeStatus.FAILED]
        message = f"Signed in: {online} of {len(states)} practices online."
        if failed:
            message += " Could not sign in to " + ", ".join(failed) + " (see the Practices panel)."
        self.statusBar().showMessage(message, STATUS_MS)
        self.sign_in_finished.emit(states)

    def _show_role(self, summary: AccessSummary) -> None:
        """The user's role under the access policy in the status bar; the research view stands out."""
        if not summary.has_policy:
            self.role_label.hide()
            return
        if summary.study is not None:
            text = f"Research view (pseudonymised) · study {summary.study}"
        else:
            text = f"Role: {summary.role}" if summary.role is not None else "No role under the access policy"
        self.role_label.setText(text)
        self.role_label.setStyleSheet("font-weight: 700;" if summary.study is not None or summary.role is None else "")
        self.role_label.setToolTip(f"Login {summary.login} under the access policy {summary.policy_source or ''}"
                                   .strip())
        self.role_label.show()

    def _sign_in_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(f"Signing in failed: {exc}", STATUS_MS)
        # Above all the audit journal: without it nothing may be shown, so say so where it is seen.
        box = QMessageBox(QMessageBox.Icon.Critical, "Mosaic could not sign in",
                          f"{exc}\n\nNo patient data can be shown until this is put right.", parent=self)
        box.setObjectName("signInError")
        box.setAccessibleName("Sign-in error")
        box.open()  # not exec(): the window keeps running
        self.sign_in_finished.emit([])

    def retry(self, practice_id: str) -> None:
        if self.core is None:
            return
        name = self._practices[practice_id].name
        self.statusBar().showMessage(f"Signing in to {name}…", STATUS_MS)

        def done(state: PracticeState) -> None:
            if state.status is PracticeStatus.ONLINE:
                self.statusBar().showMessage(f"{name} is online.", STATUS_MS)

        self.bridge.submit(self.core.retry(practice_id), done,
                           lambda exc: self.statusBar().showMessage(f"{name}: {exc}", STATUS_MS))

    def start_demo(self) -> None:
        """Start the demo practices off the GUI thread, then use them."""
        if self._start_demo is None:
            return
        self.no_practices.set_status("Starting demo practices…", busy=True)
        self.statusBar().showMessage("Starting demo practices…", STATUS_MS)
        self.bridge.submit(asyncio.to_thread(self._start_demo), self._demo_started, self._demo_failed)

    def _demo_started(self, practices: list[Practice]) -> None:
        old = self.core
        if old is not None:
            self.bridge.submit(old.close())
        try:
            core = MosaicCore(practices, on_state=self.on_core_state, on_outbox_status=self.on_outbox_status)
        except PolicyFileError as exc:  # the policy changed since Mosaic started: it never falls open
            self._demo_failed(exc)
            self._message(QMessageBox.Icon.Critical, "The access policy cannot be used", str(exc), "policyError")
            return
        self.no_practices.set_status(None)
        self.set_core(core)
        self.sign_in_all()
        self.search_panel.focus_search()

    def _demo_failed(self, exc: BaseException) -> None:
        message = f"The demo practices could not start: {exc}"
        self.no_practices.set_status(message, error=True)
        self.statusBar().showMessage(message, STATUS_MS)

    # -- search ------------------------------------------------------------------------------------

    def run_search(self, text: str) -> None:
        """Search every practice; a newer search supersedes this one (its late answers are dropped)."""
        if self.core is None:
            return
        try:
            query = parse_query(text)
        except QueryError as exc:
            self.search_panel.show_field_error(str(exc))
            return
        self.search_panel.show_field_error(None)
        if self._search_future is not None:
            self._search_future.cancel()
        self._search_generation += 1
        generation = self._search_generation
        self.search_panel.begin()
        self._decisions = {}  # the new answers bring their own
        self.statusBar().showMessage(f"Searching {len(self._practices)} practices…", STATUS_MS)

        def on_result(result: PracticeResults) -> None:  # loop thread
            self.bridge.post(lambda: self._search_result(generation, result))

        self._search_future = self.bridge.submit(
            self.core.search(query, on_result=on_result),
            lambda outcome: self._search_done(generation, outcome),
            lambda exc: self._search_failed(generation, exc))

    def _search_result(self, generation: int, result: PracticeResults) -> None:
        if generation == self._search_generation:
            for local_id, decision in result.access.items():
                self._decisions[(result.practice_id, local_id)] = decision
            self.search_panel.add_result(result)

    def _search_done(self, generation: int, outcome: SearchOutcome) -> None:
        if generation != self._search_generation:
            return

        def shown() -> None:  # every answer is on screen
            self.statusBar().showMessage(self.search_panel.count_line.text(), STATUS_MS)
            self.search_finished.emit(outcome)

        self.search_panel.finish(then=shown)

    def _search_failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._search_generation:
            return

        def shown() -> None:
            self.statusBar().showMessage(f"The search failed: {exc}", STATUS_MS)
            self.search_finished.emit(None)

        self.search_panel.finish(error=str(exc) or type(exc).__name__, then=shown)

    # -- records -----------------------------------------------------------------------------------

    def open_all_practices(self, nhs_number: str) -> AllPracticesView | None:
        """Open (or bring forward) the All practices tab for this NHS number: every practice's record in one
        timeline, with the differences (app/ui/timeline_view.py). A reason is asked for once, when needed."""
        self._watch_lock()  # the idle lock closes the reason dialog unanswered
        return open_all_practices(self, nhs_number)

    def open_patient(self, patient: PatientSummary) -> RecordView | None:
        """Open (or bring forward, if already open) this registration's record.

        The access policy is asked first (pure, on this thread): a reason or break-glass is asked for in a
        window-modal dialog and the record opens once it is given (None is returned meanwhile); a denied
        access opens nothing and is journaled by the core without any request to the practice."""
        if self.core is None:
            return None
        existing = self.records.find_view((patient.practice_id, patient.local_id))
        if existing is not None:
            self.records.focus_view(existing)
            self.statusBar().showMessage(f"{existing.title()} is already open.", STATUS_MS)
            return existing
        if self.access_dialog is not None:
            return None  # one question at a time (the dialog is window-modal)
        if not self._has_policy:
            return self._open_view(patient, AccessGrant())
        decision = self._decisions.get((patient.practice_id, patient.local_id))
        # Not from this window's results, or a reason was needed when they came: ask the core, which knows
        # whether a reason given since for this patient covers it (app/core/session_reasons.py).
        if decision is None or decision.needs == "reason":
            self.bridge.submit(self.core.decided(patient.practice_id, patient),
                               lambda d: self._decided(patient, d),
                               lambda exc: self.statusBar().showMessage(f"Not opened: {exc}", STATUS_MS),
                               receiver=self)
            return None
        return self._decided(patient, decision)

    def _decided(self, patient: PatientSummary, decision: PolicyDecision) -> RecordView | None:
        """Open, ask, or refuse, as the policy decided (the core checks again when the record is asked for)."""
        key = (patient.practice_id, patient.local_id)
        self._decisions[key] = decision
        if self.records.find_view(key) is not None or self.access_dialog is not None:
            return None  # opened, or another question asked, while the core was deciding
        if decision.needs == "allowed":
            return self._open_view(patient, AccessGrant())
        if decision.needs == "denied":
            self._deny(patient, decision)
        else:
            self._ask(patient, decision)
        return None

    # -- the access policy -------------------------------------------------------------------------

    def _where(self, patient: PatientSummary) -> str:
        assert self.core is not None
        return f"{display_name(patient)} at {self._practices[patient.practice_id].name}"

    def _ask(self, patient: PatientSummary, decision: PolicyDecision) -> None:
        """A reason or break-glass dialog; the record opens when it is accepted."""
        assert self.core is not None
        practice = self._practices[patient.practice_id]
        kind = BreakGlassDialog if decision.needs == "break-glass" else ReasonDialog
        dialog = kind(decision, _identified(patient), practice.name, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._access_given(patient, dialog))
        dialog.rejected.connect(lambda: self._access_cancelled(patient, dialog))
        self.access_dialog = dialog
        self._watch_lock()
        self.statusBar().showMessage(
            f"Break-glass is needed to open {self._where(patient)}." if kind is BreakGlassDialog
            else f"A reason for access is needed to open {self._where(patient)}.", STATUS_MS)
        dialog.open()  # not exec(): the window carries on when the user answers
        self.access_dialog_opened.emit(dialog)

    def _watch_lock(self) -> None:
        """The idle lock (set on the window once built) closes what names a patient: the policy's dialogs."""
        lock = getattr(self, "lock", None)
        if lock is not None and not self._lock_watched:
            lock.locked_changed.connect(self._locked_changed)
            self._lock_watched = True

    def _locked_changed(self, locked: bool) -> None:
        """Locked: the pending question goes away unanswered (nothing opens, nothing is journaled)."""
        if not locked:
            return
        dialog, self.access_dialog = self.access_dialog, None
        if dialog is not None:
            dialog.reject()  # no longer the pending dialog: _access_cancelled ignores it
        for box in self.findChildren(QMessageBox, "accessDenied"):
            box.close()

    def _access_given(self, patient: PatientSummary, dialog: ReasonDialog | BreakGlassDialog) -> None:
        if dialog is not self.access_dialog:
            return
        self.access_dialog = None
        if self.core is None:
            return
        self._open_view(patient, AccessGrant(dialog.reason(), isinstance(dialog, BreakGlassDialog)))

    def _access_cancelled(self, patient: PatientSummary, dialog: ReasonDialog | BreakGlassDialog) -> None:
        """A cancelled reason opens nothing and records nothing; a cancelled break-glass is journaled as a
        denied attempt on a restricted record (the core does that, and sends nothing to the practice)."""
        if dialog is not self.access_dialog:
            return  # closed by the lock, not by the user
        self.access_dialog = None
        if isinstance(dialog, BreakGlassDialog):
            self._journal_refusal(patient, "break-glass was cancelled")
        else:
            self.statusBar().showMessage(f"Not opened: no reason for access was given for {self._where(patient)}.",
                                         STATUS_MS)

    def _deny(self, patient: PatientSummary, decision: PolicyDecision) -> None:
        """No tab: say why, and let the core journal the denied attempt (no request leaves for the practice)."""
        why = decision.why
        self.statusBar().showMessage(f"Not opened: {why}", STATUS_MS)
        self._message(QMessageBox.Icon.Warning, "Access denied",
                      f"The record of {self._where(patient)} cannot be opened.\n\n{why}\n\nThis attempt is "
                      "recorded in the audit journal.", "accessDenied")
        self._journal_refusal(patient, None)

    def _journal_refusal(self, patient: PatientSummary, what: str | None) -> None:
        assert self.core is not None
        where = self._where(patient)

        def settled(result: object) -> None:
            if isinstance(result, PolicyError):
                why = result.decision.why
            elif isinstance(result, BaseException):
                why = f"the attempt could not be recorded: {result}"
            else:  # the policy let it through after all (changed meanwhile); the user said no, so not shown
                why = "nothing is shown"
            message = f"Not opened: {where}" + (f" ({what})" if what else "") + f". {why}"
            self.statusBar().showMessage(message, STATUS_MS)
            self.access_refused.emit(message)

        self.bridge.submit(self.core.open_record(patient.practice_id, patient.local_id), settled, settled)

    def _message(self, icon: QMessageBox.Icon, title: str, text: str, name: str) -> QMessageBox:
        box = QMessageBox(icon, title, text, parent=self)
        box.setObjectName(name)
        box.setAccessibleName(title)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the window keeps running
        return box

    def grant_of(self, view: RecordView) -> AccessGrant:
        """The reason / break-glass `view` was opened with (Reload and Retry reuse it without asking)."""
        return self._grants.get(id(view), AccessGrant())

    def _open_view(self, patient: PatientSummary, grant: AccessGrant) -> RecordView:
        assert self.core is not None
        practice = self._practices[patient.practice_id]
        view = RecordView(patient, practice)
        self._grants[id(view)] = grant
        view.retry_requested.connect(self._load)
        view.section_retry_requested.connect(lambda v, name: retry_section(self, v, name))
        view.record_ready.connect(self._record_ready)
        self.records.add(view)
        self._load(view)
        return view

    def _load(self, view: RecordView) -> None:
        if isinstance(view, AllPracticesView):  # every practice at once, with the reason it was opened with
            view.reload()
            return
        assert self.core is not None
        if view.state != "loading":  # a new view already shows that it is loading
            view.show_loading()
        token = id(view)
        old = self._loads.pop(token, None)
        if old is not None:
            old.cancel()
        practice_id, local_id = view.key
        self.statusBar().showMessage(f"Opening {display_name(view.patient)} from {view.practice.name}…",
                                     STATUS_MS)

        def done(record: PatientRecord) -> None:
            if self._loads.get(token) is future:
                del self._loads[token]
                view.show_record(record)  # the banner now, the sections in the next passes: _record_ready
                self.records.refresh_tab(view)

        def failed(exc: BaseException) -> None:
            if self._loads.get(token) is future:
                del self._loads[token]
                if isinstance(exc, PolicyError):  # the policy changed since the view was opened
                    message = f"Not opened under the access policy: {exc.decision.why}"
                elif isinstance(exc, AdapterError):
                    message = exc.message
                else:
                    message = str(exc) or type(exc).__name__
                view.show_error(message)
                self.statusBar().showMessage(f"Could not open {view.title()}: {message}", STATUS_MS)
                self.record_finished.emit(view)

        core = self.core
        grant = self.grant_of(view)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()  # until the request goes out
        self._loads[token] = future

        def start() -> None:
            # The request goes out in the next pass of the event loop, once this one's tabs are on screen:
            # opening several records at once does their GUI work before the core thread gets busy on them.
            nonlocal future
            if self._loads.get(token) is not future:
                return  # closed or reloaded meanwhile
            future = self.bridge.submit(core.open_record(practice_id, local_id, purpose=grant.purpose,
                                                         break_glass=grant.break_glass), done, failed)
            self._loads[token] = future

        QTimer.singleShot(0, self, start)
        self._update_record_actions()

    def _record_ready(self, view: RecordView) -> None:
        """The whole record, every section included, is on screen (or held for when its tab is in front)."""
        self.statusBar().showMessage(f"Opened {view.title()}.", STATUS_MS)
        self.record_finished.emit(view)

    def _view_closed(self, view: RecordView) -> None:
        self._grants.pop(id(view), None)
        future = self._loads.pop(id(view), None)
        if future is not None:
            future.cancel()

    def close_current_tab(self) -> None:
        if not self.records.close_current():
            self.statusBar().showMessage("No record is open.", STATUS_MS)

    def split_view(self) -> None:
        if not self.records.split_current():
            self._explain_no_split()

    def move_tab(self) -> None:
        if not self.records.move_current_to_other():
            self._explain_no_split()

    def _explain_no_split(self) -> None:
        if len(self.records.views()) < 2:
            message = "Open another record to show two side by side."
        else:
            message = "This pane holds only one record: use Move tab to other pane (Ctrl+Shift+M)."
        self.statusBar().showMessage(message, STATUS_MS)

    def reload_current(self) -> None:
        view = self.records.current_view()
        if view is not None and view.state != "loading":
            self._load(view)

    def _cycle_tab(self, step: int) -> None:
        pane = self.records.current_pane
        if pane.count():
            pane.setCurrentIndex((pane.currentIndex() + step) % pane.count())
            pane.tabBar().setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _cycle_focus(self, step: int) -> None:
        areas: list[QWidget] = [self.search_panel.box, self.search_panel.tree]
        if self.records.views():
            areas.append(self.records.current_pane.tabBar())
        if self.practices_dock.isVisible():
            areas.append(self.practices_panel.sign_in_button)
        elif self.practices_strip.isVisible():  # folded to its strip: F6 reaches it, Space unfolds it
            areas.append(self.practices_strip.button)
        focus = self.focusWidget()
        current = next((i for i, w in enumerate(areas) if focus is w or (focus and w.isAncestorOf(focus))), -1)
        areas[(current + step) % len(areas)].setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _update_record_actions(self) -> None:
        # Enabled with any record open, so the shortcut explains itself (status bar) rather than do nothing.
        count = len(self.records.views())
        for action in (self.close_tab_action, self.split_action, self.move_action, self.reload_action,
                       self.next_tab_action, self.previous_tab_action):
            action.setEnabled(count > 0)

    # -- audit -------------------------------------------------------------------------------------

    def on_outbox_status(self, status: list[DestinationStatus]) -> None:
        """The core's outbox listener: runs on the core's loop thread, so hop to the GUI thread."""
        core = self.core
        self.bridge.post(lambda: self._apply_outbox_status(core, status))

    def _apply_outbox_status(self, core: MosaicCore | None, status: list[DestinationStatus]) -> None:
        if core is not self.core:
            return  # a core that has since been replaced (the demo practices started)
        waiting = sum(d.waiting for d in status)
        refused = sum(d.refused for d in status)
        if refused:
            text = f"Audit: {refused:,} refused — see Access history"
            if waiting:
                text += f" · {waiting:,} waiting"
        elif waiting:
            text = f"Audit: {waiting:,} waiting to go upstream"
        else:
            text = "Audit: all sent"
        self.audit_label.setText(text)
        self.audit_label.setStyleSheet(f"color: {style.ERROR}; font-weight: 600;" if refused else "")
        self.audit_label.setToolTip(self._outbox_tooltip(status))
        self._upstream_problem = self._refused_text(status) if refused else None
        if self.access_history is not None:
            self.access_history.set_upstream(self._upstream_problem)
        self.outbox_status_changed.emit(status)

    def _destination_name(self, status: DestinationStatus) -> str:
        """The practice (and server) its entries were committed for, whatever the directory calls it now."""
        from app.core.audit import destinations

        return destinations.name_of(status, list(self._practices.values()))

    def _outbox_tooltip(self, status: list[DestinationStatus]) -> str:
        from app.core.audit import destinations

        if not status:
            return "Every audit entry has reached its practice. Ctrl+H shows the access history."
        lines = []
        for d in status:
            parts = []
            if d.waiting:
                parts.append(f"{d.waiting:,} waiting since {format_datetime(d.oldest_waiting)}"
                             if d.oldest_waiting else f"{d.waiting:,} waiting")
            if d.refused:
                parts.append(f"{d.refused:,} refused")
            line = f"{self._destination_name(d)}: {', '.join(parts)}"
            if d.last_error:
                line += f"\n    last problem: {d.last_error}"
            stranded = destinations.stranded(d, list(self._practices.values()))
            if stranded:  # kept, never sent elsewhere: the same words as `mosaic audit status`
                line += f"\n    {stranded}"
            lines.append(line)
        lines.append("Entries are kept on this computer and sent again automatically. Ctrl+H shows the access "
                     "history.")
        return "\n".join(lines)

    def _refused_text(self, status: list[DestinationStatus]) -> str:
        parts = [f"{self._destination_name(d)} refused {d.refused:,} "
                 f"{'entry' if d.refused == 1 else 'entries'}" + (f" ({d.last_error})" if d.last_error else "")
                 for d in status if d.refused]
        return ("Upstream: " + "; ".join(parts) + ". They are kept here, listed below and included in exports; "
                "tell IT so they can be sent by hand.")

    def open_access_history(self) -> AccessHistoryWindow | None:
        """Show the Access history window (one, reused): it reads the journal as it is shown, with the
        filters it was left with (the newest entries the first time)."""
        if self.core is None:
            return None
        if self.access_history is None:
            self.access_history = AccessHistoryWindow(self.bridge, self.core, self)
            self.access_history.set_upstream(self._upstream_problem)
        self.access_history.show()
        self.access_history.raise_()
        self.access_history.activateWindow()
        self.access_history.user_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        return self.access_history

    def open_locality(self) -> LocalityWindow | None:
        """Show the Locality view (app/ui/locality/): one window, reused."""
        from app.ui.locality import open_locality

        return open_locality(self)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.access_history is not None:
            self.access_history.close()
        if self.locality is not None:
            self.locality.close()
        if self._search_future is not None:
            self._search_future.cancel()
        for future in self._loads.values():
            future.cancel()
        self._loads.clear()
        super().closeEvent(event)
        self.closed.emit()


def _identified(patient: PatientSummary) -> str:
    """The patient as the dialogs name them: enough to be sure it is the right person before opening
    (a pseudonymised patient of the research view by the pseudonym only)."""
    if getattr(patient, "pseudonym", None):
        return display_name(patient)
    details = [f"NHS No. {format_nhs_number(patient.nhs_number)}" if patient.nhs_number else "",
               f"born {format_date(patient.birth_date)}" if patient.birth_date else ""]
    shown = ", ".join(d for d in details if d)
    return f"{display_name(patient)} ({shown})" if shown else display_name(patient)
