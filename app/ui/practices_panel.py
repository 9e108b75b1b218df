"""The practices panel: one row per practice with its colour, ODS code, live state and a Retry button."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core.model import Practice
from app.core.sessions import PracticeState, PracticeStatus
from app.ui import style


def state_text(state: PracticeState, now: datetime | None = None) -> str:
    """What the panel says about a practice: 'Connecting…', 'Online · 123 ms', 'Failed: why', 'Offline',
    'Offline · retrying in 12 s: why', 'Sign in again needed'.

    The row is already titled with the practice's name, so a reason starting with it drops it.
    """
    if state.status is PracticeStatus.CONNECTING:
        return "Connecting…"
    if state.status is PracticeStatus.ONLINE:
        ms = state.round_trip_ms
        return f"Online · {ms:.0f} ms" if ms is not None else "Online"
    if state.status is PracticeStatus.FAILED:
        return f"Failed: {without_name(state.detail, state.practice.name) or 'no reason given'}"
    if state.status is PracticeStatus.RETRYING:
        why = without_name(state.detail, state.practice.name)
        return f"Offline · {retry_text(state, now)}" + (f": {why}" if why else "")
    if state.status is PracticeStatus.SIGN_IN_NEEDED:
        return "Sign in again needed"
    return "Offline"


def retry_text(state: PracticeState, now: datetime | None = None) -> str:
    """'retrying in 12 s' (whole seconds, rounded up), or 'trying again now…' while the attempt runs."""
    if state.retry_at is None:
        return "trying again now…"
    left = (state.retry_at - (now or datetime.now(UTC))).total_seconds()
    return f"retrying in {max(1, math.ceil(left))} s" if left > 0 else "trying again now…"


_STATE_COLOURS = {
    PracticeStatus.CONNECTING: style.SECONDARY,
    PracticeStatus.ONLINE: style.SUCCESS,
    PracticeStatus.FAILED: style.ERROR,
    PracticeStatus.OFFLINE: style.SECONDARY,
    PracticeStatus.RETRYING: style.WARNING_BORDER,
    PracticeStatus.SIGN_IN_NEEDED: style.ERROR,
}


#: how each adapter is named to users (what the practice's system is reached by)
_SYSTEM_NAMES = {"fhir-r4": "FHIR R4", "gp-connect": "GP Connect"}

class PracticeRow(QFrame):
    """One practice: swatch, name, ODS code, state (wrapped, full reason readable) and Retry."""

    retry_requested = Signal(str)

    def __init__(self, practice: Practice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.practice = practice
        self.setObjectName("practiceRow")
        self.setAccessibleName(f"Practice {practice.name}")
        layout = QGridLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setHorizontalSpacing(8)
        layout.setVerticalSpacing(2)

        swatch = QLabel()
        swatch.setPixmap(style.swatch_pixmap(practice.colour, 14))
        swatch.setAccessibleName(f"{practice.name} colour")
        swatch.setAlignment(Qt.AlignmentFlag.AlignTop)
        swatch.setContentsMargins(0, 3, 0, 0)
        layout.addWidget(swatch, 0, 0, 2, 1, Qt.AlignmentFlag.AlignTop)

        name = QLabel(f"<b>{_escape(practice.name)}</b>")
        name.setWordWrap(True)
        name.setAccessibleName(practice.name)
        layout.addWidget(name, 0, 1)

        system = _SYSTEM_NAMES.get(practice.adapter, practice.adapter)
        ods = QLabel(f"ODS {practice.ods_code} · {system}")
        ods.setObjectName("secondary")
        ods.setAccessibleName(f"ODS code {practice.ods_code}, connected by {system}")
        layout.addWidget(ods, 1, 1)

        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.state_label, 2, 0, 1, 3)  # full width: failure reasons can be long

        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("secondaryButton")
        self.retry_button.setAccessibleName(f"Retry signing in to {practice.name}")
        self.retry_button.setToolTip(f"Sign in to {practice.name} again")
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(practice.id))
        layout.addWidget(self.retry_button, 0, 2, 2, 1, Qt.AlignmentFlag.AlignTop)
        layout.setColumnStretch(1, 1)
        self.set_state(PracticeState(practice, PracticeStatus.OFFLINE))

    def set_state(self, state: PracticeState) -> None:
        self.state = state
        self.show_state()

    def show_state(self, now: datetime | None = None) -> None:
        """Say the state (again: the countdown of a practice retrying moves on each second)."""
        state = self.state
        text = state_text(state, now)
        colour = _STATE_COLOURS[state.status]
        self.state_label.setText(f"<span style='color:{colour}'>●</span> {_escape(text)}")
        self.state_label.setAccessibleName(f"{self.practice.name}: {text}")
        tip = text
        if state.server is not None and state.server.software:
            tip += f"\n{state.server.software}" + (f" (FHIR {state.server.fhir_version})"
                                                    if state.server.fhir_version else "")
        if state.status is PracticeStatus.RETRYING and state.retry_at is not None:
            tip += f"\nNext attempt at {state.retry_at.astimezone().strftime('%H:%M:%S')}; Retry tries now."
        if state.status is PracticeStatus.SIGN_IN_NEEDED and state.detail:
            tip += f"\n{state.detail}"
        self.state_label.setToolTip(tip)
        can_retry = state.status in (PracticeStatus.FAILED, PracticeStatus.OFFLINE, PracticeStatus.RETRYING)
        self.retry_button.setEnabled(can_retry)
        self.retry_button.setVisible(can_retry)  # only where there is something to retry: no row of grey buttons


class PracticesPanel(QWidget):
    """The list of configured practices and a 'Sign in to all practices' button."""

    retry_requested = Signal(str)
    sign_in_all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practicesPanel")
        self.rows: dict[str, PracticeRow] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(8)

        self.summary = QLabel("No practices configured")
        self.summary.setObjectName("secondary")
        self.summary.setAccessibleName("Practices summary")
        self.summary.setWordWrap(True)
        outer.addWidget(self.summary)

        self.sign_in_button = QPushButton("Sign in to all practices")
        self.sign_in_button.setAccessibleName("Sign in to all practices")
        self.sign_in_button.setToolTip("Sign in to every configured practice at once (F5)")
        self.sign_in_button.clicked.connect(self.sign_in_all_requested)
        outer.addWidget(self.sign_in_button)

        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("practiceScroll")
        self.scroll_area.setAccessibleName("Practices")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        holder = QWidget()
        self.rows_layout = QVBoxLayout(holder)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(6)
        self.rows_layout.addStretch(1)
        self.scroll_area.setWidget(holder)
        outer.addWidget(self.scroll_area, 1)

        # The countdown of practices retrying by themselves: ticks once a second, only while one is waiting.
        self.countdown = QTimer(self)
        self.countdown.setInterval(1000)
        self.countdown.timeout.connect(self._tick)

    def set_practices(self, practices: list[Practice]) -> None:
        for row in self.rows.values():
            row.setParent(None)
            row.deleteLater()
        self.rows.clear()
        for practice in practices:
            row = PracticeRow(practice)
            row.retry_requested.connect(self.retry_requested)
            self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
            self.rows[practice.id] = row
        self.sign_in_button.setEnabled(bool(practices))
        self._update_summary()

    def set_state(self, state: PracticeState) -> None:
        row = self.rows.get(state.practice.id)
        if row is not None:
            row.set_state(state)
            self._update_summary()
            self._update_countdown()

    def _waiting(self) -> list[PracticeRow]:
        return [r for r in self.rows.values()
                if r.state.status is PracticeStatus.RETRYING and r.state.retry_at is not None]

    def _update_countdown(self) -> None:
        if self._waiting():
            if not self.countdown.isActive():
                self.countdown.start()
        else:
            self.countdown.stop()

    def _tick(self) -> None:
        now = datetime.now(UTC)
        for row in self._waiting():
            row.show_state(now)
        self._update_countdown()

    def online_count(self) -> int:
        return sum(1 for r in self.rows.values() if r.state.status is PracticeStatus.ONLINE)

    def _update_summary(self) -> None:
        total = len(self.rows)
        if not total:
            self.summary.setText("No practices configured")
            return
        failed = sum(1 for r in self.rows.values() if r.state.status is PracticeStatus.FAILED)
        retrying = sum(1 for r in self.rows.values() if r.state.status is PracticeStatus.RETRYING)
        sign_in = any(r.state.status is PracticeStatus.SIGN_IN_NEEDED for r in self.rows.values())
        text = f"{self.online_count()} of {total} practices online"
        if retrying:
            text += f" · {retrying} offline, retrying"
        if failed:
            text += f" · {failed} failed"
        if sign_in:
            text += " · your sign-in has ended: sign in again to carry on (open records stay open)"
        self.summary.setText(text)
        label = "Sign in again" if sign_in else "Sign in to all practices"
        if self.sign_in_button.text() != label:
            self.sign_in_button.setText(label)
            self.sign_in_button.setAccessibleName(label)
        # Everyone signed in: the button stays (to sign in again later) but no longer asks to be pressed.
        quiet = self.online_count() == total
        if (self.sign_in_button.objectName() == "secondaryButton") != quiet:
            self.sign_in_button.setObjectName("secondaryButton" if quiet else "")
            style.repolish(self.sign_in_button)


def without_name(text: str, name: str) -> str:
    """'Oakwood Surgery: the server…' -> 'the server…' where the practice is already named."""
    prefix = f"{name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
