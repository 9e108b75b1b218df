"""What the window asks before a record opens under the access policy, and how the record says it was opened.

The policy is decided in the core (`MosaicCore.decide`); these dialogs only collect what the decision
asks for: a reason for access, or break-glass (an explicit confirmation and a written reason). They are
shown with `open()` (window-modal, not `exec()`): the window carries on when `accepted` is emitted, so
nothing blocks the event loop and tests drive the real dialogs.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.core.display import access_notes
from app.core.model import PatientRecord
from app.core.policy import (  # the reason rule is the core's: the CLI and this dialog share it
    FLAG_BREAK_GLASS,
    FLAG_SELF_OR_FAMILY,
    PolicyDecision,
    written_reason_problem,
)
from app.ui import style

AMBER_BG, RED_BG = "#fff4e0", "#fbe9e7"
SELF_FAMILY_TEXT = ("This patient appears to be you or a member of your family. Open the record only if you "
                    "have a professional reason to. This access will be flagged for review.")

_STRIP_STYLE = (f"QFrame#breakGlassStrip {{ background: {RED_BG}; border: none; border-left: 8px solid {style.ERROR}; "
                f"border-bottom: 1px solid {style.ERROR}; }}"
                f"QFrame#selfFamilyStrip {{ background: {AMBER_BG}; border: none; "
                f"border-left: 8px solid {style.WARNING_BORDER}; border-bottom: 1px solid {style.WARNING_BORDER}; }}"
                "QLabel#stripText { font-weight: 700; font-size: 11pt; }"
                "QLabel#stripDetail { font-size: 10pt; }")
_DIALOG_STYLE = (f"QDialog#reasonDialog, QDialog#breakGlassDialog {{ background: {style.CARD}; }}"
                 f"QPlainTextEdit {{ background: {style.CARD}; border: 2px solid {style.TEXT}; padding: 4px; }}"
                 f"QPlainTextEdit:focus {{ border: 3px solid {style.TEXT}; padding: 3px; }}")
_DANGER_BUTTON = (f"QPushButton#breakGlassButton {{ background: {style.ERROR}; }}"
                  "QPushButton#breakGlassButton:hover { background: #a81f14; }"
                  "QPushButton#breakGlassButton:disabled { background: #aeb7bd; color: #f0f4f5; }")


def _card_background(dialog: QDialog) -> None:
    """White, like the window's cards, so the dialog stands apart from the window behind it."""
    dialog.setStyleSheet(dialog.styleSheet() + _DIALOG_STYLE)
    palette = dialog.palette()
    palette.setColor(QPalette.ColorRole.Window, QColor(style.CARD))
    dialog.setPalette(palette)
    dialog.setAutoFillBackground(True)


def _label(text: str, *, name: str | None = None, rich: bool = False, object_name: str | None = None) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setAccessibleName(name or re.sub(r"<[^>]+>", "", text))
    if object_name:
        label.setObjectName(object_name)
    return label


def _warning_frame(text: str, object_name: str) -> QFrame:
    frame = QFrame()
    frame.setObjectName(object_name)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(12, 8, 12, 8)
    label = _label("⚠  " + text, name=text, object_name="stripText")
    layout.addWidget(label)
    return frame


class ReasonDialog(QDialog):
    """Reason for access: one of the policy's reasons, or "Other" with the user's own words.

    "Open record" stays disabled until a reason is given. A self/family match is said plainly above."""

    def __init__(self, decision: PolicyDecision, patient_text: str, practice_name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.decision = decision
        self.setObjectName("reasonDialog")
        self.setWindowTitle("Reason for access · Mosaic")
        self.setAccessibleName("Reason for access")
        self.setStyleSheet(_STRIP_STYLE)
        _card_background(self)
        self.setMinimumWidth(600)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        heading = _label(f"Why are you opening the record of {patient_text} at {practice_name}?",
                         object_name="heading")
        layout.addWidget(heading)
        self.self_family_warning: QFrame | None = None
        if FLAG_SELF_OR_FAMILY in decision.flags:
            self.self_family_warning = _warning_frame(SELF_FAMILY_TEXT, "selfFamilyStrip")
            self.self_family_warning.setAccessibleName("Self or family warning")
            layout.addWidget(self.self_family_warning)
        else:
            layout.addWidget(_label(decision.why or "The access policy asks for a reason for access.",
                                    object_name="secondary"))
        layout.addWidget(_label("The reason is recorded in the audit journal with your name and the time, and "
                                "sent to the practice with the record of this access.", object_name="secondary"))

        self.group = QButtonGroup(self)
        self.choices: list[QRadioButton] = []
        for reason in decision.reasons:
            button = QRadioButton(reason)
            button.setAccessibleName(f"Reason: {reason}")
            self.group.addButton(button)
            self.choices.append(button)
            layout.addWidget(button)
        self.other = QRadioButton("Other (write your reason):" if decision.reasons else "Your reason:")
        self.other.setAccessibleName("Other reason")
        self.group.addButton(self.other)
        layout.addWidget(self.other)
        self.other_edit = QLineEdit()
        self.other_edit.setAccessibleName("Other reason text")
        self.other_edit.setPlaceholderText("for example: Reviewing results at the request of the patient's GP")
        layout.addWidget(self.other_edit)
        if not decision.reasons:
            self.other.setChecked(True)

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton("Open record")
        self.ok_button.setAccessibleName("Open record with this reason")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("secondaryButton")
        self.cancel_button.setAccessibleName("Cancel: do not open the record")
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self._accept_if_ready)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.group.buttonToggled.connect(lambda *_: self._update())
        self.other_edit.textEdited.connect(self._typed_other)
        self._update()
        (self.choices[0] if self.choices else self.other_edit).setFocus()

    def _typed_other(self, text: str) -> None:
        if text.strip() and not self.other.isChecked():
            self.other.setChecked(True)
        self._update()

    def reason(self) -> str:
        """The reason chosen or written ("" while there is none)."""
        checked = self.group.checkedButton()
        if checked is None:
            return ""
        if checked is self.other:
            return " ".join(self.other_edit.text().split())
        return checked.text()

    def _update(self) -> None:
        self.ok_button.setEnabled(bool(self.reason()))

    def _accept_if_ready(self) -> None:
        if self.reason():
            self.accept()


