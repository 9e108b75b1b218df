"""No Python wrapper of an object Qt frees on its own can outlive it.

PySide keeps one Python wrapper per C++ address. An object that Qt made itself (a cloned QStandardItem, a
layout item made by addWidget, a view's default delegate) is freed by Qt without telling Python; if
Python still holds its wrapper, the next object Qt puts at that address is handed that stale wrapper
(seen as "QStandardItem.sizeHint() takes no arguments" from a view's delegate, and as crashes). The
window therefore never holds such wrappers: items are made in Python (Qt tells Python when it frees
those) or written through the model's index API, and the views ask delegates they own.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QEvent
from PySide6.QtGui import QStandardItem
from PySide6.QtWidgets import QAbstractItemDelegate, QAbstractItemView, QApplication

from app.core.nhs_number import format_nhs_number
from tests.ui.test_window import TIMEOUT_MS, open_from_results, search, shared_patient

pytestmark = pytest.mark.gui

DELEGATE_LOOKUPS = ("itemDelegateForIndex(", "itemDelegateForRow(", "itemDelegateForColumn(")
REPO = Path(__file__).resolve().parents[2]


def wrappers_of_items_qt_made() -> list[str]:
    """Every live wrapper of a model item that Qt made itself (and so may free without telling Python)."""
    gc.collect()
    return [type(w).__name__ for w in shiboken6.getAllValidWrappers()
            if isinstance(w, QStandardItem) and not shiboken6.createdByPython(w)]


def test_searching_opening_and_closing_leaves_no_wrapper_qt_can_free(qtbot, window, network) -> None:
    number, registrations, family = shared_patient(network)
    for _ in range(2):
        search(qtbot, window, family.lower())  # many rows, then replaced: Qt frees every item
        search(qtbot, window, format_nhs_number(number))  # a group with a row per registration
        patients = {(p.practice_id, p.local_id): p for p in window.search_panel.model.patients}
        views = [open_from_results(qtbot, window, patients[key]) for key in registrations]
        for view in views:
            qtbot.waitUntil(lambda v=view: not v.building, timeout=TIMEOUT_MS)
        for view in views:
            window.records.close_view(view)
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the closed tabs' widgets are gone
    assert wrappers_of_items_qt_made() == []


def test_views_that_measure_with_a_delegate_own_it(qtbot, window, network) -> None:
    """A view Python asks for sizes paints with a delegate Python made; the rest use Qt's own, which no
    code here ever asks for (its wrapper would be looked up by address)."""
    number, registrations, _ = shared_patient(network)
    search(qtbot, window, format_nhs_number(number))
    patients = {(p.practice_id, p.local_id): p for p in window.search_panel.model.patients}
    view = open_from_results(qtbot, window, patients[registrations[0]])
    qtbot.waitUntil(lambda: not view.building, timeout=TIMEOUT_MS)
    measuring = [window.search_panel.tree, *(b.table for b in view.sections.values() if b.table is not None)]
    assert len(measuring) > 1
    for item_view in window.findChildren(QAbstractItemView):
        delegate = item_view.itemDelegate()
        if item_view in measuring:
            assert isinstance(delegate, QAbstractItemDelegate), item_view.accessibleName()
        if delegate is not None:
            assert shiboken6.createdByPython(delegate), item_view.accessibleName()


def test_no_code_asks_a_view_for_a_delegate_it_did_not_set() -> None:
    sources = [p for p in (REPO / "app").rglob("*.py")]
    asking = [str(p.relative_to(REPO)) for p in sources
              if any(call in p.read_text(encoding="utf-8") for call in DELEGATE_LOOKUPS)]
    assert asking == []
