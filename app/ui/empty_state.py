"""What the window shows when no practices are configured: where the directory goes, or the demo."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core import paths
from app.ui import style


class NoPracticesPanel(QWidget):
    start_demo_requested = Signal()

    def __init__(self, can_start_demo: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("centralArea")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(40, 40, 40, 40)
        outer.addStretch(1)
        card = QFrame()
        card.setObjectName("card")
        card.setFixedWidth(620)  # a wrapped label in a centred box needs a definite width to size itself
        layout = QVBoxLayout(card)
        layout.setContentsMargins(24, 20, 24, 24)
        layout.setSpacing(12)
        heading = QLabel("No practices are configured")
        heading.setObjectName("heading")
        heading.setAccessibleName(heading.text())
        layout.addWidget(heading)
        body = QLabel(
            "Mosaic reads the list of practices from the practice directory that IT deploys "
            f"({paths.machine_config_file()}) and from your own file ({paths.user_config_file()}). "
            "Neither lists any practice yet. Ask IT for the directory, or try Mosaic with demo practices "
            "that run on this computer and hold only made-up patients.")
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body.setAccessibleName("About the practice directory")
        layout.addWidget(body)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Demo status")
        self.status.hide()
        layout.addWidget(self.status)
        self.start_button = QPushButton("Start demo practices")
        self.start_button.setAccessibleName("Start demo practices")
        self.start_button.setToolTip("Start five demo practices on this computer, with made-up patients")
        self.start_button.setVisible(can_start_demo)
        self.start_button.clicked.connect(self.start_demo_requested)
        layout.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignLeft)
        row = QHBoxLayout()  # stretches, not an alignment flag, so the card's wrapped text gets its height
        row.addStretch(1)
        row.addWidget(card)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_status(self, message: str | None, *, busy: bool = False, error: bool = False) -> None:
        self.status.setText(message or "")
        self.status.setObjectName("fieldError" if error else "")
        style.repolish(self.status)
        self.status.setVisible(bool(message))
        self.start_button.setEnabled(not busy)
