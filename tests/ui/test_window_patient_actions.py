"""The window around the patient in front: its title names them, Ctrl+Shift+C copies their NHS number, a summary
saved as PDF is journaled as an export (with its reason) before the file is written 0600, outcomes stay in a
message area, and the lock screen's Switch user closes the session's records for the next person."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core.audit.model import Action
from app.core.display import display_name
from app.core.identity import Identity
from app.core.nhs_number import format_nhs_number
from app.core.session_lock import IdleLock
from app.demo.oidc_provider import DEMO_USER, DemoOidcProvider
from app.ui.lock import WindowLock
from app.ui.main_window import MainWindow
from app.ui.patient_actions import APP_TITLE, LOCKED_TITLE
from app.ui.record_export import ExportDialog
from tests.ui.test_lock import browser
from tests.ui.test_window import TIMEOUT_MS, open_from_results, search, shared_patient

pytestmark = pytest.mark.gui


def open_shared(qtbot, win: MainWindow, network, which: int = 0):
    nhs, pairs, _family = shared_patient(network)
    search(qtbot, win, nhs)
    pid, lid = pairs[which]
    patient = next(p for p in win.search_panel.model.patients if (p.practice_id, p.local_id) == (pid, lid))
    return open_from_results(qtbot, win, patient)


def test_the_window_title_names_the_patient_in_front(qtbot, window, network) -> None:
    assert window.windowTitle() == APP_TITLE
    view = open_shared(qtbot, window, network)
    nhs = view.patient.nhs_number
    assert window.windowTitle() == f"{display_name(view.patient)} (NHS {format_nhs_number(nhs)}) — Mosaic"

    search(qtbot, window, "smith")  # someone else in front: the title follows
    other = next(p for p in window.search_panel.model.patients if p.nhs_number != nhs)
    second = open_from_results(qtbot, window, other)
    assert window.windowTitle().startswith(display_name(second.patient) + " (NHS ")
    window.records.focus_view(view)
    assert window.windowTitle().startswith(display_name(view.patient) + " (NHS ")
    window.records.close_view(view)
    window.records.close_view(second)
    assert window.windowTitle() == APP_TITLE


def test_ctrl_shift_c_copies_the_nhs_number_digits_and_the_message_area_says_so(qtbot, window, network) -> None:
    view = open_shared(qtbot, window, network)
    QApplication.clipboard().clear()
    qtbot.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: QApplication.clipboard().text() == view.patient.nhs_number, timeout=TIMEOUT_MS)
    assert QApplication.clipboard().text().isdigit() and len(QApplication.clipboard().text()) == 10
    messages = window.messages
    assert messages.isVisible() and messages.current is not None and messages.current.level == "success"
    assert messages.current.text.startswith(f"Copied NHS number {format_nhs_number(view.patient.nhs_number)}")

    QApplication.clipboard().clear()  # the banner's button does the same
    assert view.banner is not None and view.banner.copy_button is not None
    qtbot.mouseClick(view.banner.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == view.patient.nhs_number


def test_outcomes_stay_in_the_message_area_with_the_last_few_in_its_history(qtbot, window, network) -> None:
    messages = window.messages
    view = open_shared(qtbot, window, network)
    opened = f"Opened {view.title()}."
    assert messages.isVisible() and messages.current is not None and messages.current.text == opened
    window.statusBar().clearMessage()  # the status bar's few seconds are over
    assert messages.isVisible() and messages.text_label.text() == opened, "the outcome stays"
    window.statusBar().showMessage("Searching 5 practices…")  # progress is not an outcome
    assert messages.current.text == opened
    window.close_current_tab()
    window.close_current_tab()  # nothing left to close: said, and kept
    assert messages.current.text == "No record is open." and messages.current.level == "warning"
    assert messages.texts()[:2] == ["No record is open.", opened]
    messages.dismiss()
    assert not messages.isVisible() and opened in messages.texts(), "dismissed, still in the history"
    for n in range(12):
        messages.post(f"outcome {n}")
    assert len(messages.texts()) == 8 and messages.texts()[0] == "outcome 11"


def test_a_summary_saved_as_pdf_is_journaled_as_an_export_before_the_file_is_written_0600(
        qtbot, window, network, tmp_path: Path, monkeypatch) -> None:
    view = open_shared(qtbot, window, network)
    core = window.core
    target = tmp_path / "summary.pdf"
    journaled_first: list[bool] = []
    from app.core import paths

    real_write = paths.write_private_bytes

    def write(path, data: bytes) -> None:
        exports = core.journal.query(actions=[Action.EXPORT])
        journaled_first.append(any(e.purpose == "Referral letter to cardiology" for e in exports))
        real_write(path, data)

    monkeypatch.setattr(paths, "write_private_bytes", write)
    dialog = window.patient_actions.export("pdf")
    assert isinstance(dialog, ExportDialog) and dialog.isVisible()
    assert not dialog.ok_button.isEnabled(), "no reason, no export"
    dialog.reason_edit.setText("Referral letter to cardiology")
    assert dialog.path_edit is not None
    dialog.path_edit.setText(str(target))
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(window.patient_actions.exported, timeout=TIMEOUT_MS) as blocker:
        dialog.ok_button.click()
    assert blocker.args == [target]
    assert journaled_first == [True], "the export was in the journal before a byte was written"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = target.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 1000
    entry = core.journal.query(actions=[Action.EXPORT])[0]
    assert entry.patient_local_id == view.patient.local_id and entry.patient_nhs_number == view.patient.nhs_number
    assert entry.purpose == "Referral letter to cardiology" and entry.details["export"] == "pdf"
    assert window.messages.current is not None and window.messages.current.text.startswith("Saved the summary")


def test_a_summary_whose_export_cannot_be_journaled_is_not_written(qtbot, window, network, tmp_path: Path,
                                                                   monkeypatch) -> None:
    from app.core.audit.errors import AuditError

    open_shared(qtbot, window, network)
    audit = window.bridge.submit(window.core.audit())
    qtbot.waitUntil(audit.done, timeout=TIMEOUT_MS)

    async def refuse(entry, practice):
        raise AuditError("the journal's disk is full")

    monkeypatch.setattr(audit.result(), "commit", refuse)
    target = tmp_path / "never.pdf"
    dialog = window.patient_actions.export("pdf")
    assert dialog is not None and dialog.path_edit is not None
    dialog.reason_edit.setText("Referral")
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(window.patient_actions.export_failed, timeout=TIMEOUT_MS) as blocker:
        dialog.ok_button.click()
    assert "disk is full" in blocker.args[0] and blocker.args[0].startswith("Not saved")
    assert not target.exists()
    assert window.messages.current is not None and window.messages.current.level == "error"


@pytest.fixture
def provider() -> Iterator[DemoOidcProvider]:
    with DemoOidcProvider.start() as p:
        yield p


@pytest.fixture
def idp_window(qtbot, network, provider):
    from app.ui.app import build_window

    win, bridge = build_window(network.practices)
    assert win.core is not None
    win.core.identity = Identity(provider.settings, open_url=browser)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.sign_in_finished, timeout=TIMEOUT_MS):
        win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    bridge.shutdown(win.core)


def test_switch_user_on_the_lock_screen_closes_the_session_for_the_next_person(qtbot, idp_window, network,
                                                                               provider) -> None:
    win = idp_window
    core = win.core
    signed = win.bridge.submit(core.identity.sign_in())
    qtbot.waitUntil(signed.done, timeout=TIMEOUT_MS)
    core.set_user(signed.result().audit_user())
    view = open_shared(qtbot, win, network)
    win.patient_actions.copy_nhs_number()
    assert QApplication.clipboard().text() == view.patient.nhs_number

    lock = WindowLock(win, IdleLock(timeout_s=600))
    lock.lock()
    assert win.windowTitle() == LOCKED_TITLE, "a locked window's title names nobody"
    assert lock.page.switch_button.isVisible()
    lock.page.switch_button.click()
    qtbot.waitUntil(lambda: core.identity.user is None, timeout=TIMEOUT_MS)
    assert lock.locked and not win.records.views() and win.search_panel.model.rowCount() == 0
    assert win.messages.texts() == [] and QApplication.clipboard().text() == ""
    assert "next person signs in with their own account" in lock.page.detail.text()

    provider.user = {**DEMO_USER, "sub": "demo-555021935200", "preferred_username": "nurse2", "name": "Sam Okafor",
                     "given_name": "Sam", "family_name": "Okafor", "nhsid_useruid": "555021935200"}
    with qtbot.waitSignal(lock.locked_changed, timeout=TIMEOUT_MS) as blocker:
        lock.page.button.click()
    assert blocker.args == [False]
    # the new user is set on the core's loop, queued ahead of anything the window asks next (FIFO): wait for it
    qtbot.waitUntil(lambda: core.user is not None and core.user.login == "nurse2", timeout=TIMEOUT_MS)
    assert win.windowTitle() == APP_TITLE
    qtbot.waitUntil(lambda: win.practices_panel.online_count() > 0, timeout=TIMEOUT_MS)


def test_without_an_identity_provider_switch_user_closes_the_session_and_says_how_to_switch(qtbot, window,
                                                                                            network) -> None:
    """The user is the operating-system account: Mosaic cannot become someone else, so it closes the session's
    records, signs out of every practice and says to switch user in the operating system."""
    from app.core import os_account
    from app.core.sessions import PracticeStatus

    open_shared(qtbot, window, network)
    lock = WindowLock(window, IdleLock(timeout_s=600))
    lock.lock()
    lock.page.switch_button.click()
    assert not window.records.views() and window.search_panel.model.rowCount() == 0
    assert "switch user in the operating system" in lock.page.detail.text()
    assert os_account.os_login() in lock.page.detail.text()
    qtbot.waitUntil(lambda: all(s.status is not PracticeStatus.ONLINE for s in window.core.sessions.states()),
                    timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.sign_in_finished, timeout=TIMEOUT_MS):
        lock.page.button.click()  # carry on as this account: the practices sign in again
    assert not lock.locked and window.practices_panel.online_count() == len(network.practices)


def test_printing_is_journaled_as_an_export_first_and_a_printer_that_fails_is_said(qtbot, window, network,
                                                                                    tmp_path: Path) -> None:
    from PySide6.QtPrintSupport import QPrinter

    view = open_shared(qtbot, window, network)
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    target = tmp_path / "printed.pdf"
    printer.setOutputFileName(str(target))  # "Print to file", as the print dialog offers
    actions = window.patient_actions
    with qtbot.waitSignal(actions.exported, timeout=TIMEOUT_MS):
        actions.print_with(printer, view.record, view.practice, "Copy for the district nurse")
    entry = window.core.journal.query(actions=[Action.EXPORT])[0]
    assert entry.purpose == "Copy for the district nurse" and entry.details["export"] == "print"
    assert target.read_bytes().startswith(b"%PDF") and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert window.messages.current is not None and window.messages.current.text.startswith("Printed the summary")

    broken = QPrinter(QPrinter.PrinterMode.HighResolution)
    broken.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    broken.setOutputFileName(str(tmp_path))  # a folder: the printer cannot start
    with qtbot.waitSignal(actions.export_failed, timeout=TIMEOUT_MS) as blocker:
        actions.print_with(broken, view.record, view.practice, "Copy for the district nurse")
    assert blocker.args[0].startswith("Not printed")


def test_record_incomplete_in_the_banner_until_the_failed_section_is_retried(qtbot, window, network) -> None:
    from app.core.model import SectionName

    server = next(s for s in network.servers if not s.spec.supports_everything)  # reads sections one by one
    patient = next(p for p in server.population if p.nhs_number)
    search(qtbot, window, patient.nhs_number)
    summary = next(p for p in window.search_panel.model.patients if p.practice_id == server.spec.id)
    with server.faults.override(mode="http-500", match="Medication"):
        view = open_from_results(qtbot, window, summary)
    banner = view.banner
    assert banner is not None and banner.incomplete_label.isVisibleTo(banner)
    assert banner.incomplete_text == "Record incomplete: medications could not be loaded"
    failed = view.sections[SectionName.MEDICATIONS]
    assert failed.retry_button is not None
    qtbot.waitUntil(failed.retry_button.isVisible, timeout=2000)
    qtbot.mouseClick(failed.retry_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.sections[SectionName.MEDICATIONS].section.status == "loaded", timeout=TIMEOUT_MS)
    assert view.banner is banner, "the banner follows the record in place (its accent and Copy wiring stay)"
    assert banner.incomplete_text is None and not banner.incomplete_label.isVisibleTo(banner)
