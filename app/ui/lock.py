"""The idle lock, enforced in the window: any user input restarts an idle timer; when it runs out the
window shows a lock page instead of its patient data (docks and other windows hidden, actions off) until
the user signs in again. "Sign out" forgets every token and locks too; "Switch user" on the lock page does
the same from there: every record of the session closed, so the next person (another account at the identity
provider) starts from an empty window. The policy (how long) is the core's: app/core/session_lock.py.

Without an identity provider the user *is* the operating-system account running Mosaic (app/core/os_account.py):
Mosaic cannot become someone else there. Switch user then closes the session's records, signs out of every
practice and says how to switch: as another account in the operating system."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDockWidget, QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from app.core.session_lock import IdleLock
from app.ui.record_view import watch_building

if TYPE_CHECKING:
    from app.core.audit.model import AuditUser
    from app.core.service import MosaicCore
    from app.ui.main_window import MainWindow

_INPUT = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel,
          QEvent.Type.TouchBegin, QEvent.Type.ShortcutOverride}


class LockPage(QWidget):
    """What a locked window shows: no patient data, a way back in."""

    unlock_requested = Signal()
    switch_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("lockPage")
        self.setAccessibleName("Mosaic is locked")
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel("Mosaic is locked")
        self.title.setObjectName("lockTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setStyleSheet("font-size: 20pt; font-weight: 600;")
        self.detail = QLabel("Patient data is hidden. Sign in again to carry on.")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        self.detail.setMaximumWidth(620)  # a readable line, not the width of the screen
        self.button = QPushButton("Sign in again")
        self.button.setAccessibleName("Sign in again")
        self.button.clicked.connect(self.unlock_requested)
        self.switch_button = QPushButton("Switch user")
        self.switch_button.setObjectName("secondaryButton")
        self.switch_button.setAccessibleName("Switch user")
        self.switch_button.setToolTip("Close every record of this session and sign out, so someone else can sign in")
        self.switch_button.clicked.connect(self.switch_requested)
        layout.addWidget(self.title)
        row = QHBoxLayout()  # centred by stretches: an aligned word-wrapped label would not get its height
        row.addStretch(1)
        row.addWidget(self.detail, 4)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.switch_button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addStretch(2)


#: after seeing input, stop listening for this long: an application-wide event filter calls into Python for
#: every event of every widget (painting a record included), so it listens only until the next input
SAMPLE_INPUT_EVERY_MS = 5000


class WindowLock(QObject):
    """Install with `WindowLock(window, IdleLock.from_settings(settings))`; it lives as long as the window.

    Input is sampled, not watched: once input is seen the filter comes off for `sample_every_ms`, then goes
    back on until the next input. The window therefore locks between `timeout` and `timeout` minus that
    interval after the last input (5 s of 10 minutes), and Qt does not call into Python for every paint,
    timer and layout event while records are put on screen."""

    locked_changed = Signal(bool)

    def __init__(self, window: MainWindow, policy: IdleLock | None = None, *,
                 sample_every_ms: int = SAMPLE_INPUT_EVERY_MS) -> None:
        super().__init__(window)
        self.window = window
        self.policy = policy or IdleLock()
        self.page = LockPage()
        self.page.unlock_requested.connect(self.unlock)
        self.page.switch_requested.connect(self.switch_user)
        window.pages.addWidget(self.page)
        self._previous_page: QWidget | None = None
        self._hidden: list[QWidget] = []
        self._disabled: list[QAction] = []
        self._locked_login: str | None = None
        self._session_ended = False  # signed out (or switched user) since the last sign-in
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(self.policy.timeout_ms)
        self.timer.timeout.connect(self._idle)
        self._listening = False
        self._resume = QTimer(self)  # listening again after a pause
        self._resume.setSingleShot(True)
        self._resume.setInterval(sample_every_ms)
        self._resume.timeout.connect(self._listen)
        self.sign_out_action = QAction("Sign &out", window)
        self.sign_out_action.setToolTip("Forget every sign-in and lock the window")
        self.sign_out_action.triggered.connect(self.sign_out)
        self.lock_action = QAction("&Lock now", window)
        self.lock_action.setShortcut("Ctrl+L")
        self.lock_action.triggered.connect(lambda: self.lock())  # not the checked flag as the reason
        window.addAction(self.lock_action)
        menu = window.menuBar().actions()[0].menu() if window.menuBar().actions() else None
        if isinstance(menu, QMenu):  # QAction.menu() is typed as returning a QObject
            for action in (self.lock_action, self.sign_out_action):  # before the menu's last item (Quit)
                if menu.actions():
                    menu.insertAction(menu.actions()[-1], action)
                else:
                    menu.addAction(action)
        # Nor while records are put on screen: the application-wide filter is a call into Python for every
        # event of every widget they make, show and lay out (a third of the stall of ten records opened at
        # once). Input then goes unseen for at most that long: the lock may come that much earlier.
        self._building = False
        self._detached = False
        self._stop_watching = watch_building(self._records_building)
        self._listen()
        # The filter sits on the application, which outlives the window: take it off when the window
        # goes, or Qt would call into a deleted Python object with the next key press.
        window.closed.connect(self.detach)
        window.destroyed.connect(self.detach)
        self.timer.start()

    def _records_building(self, building: bool) -> None:
        if self._detached or not shiboken6.isValid(self):
            return
        self._building = building
        if building:
            self._pause()
        elif not self._resume.isActive():  # not within a pause after input
            self._listen()

    def _listen(self) -> None:
        app = QApplication.instance()
        if app is not None and not self._listening and not self._building and not self._detached:
            app.installEventFilter(self)
            self._listening = True

    def _pause(self) -> None:
        app = QApplication.instance()
        if app is not None and self._listening:
            app.removeEventFilter(self)
        self._listening = False

    @property
    def listening(self) -> bool:
        """Whether the next input will be seen (it is not for a few seconds after the last)."""
        return self._listening

    def detach(self, *_: object) -> None:
        self._detached = True
        self._stop_watching()
        self._resume.stop()
        self._pause()
        self.timer.stop()

    @property
    def locked(self) -> bool:
        return self.policy.locked

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in _INPUT and not self.policy.locked:
            self.policy.touch()
            self.timer.start()
            self._pause()
            self._resume.start()
        return False

    def _idle(self) -> None:
        if self.policy.due():
            self.lock()
        elif not self.policy.locked:
            self.timer.start(max(1, round((self.policy.timeout_s - self.policy.idle_s()) * 1000)))

    def lock(self, reason: str = "Patient data is hidden. Sign in again to carry on.") -> None:
        if self.policy.locked:
            self.page.detail.setText(reason)
            return
        self.policy.lock()
        self.timer.stop()
        core = self.window.core
        identity = getattr(core, "identity", None)
        self._locked_login = identity.user.login if identity is not None and identity.user is not None else None
        self.page.detail.setText(reason)
        self._previous_page = self.window.pages.currentWidget()
        self.window.pages.setCurrentWidget(self.page)
        self._hidden = [w for w in self.window.findChildren(QDockWidget) if w.isVisible()]
        history = getattr(self.window, "access_history", None)
        if isinstance(history, QWidget) and history.isVisible():
            self._hidden.append(history)
        for widget in self._hidden:
            widget.hide()
        keep = {self.sign_out_action, self.lock_action, getattr(self.window, "quit_action", None)}
        self._disabled = [a for a in self.window.findChildren(QAction) if a.isEnabled() and a not in keep]
        for action in self._disabled:
            action.setEnabled(False)
        self.window.statusBar().clearMessage()
        self.page.button.setFocus()
        self._retitle()
        self.locked_changed.emit(True)

    def unlock(self) -> None:
        """Re-run the sign-in (OpenID Connect in the browser); unlock only for the same person."""
        core = self.window.core
        identity = getattr(core, "identity", None)
        if core is None or identity is None:  # no identity provider configured: nothing to re-check
            ended, self._session_ended = self._session_ended, False
            self._unlocked()
            if ended:  # the practices were signed out with the session: sign in again as this account
                self.window.sign_in_all()
            return
        self.page.detail.setText("Finish signing in in your web browser…")
        self.page.button.setEnabled(False)
        self.window.bridge.submit(identity.sign_in(), self._signed_in, self._sign_in_failed)

    def _signed_in(self, user: Any) -> None:
        self.page.button.setEnabled(True)
        if self._locked_login is not None and user.login != self._locked_login:
            self.page.detail.setText(f"Signed in as {user.display_name}, but this window was locked by "
                                     "someone else. Sign out first, then sign in.")
            core = self.window.core
            if core is not None:  # on the core's thread, like every change to the core
                self.window.bridge.submit(_sign_out_identity(core))
            return
        core = self.window.core
        if core is not None:
            # Queued before sign_in_all's work on the same loop, so the practices open as this user.
            self.window.bridge.submit(_use_user(core, user.audit_user()))
            if self._locked_login is None:  # after a sign-out the practice sessions were closed too
                self.window.sign_in_all()
        self._unlocked()

    def _sign_in_failed(self, exc: BaseException) -> None:
        self.page.button.setEnabled(True)
        self.page.detail.setText(f"Sign-in did not work: {exc}")

    def _unlocked(self) -> None:
        self.policy.unlocked_by_sign_in()
        for action in self._disabled:
            action.setEnabled(True)
        for widget in self._hidden:
            widget.show()
        self._disabled, self._hidden = [], []
        if self._previous_page is not None:
            self.window.pages.setCurrentWidget(self._previous_page)
        self.timer.start(self.policy.timeout_ms)
        self._retitle()
        self.locked_changed.emit(False)

    def sign_out(self) -> None:
        """Forget every token (the user's and every practice's), and lock."""
        self.lock("You are signed out. Sign in to carry on.")
        self._end_session()

    def switch_user(self) -> None:
        """Close the session's records, sign out (identity provider and practices) and let anyone sign in."""
        self.lock()
        self._end_session()
        core = self.window.core
        if core is not None and getattr(core, "identity", None) is not None:
            self.page.detail.setText("Signed out, and this session's records are closed. The next person signs in "
                                     "with their own account.")
        else:
            from app.core import os_account

            login = os_account.os_login()
            self.page.detail.setText(
                f"This session's records are closed and every practice is signed out. Mosaic works as this "
                f"computer's account ({login}): to work as someone else, switch user in the operating system and "
                f"start Mosaic there. Sign in again to carry on as {login}.")

    def _end_session(self) -> None:
        """Signed out, the next person to sign in may be someone else: drop what was on screen, the messages
        that named patients, and an NHS number copied to the clipboard."""
        self._locked_login = None
        self._session_ended = True
        numbers = {v.patient.nhs_number for v in self.window.records.views() if v.patient.nhs_number}
        for view in list(self.window.records.views()):
            self.window.records.close_view(view)
        self.window.search_panel.model.clear_results()
        messages = getattr(self.window, "messages", None)
        if messages is not None:
            messages.clear()
        clipboard = QApplication.clipboard()
        if clipboard is not None and clipboard.text() in numbers:
            clipboard.clear()
        core = self.window.core
        if core is not None:
            self.window.bridge.submit(core.sign_out(), lambda _: None, lambda exc: None)

    def _retitle(self) -> None:
        """The window title names the patient in front: not while locked."""
        actions = getattr(self.window, "patient_actions", None)
        if actions is not None:
            actions.set_locked(self.policy.locked)


async def _sign_out_identity(core: MosaicCore) -> None:
    if core.identity is not None:
        core.identity.sign_out()


async def _use_user(core: MosaicCore, user: AuditUser) -> None:
    core.set_user(user)
