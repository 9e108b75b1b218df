"""What the window does with the patient in front: names them in the window title, copies their NHS number,
and saves or prints their record summary (journaled as an export first). Wired into the window with one line
(`PatientActions(window)`), so main_window.py stays about layout and the core.

Copying the NHS number is not journaled: it is the identifier the banner already shows, of a record whose
opening was journaled (with the reason given, and break-glass if it took that); no record data leaves with
it. What does leave (a summary saved or printed) is journaled as an export before it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QMenu

from app.core import paths
from app.core.display import display_name
from app.core.nhs_number import format_nhs_number
from app.core.record_export import ExportKind, journal_export
from app.ui.message_area import Level
from app.ui.record_export import ExportDialog, SummaryRenderer, print_to, render_pdf
from app.ui.record_view import RecordView

if TYPE_CHECKING:
    from pathlib import Path

    from app.core.model import PatientRecord, PatientSummary, Practice
    from app.ui.main_window import MainWindow

APP_TITLE = "Mosaic · GP practices"
LOCKED_TITLE = "Mosaic — locked"


def window_title(patient: PatientSummary | None) -> str:
    """'SAUNDERS, Abena (NHS 943 476 5919) — Mosaic'; the pseudonym in the research view."""
    if patient is None:
        return APP_TITLE
    name = display_name(patient)
    if patient.nhs_number and not patient.pseudonym:
        return f"{name} (NHS {format_nhs_number(patient.nhs_number)}) — Mosaic"
    return f"{name} — Mosaic"


class PatientActions(QObject):
    exported = Signal(object)  # the Path written, once the summary is on disk (after its journal entry)
    export_failed = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.export_dialog: ExportDialog | None = None
        self.locked = False
        self._renderers: set[SummaryRenderer] = set()  # running: kept referenced until they finish
        self.copy_action = self._action("&Copy NHS number", "Ctrl+Shift+C", self.copy_nhs_number,
                                        "Copy the NHS number of the patient in front (digits only)")
        self.pdf_action = self._action("Save summary as P&DF…", "Ctrl+Shift+S", lambda: self.export("pdf"),
                                       "Save the record summary as a PDF file (journaled as an export)")
        self.print_action = self._action("&Print summary…", "Ctrl+P", lambda: self.export("print"),
                                         "Print the record summary (journaled as an export)")
        menu = next((a.menu() for a in window.menuBar().actions() if a.text() == "&Record"), None)
        if isinstance(menu, QMenu):
            for action in (self.copy_action, self.pdf_action, self.print_action):
                menu.addAction(action)
        window.records.current_view_changed.connect(self._current_changed)
        window.records.copy_nhs_requested.connect(self.copy_nhs_number)
        self._current_changed(window.records.current_view())

    def _action(self, text: str, shortcut: str, slot: Callable[[], object], tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.window.addAction(action)
        return action

    # -- the window title ------------------------------------------------------------------------

    def set_locked(self, locked: bool) -> None:
        """The window's lock says when it locks and unlocks (app/ui/lock.py)."""
        self.locked = locked
        self._current_changed(self.window.records.current_view())

    def _current_changed(self, view: RecordView | None) -> None:
        # locked: the taskbar and the window switcher name nobody
        title = LOCKED_TITLE if self.locked else window_title(view.patient if view is not None else None)
        if self.window.windowTitle() != title:
            self.window.setWindowTitle(title)
        has_view = view is not None
        self.copy_action.setEnabled(has_view)
        self.pdf_action.setEnabled(has_view)
        self.print_action.setEnabled(has_view)

    # -- the NHS number --------------------------------------------------------------------------

    def copy_nhs_number(self, view: RecordView | None = None) -> str | None:
        """Put the NHS number's ten digits on the clipboard (they paste into any NHS number field)."""
        view = view if isinstance(view, RecordView) else self.window.records.current_view()
        if view is None:
            self._tell("No record is open: nothing to copy.")
            return None
        patient = view.patient
        if patient.pseudonym or not patient.nhs_number:
            self._tell("No NHS number to copy: " + ("the research view shows none." if patient.pseudonym
                                                    else f"{display_name(patient)} has none recorded."),
                       level="warning")
            return None
        QGuiApplication.clipboard().setText(patient.nhs_number)
        self._tell(f"Copied NHS number {format_nhs_number(patient.nhs_number)} ({display_name(patient)}).",
                   level="success")
        return patient.nhs_number

    # -- save or print the summary ---------------------------------------------------------------

    def export(self, kind: ExportKind) -> ExportDialog | None:
        view = self.window.records.current_view()
        if view is None or view.record is None or view.state != "loaded":
            self._tell("Open a record (and let it load) to save or print its summary.", level="warning")
            return None
        if self.export_dialog is not None or self.window.core is None:
            return None
        record, practice = view.record, view.practice
        dialog = ExportDialog(record, practice, kind, self.window.grant_of(view).purpose, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._export_given(dialog, record, practice))
        dialog.rejected.connect(lambda: self._export_cancelled(dialog))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _export_cancelled(self, dialog: ExportDialog) -> None:
        if dialog is self.export_dialog:
            self.export_dialog = None

    def _export_given(self, dialog: ExportDialog, record: PatientRecord, practice: Practice) -> None:
        if dialog is not self.export_dialog:
            return
        self.export_dialog = None
        who = display_name(record.patient)
        if dialog.kind == "pdf":
            path = dialog.path()
            assert path is not None

            def write_pdf() -> None:
                paths.write_private_bytes(path, render_pdf(record, practice))

            self._journal_then(record, practice, dialog.reason(), "pdf", str(path), write_pdf,
                               f"Saved the summary of {who} to {path} (recorded in the audit journal as an export).",
                               path)
            return
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        chooser = QPrintDialog(printer, self.window)
        chooser.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        reason = dialog.reason()
        chooser.accepted.connect(lambda *_: self.print_with(printer, record, practice, reason))
        chooser.setModal(True)
        chooser.show()  # not exec(): the window keeps running (QPrintDialog.open needs a slot in PySide)

    def print_with(self, printer: QPrinter, record: PatientRecord, practice: Practice, reason: str) -> None:
        """The printer is chosen: journal the export, then print (to a file: made 0600 first)."""
        target = printer.printerName() or printer.outputFileName() or "printer"
        self._journal_then(record, practice, reason, "print", target, lambda: print_to(record, practice, printer),
                           f"Printed the summary of {display_name(record.patient)} (recorded in the audit journal "
                           "as an export).", None)

    def _journal_then(self, record: PatientRecord, practice: Practice, reason: str, kind: ExportKind, target: str,
                      write: Callable[[], None], said: str, path: Path | None) -> None:
        """Journal the export (on the core's loop), then render and write it in a thread of its own (laying out
        and rendering a long record takes seconds, which the GUI thread must not spend). Nothing is written
        when the export could not be journaled."""
        core = self.window.core
        assert core is not None
        who = display_name(record.patient)
        verb = "saved" if kind == "pdf" else "printed"

        def failed(why: str) -> None:
            message = f"Not {verb}: the summary of {who} — {why}"
            self._tell(message, level="error")
            self.export_failed.emit(message)

        def succeeded() -> None:
            self._tell(said, level="success")
            self.exported.emit(path if path is not None else target)

        def journaled(_entry: object) -> None:
            renderer = SummaryRenderer(write, self)
            renderer.succeeded.connect(succeeded)
            renderer.failed.connect(lambda why: failed(f"it could not be written to {target}: {why}"))
            self._renderers.add(renderer)
            renderer.finished.connect(lambda: self._renderers.discard(renderer))
            renderer.start()

        self._tell(f"Saving the summary of {who}…" if kind == "pdf" else f"Printing the summary of {who}…")
        self.window.bridge.submit(journal_export(core, record, practice, reason, kind, target), journaled,
                                  lambda exc: failed(str(exc) or type(exc).__name__))

    def _tell(self, text: str, level: Level = "info") -> None:
        messages = getattr(self.window, "messages", None)
        if messages is not None:
            messages.post(text, level)
        else:
            self.window.statusBar().showMessage(text, 15000)
