"""The access policy in the real window: reason for access, break-glass, denied practices, the restricted mark
in the results, the flagged-for-review filter in Access history (pytest-qt, offscreen, real demo practices)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from app.core.audit.model import Action, Outcome
from app.core.audit.recorder import is_flagged
from app.core.model import PatientSummary
from app.core.nhs_number import format_nhs_number
from app.core.os_account import os_login
from app.ui.access_dialogs import BreakGlassDialog, ReasonDialog
from app.ui.access_history import FLAG, AccessHistoryWindow
from app.ui.main_window import RESTRICTED_MARK, SELF_FAMILY_MARK, MainWindow
from app.ui.record_view import RecordView
from app.ui.results_model import RESTRICTION_ROLE
from tests.core.test_policy import write_policy
from tests.ui.test_access_history import open_history, show
from tests.ui.test_window import search, select_row

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000
LOGIN = os_login()  # without an identity provider the window's user is the OS login
REASONS = ["Direct care", "Medicines reconciliation"]
BREAK_GLASS_REASON = "Patient collapsed at the hub; need allergies and medication now."


def policy(*, practices: str = '["*"]', reason_required: bool = False,
           restricted: dict[str, list[str]] | None = None, nhs_number: str | None = None) -> str:
    text = (f'[roles.clinician]\npractices = {practices}\nreason_required = {str(reason_required).lower()}\n'
            f'reasons = {REASONS!r}\n\n[users."{LOGIN}"]\nrole = "clinician"\n').replace("'", '"')
    if nhs_number:
        text += f'nhs_number = "{nhs_number}"\n'
    for pid, numbers in (restricted or {}).items():
        text += f'\n[practices.{pid}]\nrestricted = {numbers!r}\n'.replace("'", '"')
    return text


@pytest.fixture
def policy_window(qtbot, network, tmp_path, monkeypatch) -> Iterator[Callable[[str], MainWindow]]:
    """Build the real window (build_window, so the core loads the machine policy this test named) under `text`."""
    from app.ui.app import build_window

    built = []

    def make(text: str) -> MainWindow:
        write_policy(tmp_path, text, monkeypatch)
        win, bridge = build_window(network.practices)
        assert win.core is not None and win.core.policy is not None
        built.append((win, bridge))
        qtbot.addWidget(win)
        with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS):
            win.show()
        qtbot.waitExposed(win)
        win.activateWindow()
        return win

    yield make
    for win, bridge in built:
        win.close()
        bridge.shutdown(win.core)


def lone_patient(network, server_index: int = 0, nth: int = -1):
    """A patient with an NHS number registered at this practice only (one results row)."""
    shared = {s.nhs_number for s in network.shared_patients}
    server = network.servers[server_index]
    return server, [p for p in server.population if p.nhs_number and p.nhs_number not in shared][nth]


def find_result(qtbot, win: MainWindow, server, person) -> PatientSummary:
    activate(qtbot, win)  # after a dialog has closed
    outcome = search(qtbot, win, format_nhs_number(person.nhs_number))
    return next(p for p in outcome.patients if p.practice_id == server.practice.id)


def press_enter_on(qtbot, win: MainWindow, patient: PatientSummary) -> None:
    qtbot.keyClick(select_row(win, patient), Qt.Key.Key_Return)


def ask_to_open(qtbot, win: MainWindow, patient: PatientSummary):
    """Enter on the patient's row: the policy's dialog opens (window-modal, the window keeps running)."""
    with qtbot.waitSignal(win.access_dialog_opened, timeout=TIMEOUT_MS) as blocker:
        press_enter_on(qtbot, win, patient)
    dialog = blocker.args[0]
    qtbot.waitExposed(dialog)
    assert dialog.isModal() and win.access_dialog is dialog
    return dialog


def journal(win: MainWindow, **filters):
    """The journal entries as the core reads them (on its loop), oldest first."""
    assert win.core is not None
    return win.bridge.submit(win.core.access_history(newest_first=False, **filters)).result(timeout=10)


def activate(qtbot, win: MainWindow) -> None:
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=TIMEOUT_MS)


def reload(qtbot, win: MainWindow) -> None:
    """Ctrl+R on the record tab, as a person does after the dialog has closed."""
    activate(qtbot, win)
    win.records.current_pane.tabBar().setFocus()
    qtbot.keyClick(win.records.current_pane.tabBar(), Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)


def tick(qtbot, button) -> None:
    """Click a radio button or check box on its indicator, as a person does (its middle may be empty space)."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def accept(qtbot, win: MainWindow, dialog) -> RecordView:
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    view = blocker.args[0]
    assert view.state == "loaded", view.error
    return view


# --- reason for access ----------------------------------------------------------------------------------

