"""The practices panel folded to one line while every practice is well: "● ● ● ● ●  5 practices online".

While the practices are online (or still connecting) the panel's rows say nothing a clinician needs, so the
dock goes and a strip in the search row stands for it (its width goes to the records). A practice that fails,
drops (offline, retrying) or needs a sign-in unfolds the panel, so its reason and its Retry button are in
view; clicking the strip unfolds it too, and then it stays until closed.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QToolButton, QWidget

from app.core.sessions import PracticeStatus
from app.ui import style
from app.ui.practices_panel import PracticesPanel, state_text

DOT = 12
GAP = 5
#: states that unfold the panel: something is wrong that the user may act on (Retry, Sign in again)
NEEDS_ATTENTION = frozenset({PracticeStatus.FAILED, PracticeStatus.RETRYING, PracticeStatus.SIGN_IN_NEEDED})


def dots_icon(colours: list[str], ring: list[str | None] | None = None) -> QIcon:
    """One round dot per practice in its colour; a practice that is not well gets a ring in its state colour."""
    width = max(1, len(colours)) * (DOT + GAP) - GAP + 4
    pixmap = QPixmap(width, DOT + 4)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for i, colour in enumerate(colours):
        rect = QRectF(2 + i * (DOT + GAP), 2, DOT, DOT)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        painter.drawEllipse(rect)
        warn = ring[i] if ring else None
        if warn:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            pen = painter.pen()
            pen.setStyle(Qt.PenStyle.SolidLine)
            pen.setColor(QColor(warn))
            pen.setWidthF(2.5)
            painter.setPen(pen)
            painter.drawEllipse(rect.adjusted(-1, -1, 1, 1))
    painter.end()
    return QIcon(pixmap)


class PracticesStrip(QWidget):
    """One line: a dot per practice and how many are online. Click to show the practices panel."""

    expand_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practicesStrip")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.button = QToolButton()
        self.button.setObjectName("practicesStripButton")
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setAutoRaise(True)
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.clicked.connect(self.expand_requested)
        layout.addWidget(self.button)
        layout.addStretch(1)
        self.hide()

    def show_states(self, panel: PracticesPanel) -> None:
        rows = list(panel.rows.values())
        total = len(rows)
        online = panel.online_count()
        connecting = sum(1 for r in rows if r.state.status is PracticeStatus.CONNECTING)
        text = f"{total} practices online" if online == total else f"{online} of {total} practices online"
        if total == 1:
            text = "1 practice online" if online else "The practice is not online"
        if connecting:
            text = f"Connecting to {connecting} of {total} practices…"
        troubled = [r.state.status in NEEDS_ATTENTION for r in rows]
        rings = [style.ERROR if bad else None for bad in troubled]
        icon = dots_icon([r.practice.colour for r in rows], rings)
        self.button.setIcon(icon)
        self.button.setIconSize(icon.availableSizes()[0] if icon.availableSizes() else QSize(DOT, DOT))
        self.button.setText(text)
        self.button.setStyleSheet(f"color: {style.ERROR}; font-weight: 600;" if any(troubled) else "")
        lines = [f"{r.practice.name}: {state_text(r.state)}" for r in rows]
        self.button.setToolTip("\n".join(lines) + "\n\nClick to show the practices panel (Ctrl+Shift+P).")
        self.button.setAccessibleName(f"{text}. Show the practices panel")
        self.button.setAccessibleDescription("; ".join(lines))


class PracticesFold(QObject):
    """Folds the practices dock into the strip while every practice is online, unfolds it when one is not.

    A panel the user unfolded (clicking the strip, or Show practices panel) stays until they close it; one
    unfolded because a practice was unwell folds again once all are well. `may_unfold()` is False while the
    window is locked: the lock decides what shows then, and the next change of state is applied after.
    """

    def __init__(self, panel: PracticesPanel, dock: QDockWidget, strip: PracticesStrip, toggle: QAction,
                 may_unfold: Callable[[], bool] = lambda: True) -> None:
        super().__init__(strip)
        self.panel, self.dock, self.strip = panel, dock, strip
        self.pinned = False  # the user unfolded it: it stays until they close it
        self._may_unfold = may_unfold
        self._applying = False
        strip.expand_requested.connect(self.unfold_by_user)
        toggle.triggered.connect(self._toggled)
        dock.visibilityChanged.connect(self._dock_visibility)

    def needs_attention(self) -> bool:
        return any(r.state.status in NEEDS_ATTENTION for r in self.panel.rows.values())

    def refresh(self) -> None:
        """After any change of a practice's state (or of the practices)."""
        self.strip.show_states(self.panel)
        if not self.panel.rows:
            self.strip.hide()
            return
        if self.needs_attention():
            if self._may_unfold():
                self._set_dock(True)
        elif not self.pinned:
            self._set_dock(False)
        self._sync_strip()

    def unfold_by_user(self) -> None:
        self.pinned = True
        self._set_dock(True)
        self._sync_strip()
        self.panel.sign_in_button.setFocus(Qt.FocusReason.OtherFocusReason)

    @property
    def folded(self) -> bool:
        return self.dock.isHidden()

    def _toggled(self, checked: bool) -> None:
        self.pinned = checked
        self._sync_strip()

    def _set_dock(self, shown: bool) -> None:
        if self.dock.isHidden() == (not shown):
            return
        self._applying = True
        try:
            self.dock.setVisible(shown)
        finally:
            self._applying = False

    def _dock_visibility(self, _visible: bool) -> None:
        if not self._applying and self.dock.isHidden():  # closed by its own button: fold until it is needed
            self.pinned = False
        self._sync_strip()

    def _sync_strip(self) -> None:
        self.strip.setVisible(bool(self.panel.rows) and self.dock.isHidden())
