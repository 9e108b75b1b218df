"""The patient banner at the top of every record: who this is, where the record came from, and when."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QWidget

from app.core.display import (
    RESEARCH_MARKER,
    display_name,
    format_born,
    format_datetime,
    format_patient_nhs_number,
    format_sex,
)
from app.core.model import PatientSummary, Practice
from app.ui import style
from app.ui.flow_layout import FlowLayout


def born_text(patient: PatientSummary) -> str:
    """'12-Mar-1975 (47y)'; the year only in the research view."""
    return format_born(patient)


class ColourBar(QWidget):
    """A strip in the practice's colour. Painted directly: a style sheet of its own on every banner would
    make Qt work out that widget's style separately each time a record is shown or moved."""

    def __init__(self, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour = QColor(colour)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.colour)
        painter.end()


class PatientBanner(QFrame):
    """FAMILY, Given · Born 12-Mar-1975 (47y) · Sex · NHS No. · practice (colour bar) · Retrieved.

    The fields wrap rather than widen the banner, so two records fit side by side on a laptop screen.
    """

    def __init__(self, patient: PatientSummary, practice: Practice, retrieved_at: datetime | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.name_text = display_name(patient)
        self.born_text = born_text(patient)
        self.sex_text = format_sex(patient.sex)
        self.nhs_text = format_patient_nhs_number(patient)
        self.research_text = RESEARCH_MARKER if patient.pseudonym else ""  # the research view, said on screen
        self.retrieved_text = f"Retrieved {format_datetime(retrieved_at)}" if retrieved_at else ""
        self.setAccessibleName(f"Patient banner: {self.name_text}, {practice.name}")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 12, 0)
        outer.setSpacing(12)

        self.colour_bar = ColourBar(practice.colour)
        self.colour_bar.setFixedWidth(10)
        self.colour_bar.setAccessibleName(f"{practice.name} colour")
        outer.addWidget(self.colour_bar)

        grid = QGridLayout()
        grid.setContentsMargins(0, 8, 0, 8)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(4)
        self.name_label = _label(self.name_text, "bannerName", "Patient name")
        self.name_label.setWordWrap(True)
        grid.addWidget(self.name_label, 0, 0)
        self.fields = QWidget()
        self.fields.setAccessibleName("Patient details")
        flow = FlowLayout(self.fields, h_spacing=24)
        self.born_label = _field("Born", self.born_text)
        self.sex_label = _field("Sex", self.sex_text)
        self.nhs_label = _field("NHS No.", self.nhs_text)
        for label in (self.born_label, self.sex_label, self.nhs_label):
            flow.add_widget(label)
        if self.research_text:
            self.research_label = _field("Research view", "pseudonymised")
            flow.add_widget(self.research_label)
        grid.addWidget(self.fields, 1, 0)

        practice_row = QHBoxLayout()
        practice_row.setSpacing(6)
        swatch = QLabel()
        swatch.setPixmap(style.swatch_pixmap(practice.colour, 16))
        swatch.setAccessibleName(f"{practice.name} colour")
        practice_row.addStretch(1)
        practice_row.addWidget(swatch)
        self.practice_label = _label(practice.name, "bannerPractice", "Practice")
        practice_row.addWidget(self.practice_label)
        grid.addLayout(practice_row, 0, 1)
        self.retrieved_label = _label(self.retrieved_text, "secondary", "Retrieved")
        self.retrieved_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.retrieved_label, 1, 1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        grid.setColumnStretch(0, 1)
        outer.addLayout(grid, 1)

    def text(self) -> str:
        """Everything the banner says, in reading order (for tests and screen-reader checks)."""
        research = (self.research_text,) if self.research_text else ()
        return " | ".join((self.name_text, f"Born {self.born_text}", f"Sex {self.sex_text}",
                           f"NHS No. {self.nhs_text}", *research, self.practice_label.text(), self.retrieved_text))


def _label(text: str, object_name: str, accessible: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(f"{accessible}: {text}")
    return label


def _field(caption: str, value: str) -> QLabel:
    """'Born 12-Mar-1975 (47y)' as one unbreakable label; the flow layout wraps between fields."""
    label = QLabel(f"<span style='color:{style.SECONDARY}'>{caption}</span>&nbsp; <b>{value}</b>")
    label.setObjectName("bannerField")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAccessibleName(f"{caption} {value}")
    return label
