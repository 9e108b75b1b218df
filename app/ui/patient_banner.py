"""The patient banner at the top of every record: who this is, where the record came from, and what must not
be missed (allergies, a record that arrived incomplete, a patient who has died).

Laid out after the NHS CUI patient banner guidance (Design Guide Entry - Patient Banner v4): the name (FAMILY,
Given) first, then Born, Sex and NHS No. in that order with their labels, values emphasised over labels;
address and registration below; the allergies line always in view. Kept compact so that two records side by
side on a 1366 px laptop screen each keep their banner to a few lines.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QGuiApplication, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from app.core import patient_facts as facts
from app.core.display import RESEARCH_MARKER, display_name, format_datetime, format_patient_nhs_number, format_sex
from app.core.model import PatientRecord, PatientSummary, Practice
from app.ui import style
from app.ui.flow_layout import FlowLayout


def born_text(patient: PatientSummary) -> str:
    """'12-Mar-1975 (47y)'; a deceased patient's date alone; the year only in the research view."""
    return facts.born_text(patient)


class ColourBar(QWidget):
    """A strip in one colour. Painted directly: a style sheet of its own on every banner would make Qt work
    out that widget's style separately each time a record is shown or moved."""

    def __init__(self, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = QColor(colour)

    def set_colour(self, colour: str) -> None:
        self.colour = QColor(colour)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.colour)
        painter.end()


