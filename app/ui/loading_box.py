"""The "Opening the record…" page a record tab shows while it waits: what is being opened, and a busy bar."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget


def loading_box(text: str, accessible_name: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(24, 24, 24, 24)
    label = QLabel(text)
    label.setObjectName("heading")
    label.setWordWrap(True)
    label.setAccessibleName(accessible_name)
    layout.addWidget(label)
    busy = QProgressBar()
    busy.setRange(0, 0)
    busy.setTextVisible(False)
    busy.setMaximumWidth(320)
    busy.setAccessibleName(accessible_name)
    layout.addWidget(busy)
    layout.addStretch(1)
    return box