def test_a_reason_is_asked_for_and_lands_in_the_journal_and_reload_reuses_it(qtbot, policy_window, network) -> None:
    win = policy_window(policy(reason_required=True))
    assert win.role_label.isVisible() and win.role_label.text() == "Role: clinician"
    server, person = lone_patient(network)
    patient = find_result(qtbot, win, server, person)

    dialog = ask_to_open(qtbot, win, patient)
    assert isinstance(dialog, ReasonDialog)
    assert [b.text() for b in dialog.choices] == REASONS
    assert not dialog.ok_button.isEnabled(), "no reason yet"
    assert dialog.self_family_warning is None
    assert win.records.views() == [], "nothing opens before the reason is given"
    tick(qtbot, dialog.choices[0])
    assert dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.other_edit, "  Reviewing   bloods for the duty GP ")
    assert dialog.other.isChecked(), "typing a reason of one's own chooses Other"
    view = accept(qtbot, win, dialog)
    assert win.access_dialog is None
    assert view.access_strip is None and not view.title().startswith("⚠")

    [read] = journal(win, actions=[Action.READ], patient_nhs_number=person.nhs_number)
    assert read.purpose == "Reviewing bloods for the duty GP"
    assert read.outcome is Outcome.SUCCESS and not is_flagged(read)

    # Reload asks nothing again: the view remembers the reason it was opened with.
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS):
        reload(qtbot, win)
    assert win.access_dialog is None
    reads = journal(win, actions=[Action.READ], patient_nhs_number=person.nhs_number)
    assert [r.purpose for r in reads] == ["Reviewing bloods for the duty GP"] * 2


def test_cancelling_the_reason_opens_nothing_and_records_nothing(qtbot, policy_window, network) -> None:
    win = policy_window(policy(reason_required=True))
    server, person = lone_patient(network)
    patient = find_result(qtbot, win, server, person)
    before = journal(win)

    dialog = ask_to_open(qtbot, win, patient)
    tick(qtbot, dialog.choices[1])
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert win.access_dialog is None
    assert win.records.views() == []
    assert "no reason for access was given" in win.statusBar().currentMessage()

    # Something else through the core afterwards: it is the only new entry.
    other_server, other = lone_patient(network, 1)
    other_patient = find_result(qtbot, win, other_server, other)
    dialog = ask_to_open(qtbot, win, other_patient)
    tick(qtbot, dialog.choices[0])
    accept(qtbot, win, dialog)
    new = [e for e in journal(win) if e.entry_id not in {b.entry_id for b in before}]
    assert all(e.patient_nhs_number != person.nhs_number for e in new if e.action is not Action.SEARCH), new
    assert [e.purpose for e in new if e.action is Action.READ] == [REASONS[0]]


def test_self_or_family_is_warned_reason_required_and_the_record_says_so(qtbot, policy_window, network) -> None:
    server, person = lone_patient(network, 2)
    win = policy_window(policy(nhs_number=person.nhs_number))
    patient = find_result(qtbot, win, server, person)
    name_cell = win.search_panel.model.index_of((patient.practice_id, patient.local_id)).siblingAtColumn(1)
    assert name_cell.data(RESTRICTION_ROLE) == SELF_FAMILY_MARK  # said before anyone opens it

    dialog = ask_to_open(qtbot, win, patient)
    assert isinstance(dialog, ReasonDialog)
    assert dialog.self_family_warning is not None and dialog.self_family_warning.isVisible()
    warning = dialog.self_family_warning.findChild(QLabel, "stripText")
    assert "you or a member of your family" in warning.text() and "flagged for review" in warning.text()
    tick(qtbot, dialog.choices[0])
    view = accept(qtbot, win, dialog)
    strip = view.access_strip
    assert strip is not None and strip.isVisible() and strip.objectName() == "selfFamilyStrip"
    assert strip.accessibleName() == "Self or family warning"
    [read] = journal(win, actions=[Action.READ], patient_nhs_number=person.nhs_number)
    assert is_flagged(read) and read.details["flags"] == ["self-or-family"] and read.purpose == REASONS[0]


# --- break-glass ------------------------------------------------------------------------------------------

def restricted_window(policy_window, network, server_index: int = 0):
    server, person = lone_patient(network, server_index)
    win = policy_window(policy(restricted={server.practice.id: [person.nhs_number]}))
    return win, server, person


