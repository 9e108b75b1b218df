"""Saving or printing a record summary: the dialog that asks why (and where), and the PDF itself.

Qt's own print support does the work (QPdfWriter for a file, QPrinter with QPrintDialog for a printer; both in
PySide6-Essentials). The window journals the export first (app/core/record_export.py) and only then renders
and writes: a summary whose export could not be recorded is never written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QObject, QStandardPaths, Qt, QThread, Signal
from PySide6.QtGui import QPagedPaintDevice, QPageLayout, QPageSize, QPdfWriter, QTextCursor, QTextDocument
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core import paths
from app.core.display import display_name
from app.core.model import PatientRecord, Practice
from app.core.nhs_number import format_nhs_number
from app.core.record_export import SUMMARY_CSS, ExportKind, summary_parts

MIN_REASON = 3


def render_pdf(record: PatientRecord, practice: Practice, layout: QPageLayout | None = None) -> bytes:
    """The summary as PDF bytes (A4), rendered in memory: nothing touches the disk until it is written 0600.
    Takes seconds for a long record: call it from a SummaryRenderer thread, not the GUI thread."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(f"Record summary: {display_name(record.patient)}")
    writer.setCreator("Mosaic")
    writer.setPageLayout(layout or QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                               QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    print_summary(record, practice, writer)
    buffer.close()
    return bytes(data.data())


def print_summary(record: PatientRecord, practice: Practice, device: QPagedPaintDevice) -> None:
    """Lay the summary out and paint it on `device` (a PDF writer or a printer). The document is built a part
    at a time: Qt holds Python's interpreter lock while it parses one piece of HTML, so one long piece would
    stall the GUI thread even from another thread; painting itself lets it go."""
    document = QTextDocument()
    document.setDefaultStyleSheet(SUMMARY_CSS)
    cursor = QTextCursor(document)
    for part in summary_parts(record, practice):
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertHtml(part)
    document.print_(device)
    if isinstance(device, QPrinter) and device.printerState() is QPrinter.PrinterState.Error:
        raise RuntimeError("the printer could not be used (check it is connected, or the file can be written)")


def print_to(record: PatientRecord, practice: Practice, printer: QPrinter) -> None:
    """Print the summary; printed to a file ("Print to PDF"), it is rendered in memory with the printer's page
    layout and written as a new user-only (0600) file in one step, as a saved PDF is (Qt would write into it).
    The print job is named without the patient: a printer's queue is seen by everyone who prints to it."""
    printer.setDocName("Mosaic record summary")
    if printer.outputFileName():
        paths.write_private_bytes(printer.outputFileName(), render_pdf(record, practice, printer.pageLayout()))
        return
    print_summary(record, practice, printer)


class SummaryRenderer(QThread):
    """Runs `work` (render and write a summary) in a thread of its own, with an event loop for the text layout's
    timers. `succeeded` or `failed(message)` is emitted once, and the thread object deletes itself after."""

    succeeded = Signal()
    failed = Signal(str)

    def __init__(self, work: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self.finished.connect(self.deleteLater)

    def run(self) -> None:
        try:
            self._work()
        except OSError as exc:
            self.failed.emit(str(exc.strerror or exc))
        except Exception as exc:  # noqa: BLE001 - said to the user, never lost in a thread
            self.failed.emit(str(exc) or type(exc).__name__)
        else:
            self.succeeded.emit()


def default_file_name(record: PatientRecord) -> str:
    patient = record.patient
    named = "-".join(p for p in (patient.family.upper(), *patient.given[:1]) if p) or "patient"
    stem = patient.pseudonym or named
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)
    return f"{stem}-summary-{record.retrieved_at:%Y%m%d}.pdf"


class ExportDialog(QDialog):
    """Why this summary leaves Mosaic (journaled as the export's reason) and, for a PDF, where it goes.
    Shown with open(), like the access dialogs: the window carries on while it is up."""

    def __init__(self, record: PatientRecord, practice: Practice, kind: ExportKind, reason: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName("exportDialog")
        title = "Save record summary as PDF" if kind == "pdf" else "Print record summary"
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        layout = QVBoxLayout(self)
        patient = record.patient
        who = display_name(patient)
        if patient.nhs_number and not patient.pseudonym:
            who += f" (NHS No. {format_nhs_number(patient.nhs_number)})"
        heading = QLabel(f"<b>{who}</b> from {practice.name}")
        heading.setTextFormat(Qt.TextFormat.RichText)
        heading.setAccessibleName(f"{who} from {practice.name}")
        layout.addWidget(heading)
        note = QLabel("This is recorded in the audit journal as an export, with your reason, before the summary is "
                      + ("written. The file is readable only by your account." if kind == "pdf" else "printed.")
                      + (" It is pseudonymised, as the research view shows it." if patient.pseudonym else ""))
        note.setWordWrap(True)
        note.setAccessibleName(note.text())
        layout.addWidget(note)
        layout.addWidget(QLabel("Reason for exporting"))
        self.reason_edit = QLineEdit(reason or "")
        self.reason_edit.setAccessibleName("Reason for exporting")
        self.reason_edit.setPlaceholderText("e.g. referral letter to the hospital team")
        layout.addWidget(self.reason_edit)
        self.path_edit: QLineEdit | None = None
        if kind == "pdf":
            layout.addWidget(QLabel("Save to"))
            row = QHBoxLayout()
            documents = QStandardPaths.StandardLocation.DocumentsLocation
            folder = QStandardPaths.writableLocation(documents) or str(Path.home())
            self.path_edit = QLineEdit(str(Path(folder) / default_file_name(record)))
            self.path_edit.setAccessibleName("File to save")
            row.addWidget(self.path_edit, 1)
            choose = QPushButton("Choose…")
            choose.setObjectName("secondaryButton")
            choose.setAccessibleName("Choose the file")
            choose.clicked.connect(self._choose)
            row.addWidget(choose)
            layout.addLayout(row)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.addButton("Save PDF" if kind == "pdf" else "Continue to print",
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setAccessibleName(self.ok_button.text())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.reason_edit.textChanged.connect(self._validate)
        if self.path_edit is not None:
            self.path_edit.textChanged.connect(self._validate)
        self._validate()
        self.resize(520, self.sizeHint().height())

    def reason(self) -> str:
        return self.reason_edit.text().strip()

    def path(self) -> Path | None:
        return Path(self.path_edit.text().strip()).expanduser() if self.path_edit is not None else None

    def _validate(self) -> None:
        ok = len(self.reason()) >= MIN_REASON
        if self.path_edit is not None:
            path = self.path()
            ok = ok and path is not None and path.name != "" and path.parent.is_dir()
        self.ok_button.setEnabled(ok)

    def _choose(self) -> None:
        assert self.path_edit is not None
        dialog = QFileDialog(self, "Save record summary as PDF", self.path_edit.text(), "PDF files (*.pdf)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("pdf")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.path_edit.setText)
        dialog.open()  # not exec(): the window keeps running
