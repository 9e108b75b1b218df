"""Access history and the audit status in the real window, against the demo practices (pytest-qt, offscreen)."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QWidget,
)

from app.core.display import display_name
from app.core.model import PatientSummary
from app.core.nhs_number import format_nhs_number
from app.core.os_account import os_login
from app.ui.access_history import (
    ACTION,
    OUTCOME,
    PATIENT,
    PRACTICE,
    SECTIONS,
    TIME,
    USER,
    AccessHistoryWindow,
)
from app.ui.main_window import MainWindow
from tests.ui.test_window import open_from_results, search

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


def search_and_open(qtbot, win: MainWindow, network, practice_index: int = 0) -> PatientSummary:
    server = network.servers[practice_index]
    # from the end of the list: the core's tests count the AuditEvents of the first patients
    person = [p for p in server.population if p.nhs_number][-1]
    outcome = search(qtbot, win, format_nhs_number(person.nhs_number))
    patient = next(p for p in outcome.patients if p.practice_id == server.practice.id)
    view = open_from_results(qtbot, win, patient)
    assert view.state == "loaded", view.state
    return patient


def open_history(qtbot, win: MainWindow) -> AccessHistoryWindow:
    win.activateWindow()
    win.search_panel.box.setFocus()
    qtbot.keyClick(win, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    history = win.access_history
    assert history is not None, "Ctrl+H opens Access history"
    with qtbot.waitSignal(history.loaded, timeout=TIMEOUT_MS) as blocker:
        pass  # the newest entries are listed as the window opens
    assert blocker.args[0] is not None, history.count_line.text()
    qtbot.waitExposed(history)
    return history


def show(qtbot, history: AccessHistoryWindow, *, press_enter_in: QWidget | None = None) -> list:
    with qtbot.waitSignal(history.loaded, timeout=TIMEOUT_MS) as blocker:
        if press_enter_in is not None:
            press_enter_in.setFocus()
            qtbot.keyClick(press_enter_in, Qt.Key.Key_Return)
        else:
            qtbot.mouseClick(history.show_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is not None, history.count_line.text()
    return blocker.args[0]


def cells(history: AccessHistoryWindow, row: int) -> list[str]:
    model = history.model
    return [model.index(row, c).data() for c in range(model.columnCount())]


def test_access_history_lists_the_read_by_patient_and_by_user_and_exports_csv(qtbot, window, network,
                                                                             tmp_path) -> None:
    patient = search_and_open(qtbot, window, network, 0)
    other = search_and_open(qtbot, window, network, 1)
    practice = network.servers[0].practice
    login = os_login()

    history = open_history(qtbot, window)
    assert history.isVisible() and not history.isModal()
    everything = history.model.rowCount()
    assert everything == 4, "two reads and two searches: one row per search, whichever practices were asked"
    entries = 2 * 2 + 2 * 2 * len(network.practices)  # each an intent and its outcome, at every practice
    assert history.count_line.text() == f"4 rows ({entries} journal entries)"

    # By patient: the read of their record (and the search for their NHS number), typed with spaces, Enter.
    history.patient_edit.clear()
    qtbot.keyClicks(history.patient_edit, format_nhs_number(patient.nhs_number))
    rows = show(qtbot, history, press_enter_in=history.patient_edit)
    reads = [r for r in range(history.model.rowCount()) if cells(history, r)[ACTION] == "Record opened"]
    assert len(reads) == 1
    read = cells(history, reads[0])
    assert read[USER] == login
    assert read[PRACTICE] == practice.name
    assert read[PATIENT] == f"{display_name(patient)} · {format_nhs_number(patient.nhs_number)}"
    assert read[OUTCOME] == "Success"
    assert read[SECTIONS].startswith("Whole record") or "Problems" in read[SECTIONS]
    assert "Problems" in history.model.index(reads[0], SECTIONS).data(Qt.ItemDataRole.ToolTipRole)
    assert all(cells(history, r)[PATIENT].endswith(format_nhs_number(patient.nhs_number)) for r in range(len(rows)))
    assert other.nhs_number != patient.nhs_number

    # Only record opens, then by user, then by practice.
    history.action_combo.setCurrentIndex(history.action_combo.findData("read"))
    assert len(show(qtbot, history)) == 1
    history.set_filters(user=login, action="read")
    assert len(show(qtbot, history)) == 2
    history.set_filters(user="somebody-else")
    assert show(qtbot, history) == []
    assert history.count_line.text() == "No entries match these filters."
    history.set_filters(practice_id=practice.id, action="read")
    [only] = show(qtbot, history)
    assert only.entry.practice_id == practice.id

    # Dates: today includes everything so far; from tomorrow, nothing.
    today = date.today()
    history.set_filters(since=today, until=today, action="read")
    assert len(show(qtbot, history)) == 2
    history.set_filters(since=today + timedelta(days=1))
    assert show(qtbot, history) == []
    history.set_filters(since=today + timedelta(days=1), until=today)
    history.show_entries()
    assert "is after the To date" in history.field_error.text()
    history.set_filters()
    assert history.from_date.text() == "any date" and not history.from_date.isEnabled()

    # An invalid NHS number is refused before anything is read.
    history.patient_edit.setText("943 476 5918")
    history.show_entries()
    assert history.field_error.isVisible() and "check digit" in history.field_error.text()
    assert history.patient_edit.property("invalid") is True

    # Sorting: newest first by default, oldest first when the Time heading is clicked.
    history.set_filters(user=login)
    shown = show(qtbot, history)
    times = [r.entry.recorded_at for r in history.model.rows]
    assert times == sorted(times, reverse=True)
    history.table.sortByColumn(TIME, Qt.SortOrder.AscendingOrder)
    assert [r.entry.recorded_at for r in history.model.rows] == sorted(times)

    # Export what matches, as CSV.
    target = tmp_path / "history.csv"
    with qtbot.waitSignal(history.exported, timeout=TIMEOUT_MS) as blocker:
        history.export_to(target, "csv")
    assert blocker.args[0] == target
    with target.open(encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == sum(len(r.all_entries()) for r in shown), "every entry of every row"
    assert {r["user_login"] for r in exported} == {login}
    read_rows = [r for r in exported if r["action"] == "read"]
    assert sorted(r["patient_nhs_number"] for r in read_rows) == sorted([patient.nhs_number, other.nhs_number])
    assert {r["practice_id"] for r in read_rows} == {patient.practice_id, other.practice_id}

    fhir = tmp_path / "history.json"
    with qtbot.waitSignal(history.exported, timeout=TIMEOUT_MS):
        history.export_to(fhir, "fhir")
    bundle = json.loads(fhir.read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == len(exported)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"AuditEvent"}


def test_every_interactive_widget_in_access_history_has_an_accessible_name(qtbot, window) -> None:
    history = open_history(qtbot, window)
    interactive = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)
    unnamed = [w for w in history.findChildren(QWidget)
               if isinstance(w, interactive) and w.isVisible() and not w.accessibleName()
               and not isinstance(w.parent(), (QComboBox, QAbstractSpinBox))]
    assert unnamed == [], [type(w).__name__ + ":" + w.objectName() for w in unnamed]
    assert history.table.accessibleName() == "Access history entries"
    assert QApplication.focusWidget() is history.user_edit, "Ctrl+H puts the cursor in the first filter"
    qtbot.keyClick(history, Qt.Key.Key_Escape)
    assert not history.isVisible()


def test_status_bar_counts_entries_waiting_while_a_practice_audit_endpoint_is_down(qtbot, window, network) -> None:
    qtbot.waitUntil(lambda: window.audit_label.text() == "Audit: all sent", timeout=TIMEOUT_MS)
    server = network.servers[2]
    with server.faults.override(mode="http-503", match="/AuditEvent"):
        search_and_open(qtbot, window, network, 2)
        qtbot.waitUntil(lambda: "waiting to go upstream" in window.audit_label.text(), timeout=TIMEOUT_MS)
        tip = window.audit_label.toolTip()
        assert server.practice.name in tip and "waiting since" in tip
    core = window.core
    assert core is not None and core._sender is not None

    def sent() -> bool:  # the practice is back: skip the backoff rather than wait it out
        if window.audit_label.text() != "Audit: all sent":
            window.bridge.loop.call_soon_threadsafe(core._sender.retry_now)
            return False
        return True

    qtbot.waitUntil(sent, timeout=TIMEOUT_MS)
    assert window.audit_label.styleSheet() == ""


def test_locality_insight_looks_are_listed_in_words_and_can_be_listed_alone(qtbot, window, network) -> None:
    """Every look at locality figures is journaled (issue 13): the access history lists it as a locality insight
    row that names no patient and says in words what was shown, and the Action filter lists those rows alone."""
    from app.core.insight_access import InsightQuery

    search_and_open(qtbot, window, network, 0)
    ids = tuple(p.id for p in network.practices)
    one = network.practices[1]
    journaled = [InsightQuery("show", metric="dna_rate", by="practice", period="2026-03", practices=ids),
                 InsightQuery("peers", metric="utilisation", period="2026-02..2026-03", practices=(one.id,))]
    for query in journaled:
        window.bridge.submit(window.core.journal_insight(query)).result(timeout=10)

    history = open_history(qtbot, window)
    history.action_combo.setCurrentIndex(history.action_combo.findText("Locality insight"))
    rows = show(qtbot, history)
    assert len(rows) == 2, [cells(history, r) for r in range(history.model.rowCount())]
    listed = {cells(history, r)[SECTIONS]: cells(history, r) for r in range(2)}
    shown = listed["Figures shown: DNA rate by practice, March 2026"]
    assert shown[ACTION] == "Locality insight" and shown[PATIENT] == "No patient (locality figures)"
    assert shown[PRACTICE] == f"{len(ids)} practices" and shown[OUTCOME] == "Success"
    row = next(r for r in range(2) if cells(history, r)[SECTIONS] == shown[SECTIONS])
    tip = history.model.index(row, PRACTICE).data(Qt.ItemDataRole.ToolTipRole)
    assert all(p.name in tip for p in network.practices)
    assert "show dna_rate by practice, 2026-03" in history.model.index(row, SECTIONS).data(Qt.ItemDataRole.ToolTipRole)
    peers = listed["Peer comparison: Utilisation, February 2026 to March 2026"]
    assert peers[PRACTICE] == one.name

    history.action_combo.setCurrentIndex(history.action_combo.findData("read"))
    assert all(cells(history, r)[ACTION] == "Record opened" for r in range(len(show(qtbot, history))))
