"""The research view in the real window: results, tab title, window title, banner and clipboard show
nothing identifying for a patient without research consent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLabel, QTabBar, QWidget

from app.core import os_account
from app.core.nhs_number import format_nhs_number
from app.ui.main_window import MainWindow
from tests.conftest import shown_window
from tests.core.test_policy import write_policy
from tests.core.test_research_view import (
    KEY,
    LOGIN,
    a_plain_patient,
    criteria_for,
    expected_pseudonym,
    fhir_server,
    leaks,
    research_policy,
)
from tests.ui.test_window import open_from_results, search

pytestmark = pytest.mark.gui
ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole,
         Qt.ItemDataRole.StatusTipRole)


@pytest.fixture
def research_window(qtbot, network, tmp_path, monkeypatch) -> Iterator[MainWindow]:
    """The real window, signed in as a researcher of study 'diab' with the study key set."""
    import keyring

    from tests.core.test_research_view import EmptyKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(EmptyKeyring())
    write_policy(tmp_path, research_policy(), monkeypatch)
    monkeypatch.setattr(os_account, "os_login", lambda: LOGIN)  # in-process: the OS account Mosaic sees
    monkeypatch.setenv("MOSAIC_SECRET_STUDY_DIAB", KEY)
    win, bridge = shown_window(qtbot, network.practices)
    try:
        yield win
    finally:
        win.close()
        bridge.shutdown(win.core)
        keyring.set_keyring(previous)


def model_texts(model: QAbstractItemModel, parent: QModelIndex | None = None) -> Iterator[str]:
    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        for column in range(model.columnCount(parent)):
            index = model.index(row, column, parent)
            for role in ROLES:
                value = index.data(role)
                if isinstance(value, str):
                    yield value
        yield from model_texts(model, model.index(row, 0, parent))
    for column in range(model.columnCount(parent)):
        header = model.headerData(column, Qt.Orientation.Horizontal)
        if isinstance(header, str):
            yield header


def window_texts(win: MainWindow) -> str:
    """Everything the window shows or tells a screen reader: titles, labels, tabs, tooltips, every model."""
    texts = [win.windowTitle(), win.statusBar().currentMessage()]
    for widget in [win, *win.findChildren(QWidget)]:
        texts += [widget.windowTitle(), widget.toolTip(), widget.accessibleName(), widget.accessibleDescription()]
        if isinstance(widget, QLabel):
            texts.append(widget.text())
        if isinstance(widget, QTabBar):
            for i in range(widget.count()):
                texts += [widget.tabText(i), widget.tabToolTip(i), widget.accessibleTabName(i)]
        if isinstance(widget, QAbstractItemView) and widget.model() is not None:
            texts += list(model_texts(widget.model()))
    return "\n".join(t for t in texts if t)


def copy_from(qtbot, view: QAbstractItemView) -> str:
    """Ctrl+C on the view's current item, as a person copies a cell; what reached the clipboard."""
    clipboard = QApplication.clipboard()
    clipboard.setText("nothing copied yet")
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QKeySequence(QKeySequence.StandardKey.Copy).toString() == "Ctrl+C"
    return clipboard.text()


def test_a_researcher_sees_no_identifier_anywhere_in_the_window(qtbot, research_window, network) -> None:
    win = research_window
    server = fhir_server(network)
    p = a_plain_patient(server)

    pseudo = expected_pseudonym(p)
    assert search(qtbot, win, format_nhs_number(p.nhs_number)) is None  # refused: no identity -> pseudonym link
    refused = window_texts(win)
    assert "find patients by study criteria" in refused and pseudo not in refused and leaks(refused, p) == []

    outcome = search(qtbot, win, criteria_for(server, p))
    summary = next(s for s in outcome.patients if s.pseudonym == pseudo)
    assert summary.practice_id == server.practice.id and summary.local_id == summary.pseudonym
    listed = window_texts(win)
    assert f"Research participant {summary.pseudonym}" in listed
    assert win.role_label.isVisible() and win.role_label.text() == "Research view (pseudonymised) · study diab"
    assert leaks(listed, p) == []

    tree = win.search_panel.tree
    index = win.search_panel.model.index_of((summary.practice_id, summary.local_id))
    assert index.isValid()
    for column in range(win.search_panel.model.columnCount(index.parent())):
        tree.setCurrentIndex(index.siblingAtColumn(column))
        copied = copy_from(qtbot, tree)
        assert leaks(copied, p) == [], copied

    view = open_from_results(qtbot, win, summary)
    assert view.state == "loaded" and view.record is not None
    assert view.title() == f"Research participant {summary.pseudonym} · {server.practice.name}"
    pane = win.records.pane_of(view)
    assert pane is not None
    assert pane.tabText(pane.indexOf(view)) == f"Research participant {summary.pseudonym} · {p.birth_date.year} · " \
                                              f"{server.practice.name}", "the pseudonym and the year of birth only"
    banner = view.banner
    assert banner is not None
    said = banner.text()
    assert f"Born {p.birth_date.year} |" in said and "NHS No. withheld (research view)" in said
    assert "Research view — pseudonymised" in said
    assert leaks(win.windowTitle(), p) == []

    shown = window_texts(win)
    assert summary.pseudonym in shown and leaks(shown, p) == []
    for table in view.findChildren(QAbstractItemView):
        if table.model() is not None and table.model().rowCount() > 0:
            table.setCurrentIndex(table.model().index(0, 0))
            assert leaks(copy_from(qtbot, table), p) == []
    for label in view.findChildren(QLabel):  # banner text is selectable: what a selection could copy
        assert leaks(label.text(), p) == [] and leaks(label.selectedText(), p) == []
