"""Fixtures shared by the window tests."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QWidget

from app.ui import style


@pytest.fixture
def host(qtbot) -> QWidget:
    """A shown 900 x 700 widget with the window's style sheet, to put a record view in."""
    holder = QWidget()
    holder.setStyleSheet(style.STYLE_SHEET)
    holder.resize(900, 700)
    qtbot.addWidget(holder)
    holder.show()
    return holder
