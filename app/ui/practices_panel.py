"""The practices panel: one row per practice with its colour, ODS code, live state and a Retry button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
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


def state_text(state: PracticeState) -> str:
    """What the panel says about a practice: 'Connecting…', 'Online · 123 ms', 'Failed: why', 'Offline'.

    The row is already titled with the practice's name, so a reason starting with it drops it.
    """
    if state.status is PracticeStatus.CONNECTING:
        return "Connecting…"
    if state.status is PracticeStatus.ONLINE:
        ms = state.round_trip_ms
        return f"Online · {ms:.0f} ms" if ms is not None else "Online"
    if state.status is PracticeStatus.FAILED:
        return f"Failed: {without_name(state.detail, state.practice.name) or 'no reason given'}"
    return "Offline"


_STATE_COLOURS = {
    PracticeStatus.CONNECTING: style.SECONDARY,
    PracticeStatus.ONLINE: style.SUCCESS,
    PracticeStatus.FAILED: style.ERROR,
    PracticeStatus.OFFLINE: style.SECONDARY,
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
        text = state_text(state)
        colour = _STATE_COLOURS[state.status]
        self.state_label.setText(f"<span style='color:{colour}'>●</span> {_escape(text)}")
        self.state_label.setAccessibleName(f"{self.practice.name}: {text}")
        tip = text
        if state.server is not None and state.server.software:
            tip += f"\n{state.server.software}" + (f" (FHIR {state.server.fhir_version})"
                                                    if state.server.fhir_version else "")
        self.state_label.setToolTip(tip)
        self.retry_button.setEnabled(state.status in (PracticeStatus.FAILED, PracticeStatus.OFFLINE))


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

    def online_count(self) -> int:
        return sum(1 for r in self.rows.values() if r.state.status is PracticeStatus.ONLINE)

    def _update_summary(self) -> None:
        total = len(self.rows)
        if not total:
            self.summary.setText("No practices configured")
            return
        failed = sum(1 for r in self.rows.values() if r.state.status is PracticeStatus.FAILED)
        text = f"{self.online_count()} of {total} practices online"
        if failed:
            text += f" · {failed} failed"
        self.summary.setText(text)


def without_name(text: str, name: str) -> str:
    """'Oakwood Surgery: the server…' -> 'the server…' where the practice is already named."""
    prefix = f"{name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