def test_break_glass_needs_the_confirmation_and_a_written_reason_then_opens_flagged(
        qtbot, policy_window, network) -> None:
    win, server, person = restricted_window(policy_window, network)
    patient = find_result(qtbot, win, server, person)
    index = win.search_panel.model.index_of((patient.practice_id, patient.local_id))
    name_cell = index.siblingAtColumn(1)
    assert name_cell.data(RESTRICTION_ROLE) == RESTRICTED_MARK
    assert RESTRICTED_MARK in name_cell.data() and RESTRICTED_MARK in name_cell.data(Qt.ItemDataRole.ToolTipRole)

    dialog = ask_to_open(qtbot, win, patient)
    assert isinstance(dialog, BreakGlassDialog)
    text = dialog.findChild(QLabel, "consequences").text()
    assert "flagged for review" in text and "may be told" in text
    assert not dialog.ok_button.isEnabled()
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    tick(qtbot, dialog.confirm)
    assert dialog.confirm.isChecked() and not dialog.ok_button.isEnabled(), "the confirmation alone is not enough"
    qtbot.keyClicks(dialog.reason_edit, "urgent . .")
    assert not dialog.ok_button.isEnabled(), "six letters is not a written reason"
    dialog.reason_edit.clear()
    qtbot.keyClicks(dialog.reason_edit, BREAK_GLASS_REASON)
    assert dialog.ok_button.isEnabled()
    tick(qtbot, dialog.confirm)
    assert not dialog.ok_button.isEnabled(), "the reason alone is not enough"
    tick(qtbot, dialog.confirm)

    view = accept(qtbot, win, dialog)
    strip = view.access_strip
    assert strip is not None and strip.isVisible() and strip.objectName() == "breakGlassStrip"
    assert strip.accessibleName() == "Opened by break-glass"
    assert BREAK_GLASS_REASON in strip.accessibleDescription()
    layout = view.layout()
    assert view.banner is not None and view.banner.isVisible(), "the patient banner stays"
    assert layout.indexOf(strip) == layout.indexOf(view.banner) + 1, "the strip is right under the banner"
    pane = win.records.pane_of(view)
    assert pane is not None and pane.tabText(pane.indexOf(view)).startswith("⚠ ")

    [entry] = journal(win, patient_nhs_number=person.nhs_number, actions=[Action.BREAK_GLASS])
    assert entry.outcome is Outcome.SUCCESS and entry.purpose == BREAK_GLASS_REASON and is_flagged(entry)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS):  # Reload: break-glass is remembered
        reload(qtbot, win)
    assert win.access_dialog is None
    assert len(journal(win, patient_nhs_number=person.nhs_number, actions=[Action.BREAK_GLASS])) == 2


def test_cancelling_break_glass_journals_a_denied_attempt_and_sends_nothing(qtbot, policy_window, network,
                                                                            demo_requests) -> None:
    win, server, person = restricted_window(policy_window, network, 1)
    patient = find_result(qtbot, win, server, person)
    asked = demo_requests(server)  # the search's AuditEvent and health checks may still land: not counted

    dialog = ask_to_open(qtbot, win, patient)
    qtbot.keyClicks(dialog.reason_edit, "Changed my mind about this one")
    with qtbot.waitSignal(win.access_refused, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].startswith("Not opened: ") and "break-glass was cancelled" in blocker.args[0]
    assert "--" not in blocker.args[0], "no command-line hints in the window"
    assert win.statusBar().currentMessage() == blocker.args[0]
    assert win.records.views() == []
    [denied] = journal(win, patient_nhs_number=person.nhs_number, actions=[Action.READ])
    assert denied.outcome is Outcome.DENIED and is_flagged(denied)
    assert denied.details["flags"] == ["break-glass"] and denied.purpose is None
    assert asked.asked() == [], "nothing reached the practice"
    assert asked.about(patient.local_id, person.nhs_number) == []


def test_the_idle_lock_closes_a_pending_break_glass_dialog_unanswered(qtbot, policy_window, network) -> None:
    win, server, person = restricted_window(policy_window, network, 2)
    patient = find_result(qtbot, win, server, person)
    dialog = ask_to_open(qtbot, win, patient)
    qtbot.keyClicks(dialog.reason_edit, BREAK_GLASS_REASON)
    win.lock.lock()
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog), timeout=TIMEOUT_MS)  # nothing naming the patient stays
    assert win.access_dialog is None and QApplication.activeModalWidget() is None
    assert win.records.views() == []
    assert journal(win, patient_nhs_number=person.nhs_number, actions=[Action.READ, Action.BREAK_GLASS]) == []