class BreakGlassDialog(QDialog):
    """Break-glass for a restricted patient: what it means, an explicit confirmation and a written reason.

    The confirm button is disabled until the box is ticked and the reason has MIN_BREAK_GLASS_CHARS letters
    or digits; Cancel is the default button, so Enter never breaks the glass by accident."""

    def __init__(self, decision: PolicyDecision, patient_text: str, practice_name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.decision = decision
        self.setObjectName("breakGlassDialog")
        self.setWindowTitle("Restricted record: break-glass · Mosaic")
        self.setAccessibleName("Break-glass: restricted record")
        self.setStyleSheet(_STRIP_STYLE + _DANGER_BUTTON)
        _card_background(self)
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        self.warning = _warning_frame(
            f"The record of {patient_text} at {practice_name} is restricted. It opens only by break-glass.",
            "breakGlassStrip")
        self.warning.setAccessibleName("Restricted record warning")
        layout.addWidget(self.warning)
        consequences = _label(
            "Use break-glass only when you have a legitimate need to see this record now, for example "
            "an emergency.<ul style='margin-left: -20px'>"
            "<li>Your name, the time and your reason are recorded.</li>"
            "<li>This access is <b>flagged for review</b> by the practice's information governance lead.</li>"
            "<li>The patient's practice <b>may be told</b>, and so may the patient.</li></ul>",
            rich=True, name="Break-glass: your name, the time and your reason are recorded; this access is flagged "
                            "for review; the patient's practice may be told, and so may the patient.")
        consequences.setObjectName("consequences")
        layout.addWidget(consequences)
        if FLAG_SELF_OR_FAMILY in decision.flags:
            self_family = _warning_frame(SELF_FAMILY_TEXT, "selfFamilyStrip")
            self_family.setAccessibleName("Self or family warning")
            layout.addWidget(self_family)

        reason_label = _label("&Reason for breaking the glass (required):")
        layout.addWidget(reason_label)
        self.reason_edit = QPlainTextEdit()
        self.reason_edit.setAccessibleName("Reason for breaking the glass")
        self.reason_edit.setPlaceholderText("Say why you need this record now, for example: Patient attending "
                                            "the hub unconscious; need medication and allergy history.")
        self.reason_edit.setTabChangesFocus(True)
        self.reason_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 16)
        reason_label.setBuddy(self.reason_edit)
        layout.addWidget(self.reason_edit)
        self.reason_hint = _label("", name="Reason check", object_name="secondary")
        layout.addWidget(self.reason_hint)

        self.confirm = QCheckBox("I confirm I have a legitimate reason to open this restricted record, and I "
                                 "understand this access will be reviewed.")
        self.confirm.setAccessibleName("Confirm break-glass")
        layout.addWidget(self.confirm)

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton("Break glass and open record")
        self.ok_button.setObjectName("breakGlassButton")
        self.ok_button.setAccessibleName("Break glass and open record")
        self.ok_button.setAutoDefault(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("secondaryButton")
        self.cancel_button.setAccessibleName("Cancel: do not open the record")
        self.cancel_button.setDefault(True)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self._accept_if_ready)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.reason_edit.textChanged.connect(self._update)
        self.confirm.toggled.connect(self._update)
        self._update()
        self.reason_edit.setFocus()

    def reason(self) -> str:
        return " ".join(self.reason_edit.toPlainText().split())

    def ready(self) -> bool:
        return self.confirm.isChecked() and written_reason_problem(self.reason()) is None

    def _update(self) -> None:
        problem = written_reason_problem(self.reason())
        self.reason_hint.setText(problem or "✓ Reason given.")
        self.reason_hint.setAccessibleName(problem or "Reason given")
        self.ok_button.setEnabled(self.ready())
        missing = [what for what, done in (("write a reason", problem is None),
                                           ("tick the confirmation", self.confirm.isChecked())) if not done]
        self.ok_button.setToolTip("To break the glass, " + " and ".join(missing) + "." if missing
                                  else "Open the record by break-glass (flagged for review)")

    def _accept_if_ready(self) -> None:
        if self.ready():
            self.accept()


# --- the record view: how the record was opened -------------------------------------------------------

def opened_by_break_glass(record: PatientRecord | None) -> bool:
    return record is not None and FLAG_BREAK_GLASS in record.access_flags


def access_strip(record: PatientRecord) -> QFrame | None:
    """A red (break-glass) or amber (self/family) strip saying how the record was opened, or None."""
    notes = access_notes(record)
    if not notes:
        return None
    red = opened_by_break_glass(record)
    frame = QFrame()
    frame.setObjectName("breakGlassStrip" if red else "selfFamilyStrip")
    frame.setStyleSheet(_STRIP_STYLE)
    frame.setAccessibleName("Opened by break-glass" if red else "Self or family warning")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(12, 8, 12, 8)
    layout.setSpacing(4)
    for note in notes:
        detail = note.startswith("Reason given: ")
        label = _label(note if detail else f"⚠  {note}", object_name="stripDetail" if detail else "stripText")
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(label)
    frame.setAccessibleDescription(" ".join(notes))
    return frame


__all__ = ["FLAG_BREAK_GLASS", "BreakGlassDialog", "ReasonDialog", "access_strip",
           "opened_by_break_glass"]
