"""Outcomes that stay: a one-line message area under the records ("Record opened", "Not opened: …", exports,
errors) that keeps the latest outcome until it is dismissed, with the last few in a History menu.

The status bar still shows progress ("Searching 5 practices…") for its few seconds; every message it is given
that is an outcome (not progress, which ends in "…") also lands here, so nothing the user must read is gone
before they look. Nothing here is kept beyond the window's life; signing out clears it (it may name patients).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QStatusBar, QToolButton, QWidget

from app.ui import style

Level = Literal["info", "success", "warning", "error"]
HISTORY = 8

_ERROR_WORDS = ("could not", "failed", "refused", "denied", "not opened", "cannot", "did not", "error",
                "not saved", "not exported", "not printed")
_WARNING_WORDS = ("is needed", "needs ", "flagged for review", "no record is open", "only one record",
                  "open another record", "waiting")
_SUCCESS_WORDS = ("opened ", "signed in:", "is online", "copied", "saved", "exported", "printed", "is already open")

_ICONS = {"info": "ℹ", "success": "✓", "warning": "⚠", "error": "✕"}
_COLOURS = {"info": (style.BLUE, "#e8f1f8"), "success": (style.SUCCESS, "#e5f3eb"),
            "warning": (style.WARNING_BORDER, "#fff4e0"), "error": (style.ERROR, "#fbe9e7")}


@dataclass(frozen=True)
class Message:
    text: str
    level: Level
    at: datetime


def level_of(text: str) -> Level:
    """How serious a status message is, from its words (the window's messages are written to be read)."""
    lower = text.lower()
    if any(w in lower for w in _ERROR_WORDS):
        return "error"
    if any(w in lower for w in _WARNING_WORDS):
        return "warning"
    if lower.startswith(_SUCCESS_WORDS) or any(w in lower for w in ("copied", " saved", "exported", "printed")):
        return "success"
    return "info"


def is_progress(text: str) -> bool:
    """'Opening … from Practice 1…': progress, which the status bar shows for as long as it lasts."""
    return text.rstrip().endswith(("…", "..."))


class MessageArea(QFrame):
    """Hidden until there is an outcome to show; then it stays until dismissed (Esc on it, or ✕)."""

    posted = Signal(object)  # Message

    def __init__(self, status_bar: QStatusBar | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageArea")
        self.setAccessibleName("Messages")
        self.history: deque[Message] = deque(maxlen=HISTORY)
        self.current: Message | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 3, 6, 3)
        layout.setSpacing(8)
        self.icon = QLabel()
        self.icon.setAccessibleName("Message kind")
        layout.addWidget(self.icon)
        self.text_label = QLabel()
        self.text_label.setObjectName("messageText")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.text_label, 1)
        self.time_label = QLabel()
        self.time_label.setObjectName("secondary")
        layout.addWidget(self.time_label)
        self.history_button = QToolButton()
        self.history_button.setText("History")
        self.history_button.setAccessibleName("Earlier messages")
        self.history_button.setToolTip("The last few outcomes, newest first")
        self.history_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.history_menu = QMenu(self.history_button)
        self.history_menu.aboutToShow.connect(self._fill_history)
        self.history_button.setMenu(self.history_menu)
        layout.addWidget(self.history_button)
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("✕")
        self.dismiss_button.setAccessibleName("Dismiss message")
        self.dismiss_button.setToolTip("Dismiss (the message stays in History)")
        self.dismiss_button.clicked.connect(self.dismiss)
        layout.addWidget(self.dismiss_button)
        self.hide()
        if status_bar is not None:
            status_bar.messageChanged.connect(self._from_status_bar)

    def post(self, text: str, level: Level | None = None) -> Message:
        """Show `text` until dismissed or replaced; it joins the history."""
        message = Message(text, level or level_of(text), datetime.now())
        self.history.appendleft(message)
        self._show(message)
        self.posted.emit(message)
        return message

    def _show(self, message: Message) -> None:
        self.current = message
        border, background = _COLOURS[message.level]
        self.setStyleSheet(f"QFrame#messageArea {{ background: {background}; border: none; "
                           f"border-left: 6px solid {border}; border-top: 1px solid {style.BORDER}; }}")
        self.icon.setText(_ICONS[message.level])
        self.icon.setStyleSheet(f"color: {border if message.level != 'warning' else style.TEXT}; font-weight: 700;")
        self.text_label.setText(message.text)
        self.text_label.setAccessibleName(f"{message.level.capitalize()}: {message.text}")
        self.time_label.setText(f"{message.at:%H:%M}")
        self.history_button.setText(f"History ({len(self.history)})")
        self.show()

    def dismiss(self) -> None:
        self.current = None
        self.hide()

    def clear(self) -> None:
        """Forget every message (signing out: they may name patients)."""
        self.history.clear()
        self.history_menu.clear()
        self.dismiss()

    def texts(self) -> list[str]:
        """The history, newest first (for tests)."""
        return [m.text for m in self.history]

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape:
            self.dismiss()
            return
        super().keyPressEvent(event)

    def _from_status_bar(self, text: str) -> None:
        if text and not is_progress(text):
            self.post(text)

    def _fill_history(self) -> None:
        self.history_menu.clear()
        for message in self.history:
            action = self.history_menu.addAction(f"{_ICONS[message.level]}  {message.at:%H:%M}  {message.text}")
            action.triggered.connect(lambda _checked=False, m=message: self._show(m))
        if not self.history:
            self.history_menu.addAction("No messages").setEnabled(False)
