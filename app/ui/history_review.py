"""Mark reviewed…: the access history's dialog for reviewing a flagged access (who reviews, and a note).

The review is journaled by the window (app/core/audit/review.py) as an entry of its own, under the signed-in
user's name; this dialog only asks for the note.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.history_rows import ACTION, PATIENT, PRACTICE, REASON, TIME, USER, HistoryRow, flag_text


class ReviewDialog(QDialog):
    def __init__(self, row: HistoryRow, reviewer: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewDialog")
        self.setWindowTitle("Mark reviewed · Mosaic")
        self.setAccessibleName("Mark reviewed")
        self.setModal(True)
        self.setMinimumWidth(460)
        layout = QVBoxLayout(self)
        cells = row.cells
        why = "; ".join(dict.fromkeys(flag_text(e) for e in row.unreviewed))
        what = (f"<b>{why}</b>: {cells[USER]} · {cells[ACTION]} · {cells[PATIENT] or 'no patient named'} at "
                f"{cells[PRACTICE]} on {cells[TIME]}" + (f"<br>Reason given: {cells[REASON]}" if cells[REASON] else ""))
        summary = QLabel(what)
        summary.setWordWrap(True)
        summary.setAccessibleName("The access reviewed")
        layout.addWidget(summary)
        who = QLabel(f"Reviewed by <b>{reviewer}</b> (you), now" if reviewer else
                     "Reviewed by you (this computer's account), now")
        who.setAccessibleName("Reviewer")
        layout.addWidget(who)
        label = QLabel("&Note: what you checked, and what follows")
        self.note_edit = QPlainTextEdit()
        self.note_edit.setAccessibleName("Review note")
        self.note_edit.setPlaceholderText("For example: confirmed with the clinician; emergency admission, "
                                          "no further action")
        self.note_edit.setTabChangesFocus(True)
        self.note_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 16)
        label.setBuddy(self.note_edit)
        layout.addWidget(label)
        layout.addWidget(self.note_edit)
        buttons = QDialogButtonBox()
        self.ok_button: QPushButton = buttons.addButton("&Mark reviewed", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setAccessibleName("Mark reviewed")
        cancel = buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        cancel.setAccessibleName("Cancel")
        cancel.setObjectName("secondaryButton")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.ok_button.setEnabled(False)
        self.note_edit.textChanged.connect(lambda: self.ok_button.setEnabled(bool(self.note().strip())))

    def note(self) -> str:
        return self.note_edit.toPlainText().strip()

    def accept(self) -> None:
        if self.note():
            super().accept()
