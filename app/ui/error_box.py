"""The page a record tab shows when nothing of the record could be opened: what failed, why, and Retry.

Shared by a practice's record tab (app/ui/record_view.py) and the All practices tab (timeline_view.py)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout, QWidget


@dataclass(frozen=True)
class ErrorBox:
    box: QWidget
    message: QLabel  # the reason, selectable (to quote to IT)
    retry: QPushButton


def error_box(heading_text: str, message: str, retry_name: str, *, hint: str | None = None,
              retry_tip: str | None = None) -> ErrorBox:
    """`heading_text` says what could not be opened, `message` why; `hint` what to check; the Retry button
    is named `retry_name` for screen readers. The caller connects Retry."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(24, 24, 24, 24)
    layout.setSpacing(12)
    frame = QFrame()
    frame.setObjectName("failure")
    inner = QVBoxLayout(frame)
    inner.setContentsMargins(12, 10, 12, 10)
    heading = QLabel(heading_text)
    heading.setObjectName("sectionTitle")
    heading.setWordWrap(True)
    heading.setAccessibleName(heading_text)
    inner.addWidget(heading)
    label = QLabel(message)
    label.setObjectName("failureText")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(f"Error: {message}")
    inner.addWidget(label)
    if hint:
        hint_label = QLabel(hint)
        hint_label.setWordWrap(True)
        hint_label.setAccessibleName(hint)
        inner.addWidget(hint_label)
    layout.addWidget(frame)
    retry = QPushButton("Retry")
    retry.setAccessibleName(retry_name)
    if retry_tip:
        retry.setToolTip(retry_tip)
    layout.addWidget(retry, 0, Qt.AlignmentFlag.AlignLeft)
    layout.addStretch(1)
    return ErrorBox(box, label, retry)