def test_a_practice_outside_the_role_is_not_searched_and_opens_nothing(qtbot, policy_window, network,
                                                                      demo_requests) -> None:
    outside = network.servers[3]
    inside = [s.practice.id for s in network.servers if s is not outside]
    win = policy_window(policy(practices=repr(inside).replace("'", '"')))
    server, person = lone_patient(network, 0)
    find_result(qtbot, win, server, person)
    panel = win.search_panel
    assert panel.notes.isVisible()
    assert f"{outside.practice.name} was not searched" in panel.notes_label.toolTip()
    assert panel.count_line.text() == "1 patient from 4 of 5 practices; 1 practice outside your role, not searched"

    asked = demo_requests(outside)
    _, stranger = lone_patient(network, 3)
    summary = stranger.summary(outside.practice.id)  # a stale result, a link: however it is asked for
    with qtbot.waitSignal(win.access_refused, timeout=TIMEOUT_MS) as blocker:
        panel.open_requested.emit(summary)
    box = win.findChild(QMessageBox, "accessDenied")
    assert box is not None and box.isVisible()
    assert "does not include practice" in box.text() and "--" not in box.text()
    assert blocker.args[0].startswith("Not opened: ")
    assert win.records.views() == [] and win.access_dialog is None
    [denied] = journal(win, practice_id=outside.practice.id, actions=[Action.READ])
    assert denied.outcome is Outcome.DENIED and denied.patient_local_id == stranger.local_id
    assert asked.asked() == [], "not one request reached the practice outside the role"
    box.close()


def test_a_policy_error_after_opening_shows_in_the_tab_and_never_crashes(qtbot, policy_window, network) -> None:
    server, person = lone_patient(network, 4)
    win = policy_window(policy())
    patient = find_result(qtbot, win, server, person)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS) as blocker:
        press_enter_on(qtbot, win, patient)  # allowed: no dialog
    view = blocker.args[0]
    assert view.state == "loaded" and win.access_dialog is None
    assert win.core is not None and win.core.policy is not None
    from app.core.policy import parse_policy

    win.core.policy = parse_policy(policy(restricted={server.practice.id: [person.nhs_number]}))  # IT changed it
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS):
        reload(qtbot, win)
    assert view.state == "error"
    assert view.error is not None and view.error.startswith("Not opened under the access policy: ")
    assert "restricted" in view.error and "--" not in view.error


# --- review -----------------------------------------------------------------------------------------------

def test_access_history_flagged_filter_shows_exactly_the_flagged_entries_and_exports_them(
        qtbot, policy_window, network, tmp_path: Path) -> None:
    win, server, person = restricted_window(policy_window, network)
    patient = find_result(qtbot, win, server, person)
    dialog = ask_to_open(qtbot, win, patient)  # a cancelled break-glass: denied
    with qtbot.waitSignal(win.access_refused, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    dialog = ask_to_open(qtbot, win, patient)  # then break-glass
    qtbot.keyClicks(dialog.reason_edit, BREAK_GLASS_REASON)
    tick(qtbot, dialog.confirm)
    accept(qtbot, win, dialog)
    other_server, other = lone_patient(network, 2)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS):  # and an ordinary open: not flagged
        press_enter_on(qtbot, win, find_result(qtbot, win, other_server, other))

    everything = journal(win)
    expected = {e.entry_id for e in everything if is_flagged(e)}
    assert len(expected) == 2 and len(everything) > len(expected)

    history: AccessHistoryWindow = open_history(qtbot, win)
    listed = history.model.rowCount()
    assert sum(len(r.all_entries()) for r in history.model.rows) == len(everything), "every entry in one row"
    assert history.flagged_check.accessibleName() == "Flagged for review only"
    tick(qtbot, history.flagged_check)
    rows = show(qtbot, history)
    assert {r.entry.entry_id for r in rows} == expected
    assert history.count_line.text() == "2 flagged rows"
    flags = sorted(history.model.index(r, FLAG).data() for r in range(history.model.rowCount()))
    assert flags == ["Break-glass · not reviewed", "Denied (Break-glass) · not reviewed"]
    reasons = {r.entry.purpose for r in rows}
    assert reasons == {None, BREAK_GLASS_REASON}
    assert all(r.entry.user.login == LOGIN and r.entry.patient_nhs_number == person.nhs_number for r in rows)

    target = tmp_path / "flagged.csv"
    with qtbot.waitSignal(history.exported, timeout=TIMEOUT_MS) as blocker:
        history.export_to(target, "csv")
    assert blocker.args[0] == target
    with target.open(encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert {r["entry_id"] for r in exported} == expected

    tick(qtbot, history.flagged_check)
    assert len(show(qtbot, history)) == listed, "unticked: everything again"


# --- a policy that cannot be used --------------------------------------------------------------------------

def test_a_bad_policy_at_start_shows_a_message_box_when_there_is_a_screen(qtbot, tmp_path, monkeypatch,
                                                                        capsys) -> None:
    from app import cli

    path = write_policy(tmp_path, "[roles.clinician]\npractices = [\"*\"\nreasons = 1\n", monkeypatch)
    shown: list[str] = []
    monkeypatch.setattr(cli, "_can_show_dialog", lambda: True)
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    assert cli.main(["demo"]) == cli.EXIT_USAGE
    [text] = shown
    assert str(path) in text and "line 3" in text
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "line 3" in err and "Traceback" not in err