class ElidedLabel(QLabel):
    """One line of plain text cut from the right when it does not fit; the whole text in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setMinimumWidth(40)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(QFontMetrics(self.font()).horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width(), 40)
        shown = QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        if shown != self.text():
            super().setText(shown)


class PatientBanner(QFrame):
    """FAMILY, Given [Deceased] ........ practice (colour)
    Born 12-Mar-1975 (47y)  Sex Female  NHS No. 943 476 5919 [Copy] ........ Retrieved
    Address … · Registered Regular · GP Dr A Smith
    Known allergies: Penicillin (severe), …                           [Record incomplete]

    The Copy button puts the NHS number's digits on the clipboard itself, then emits `copy_nhs_requested` so the
    window can say so (app/ui/patient_actions.py)."""

    copy_nhs_requested = Signal()

    def __init__(self, patient: PatientSummary, practice: Practice, retrieved_at: datetime | None,
                 parent: QWidget | None = None, *, record: PatientRecord | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.patient = patient
        self.practice = practice
        self.record = record
        self.name_text = display_name(patient)
        self.born_text = born_text(patient)
        self.deceased_text = facts.deceased_text(patient)
        self.sex_text = format_sex(patient.sex)
        self.nhs_text = format_patient_nhs_number(patient)
        self.research_text = RESEARCH_MARKER if patient.pseudonym else ""  # the research view, said on screen
        self.retrieved_text = f"Retrieved {format_datetime(retrieved_at)}" if retrieved_at else ""
        self.retrieved_short = _retrieved_short(retrieved_at)
        self.address_text = facts.address_text(patient)
        self.registration_text = facts.registration_text(patient, practice.name)
        self.setProperty("deceased", "true" if patient.is_deceased else "false")
        self.setAccessibleName(f"Patient banner: {self.name_text}, {practice.name}")

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.accent_bar = ColourBar(style.BLUE)  # a second person side by side gets another accent
        self.accent_bar.setFixedHeight(4)
        self.accent_bar.setAccessibleName("Patient accent")
        self.accent_bar.hide()
        column.addWidget(self.accent_bar)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 10, 0)
        top.setSpacing(10)
        self.colour_bar = ColourBar(practice.colour)
        self.colour_bar.setFixedWidth(10)
        self.colour_bar.setAccessibleName(f"{practice.name} colour")
        top.addWidget(self.colour_bar)
        top.addLayout(self._identity_grid(practice), 1)
        column.addLayout(top)

        self.alerts_line = QFrame()
        self.alerts_line.setObjectName("alertsLine")
        alerts = QHBoxLayout(self.alerts_line)
        alerts.setContentsMargins(10, 3, 10, 3)
        alerts.setSpacing(10)
        self.allergies_label = QLabel()
        self.allergies_label.setObjectName("allergies")
        self.allergies_label.setWordWrap(True)  # never an allergy hidden behind an ellipsis
        self.allergies_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        alerts.addWidget(self.allergies_label, 1)
        self.incomplete_label = QLabel(facts.RECORD_INCOMPLETE)
        self.incomplete_label.setObjectName("incomplete")
        self.incomplete_label.hide()
        alerts.addWidget(self.incomplete_label, 0, Qt.AlignmentFlag.AlignTop)
        column.addWidget(self.alerts_line)
        self.set_record(record)

    def _identity_grid(self, practice: Practice) -> QGridLayout:
        grid = QGridLayout()
        grid.setContentsMargins(0, 5, 0, 5)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        name_row = QHBoxLayout()
        name_row.setSpacing(8)
        # never cut, never wrapped; a research participant by the pseudonym (the field below says what it is)
        self.name_label = _label(self.patient.pseudonym or self.name_text, "bannerName", "Patient name")
        self.name_label.setAccessibleName(f"Patient name: {self.name_text}")
        name_row.addWidget(self.name_label, 0)
        self.deceased_badge: QLabel | None = None
        if self.deceased_text is not None:
            self.deceased_badge = QLabel("Deceased")
            self.deceased_badge.setObjectName("deceasedBadge")
            self.deceased_badge.setAccessibleName(f"Deceased {self.deceased_text}")
            name_row.addWidget(self.deceased_badge, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addLayout(name_row, 0, 0, 1, 2)

        self.fields = QWidget()
        self.fields.setAccessibleName("Patient details")
        flow = FlowLayout(self.fields, h_spacing=12)
        self.born_label = _field("Born", self.born_text, "Date of birth (and age today)")
        flow.add_widget(self.born_label)
        self.died_label: QLabel | None = None
        if self.deceased_text is not None:
            self.died_label = _field("Died", self.deceased_text, "Date of death (and age at death)")
            flow.add_widget(self.died_label)
        self.sex_label = _field("Sex", self.sex_text, "Sex as the practice records it")
        flow.add_widget(self.sex_label)
        self.nhs_label = _field("NHS No.", self.nhs_text, "NHS number: the patient's unique identifier across "
                                                          "the NHS")
        flow.add_widget(self.nhs_label)
        if self.research_text:
            self.research_label = _field("Research view", "pseudonymised", "No name, NHS number, address or full "
                                                                           "date of birth is shown")
            flow.add_widget(self.research_label)
        name_row.addStretch(1)
        swatch = QLabel()
        swatch.setPixmap(style.swatch_pixmap(practice.colour, 14))
        swatch.setAccessibleName(f"{practice.name} colour")
        name_row.addWidget(swatch, 0, Qt.AlignmentFlag.AlignVCenter)
        self.practice_label = ElidedLabel(practice.name)
        self.practice_label.setObjectName("bannerPractice")
        self.practice_label.setAccessibleName(f"Practice: {practice.name}")
        self.practice_label.setToolTip(f"The record comes from {practice.name} ({practice.ods_code})")
        name_row.addWidget(self.practice_label, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(self.fields, 1, 0, 1, 2)

        details = [f"Address {self.address_text or 'Not known'}"] if not self.patient.pseudonym else []
        if self.registration_text:
            details.append(f"Registered {self.registration_text}")
        self.details_label = ElidedLabel(" · ".join(details))
        self.details_label.setObjectName("bannerDetails")
        self.details_label.setAccessibleName(" · ".join(details) or "No address shown")
        grid.addWidget(self.details_label, 2, 0)
        end = QHBoxLayout()
        end.setSpacing(8)
        self.copy_button: QToolButton | None = None
        if self.patient.nhs_number and not self.patient.pseudonym:
            self.copy_button = QToolButton()
            self.copy_button.setObjectName("copyNhs")
            self.copy_button.setText("Copy NHS No.")
            self.copy_button.setAccessibleName("Copy NHS number")
            self.copy_button.setToolTip("Copy the NHS number (Ctrl+Shift+C)")
            self.copy_button.clicked.connect(self.copy_nhs)
            end.addWidget(self.copy_button)
        self.retrieved_label = _label(self.retrieved_short, "secondary", "Retrieved")
        self.retrieved_label.setToolTip(self.retrieved_text)
        self.retrieved_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        end.addWidget(self.retrieved_label)
        grid.addLayout(end, 2, 1, Qt.AlignmentFlag.AlignRight)
        grid.setColumnStretch(0, 1)
        return grid

    def copy_nhs(self) -> None:
        if self.patient.nhs_number and not self.patient.pseudonym:
            QGuiApplication.clipboard().setText(self.patient.nhs_number)
            self.copy_nhs_requested.emit()

    # -- what changes after the banner is made -------------------------------------------------------

    def set_record(self, record: PatientRecord | None) -> None:
        """The allergies line and "Record incomplete" follow the record (a section retried alone updates
        them: call this again with the new record)."""
        self.record = record
        allergies = facts.allergy_summary(record)
        self.allergies = allergies
        tone = {"known": "known", "failed": "unknown", "not-provided": "unknown"}.get(allergies.state, "quiet")
        if allergies.state == "known":
            text = (f"<b>⚠ {allergies.label} ({len(allergies.items)})</b>&nbsp; "
                    + ", ".join(f"<b>{_escape(i)}</b>" for i in allergies.items))
        elif allergies.state == "none-known":
            text = f"<b>{allergies.label}</b>"
        elif tone == "unknown":
            text = f"<b>⚠ {allergies.label}</b>" + (" — check before prescribing"
                                                     if allergies.state == "failed" else "")
        else:
            text = f"<i>{allergies.label}</i>"
        self.allergies_label.setText(text)
        self.allergies_label.setAccessibleName(allergies.text)
        self.alerts_line.setProperty("state", tone)
        self.alerts_line.setAccessibleName(f"Allergies and alerts: {allergies.text}")
        incomplete = facts.incomplete_text(record)
        self.incomplete_text = incomplete
        self.incomplete_label.setVisible(incomplete is not None)
        if incomplete is not None:
            self.incomplete_label.setToolTip(incomplete + ". What is shown is not the whole record: this does not "
                                             "mean none are recorded.")
            self.incomplete_label.setAccessibleName(incomplete)
        style.repolish(self.alerts_line)

    def set_accent(self, colour: str | None) -> None:
        """A strip across the top in the colour this person is marked with side by side (None: none)."""
        if colour is None:
            self.accent_bar.hide()
        else:
            self.accent_bar.set_colour(colour)
            self.accent_bar.show()

    def accent(self) -> str | None:
        return self.accent_bar.colour.name() if not self.accent_bar.isHidden() else None

    def text(self) -> str:
        """Everything the banner says, in reading order (for tests and screen-reader checks)."""
        parts = [self.name_text, f"Born {self.born_text}"]
        if self.deceased_text is not None:
            parts.append(f"Deceased, died {self.deceased_text}")
        parts += [f"Sex {self.sex_text}", f"NHS No. {self.nhs_text}"]
        if self.research_text:
            parts.append(self.research_text)
        parts += [self.practice_label.full_text(), self.retrieved_text]
        if self.details_label.full_text():
            parts.append(self.details_label.full_text())
        parts.append(self.allergies.text)
        if self.incomplete_text:
            parts.append(self.incomplete_text)
        return " | ".join(p for p in parts if p)


def _retrieved_short(moment: datetime | None) -> str:
    """'Retrieved 14:05' today, else the date and time (the whole moment is in the tooltip)."""
    if moment is None:
        return ""
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return f"Retrieved {local:%H:%M}"
    return f"Retrieved {format_datetime(moment)}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(text: str, object_name: str, accessible: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(f"{accessible}: {text}")
    return label


def _field(caption: str, value: str, definition: str) -> QLabel:
    """'Born 12-Mar-1975 (47y)' as one unbreakable label (the flow layout wraps between fields); the label's
    definition in its tooltip (CUI PAB-0047)."""
    label = QLabel(f"<span style='color:{style.SECONDARY}'>{caption}</span>&nbsp;<b>{_escape(value)}</b>")
    label.setObjectName("bannerField")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(f"{caption} {value}")
    label.setToolTip(definition)
    return label
