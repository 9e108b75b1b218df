"""The window's look: a calm NHS-style palette, one style sheet, practice colour swatches."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QWidget

BLUE = "#005eb8"
DARK_BLUE = "#003087"
TEXT = "#212b32"
SECONDARY = "#4c6272"
ERROR = "#d5281b"
SUCCESS = "#007f3b"
WARNING_BG = "#fff9c4"
WARNING_BORDER = "#ffb81c"
BACKGROUND = "#f0f4f5"
CARD = "#ffffff"
BORDER = "#d8dde0"
FOCUS = "#ffeb3b"

STYLE_SHEET = f"""
QMainWindow, QWidget#centralArea, QWidget#practicesPanel, QScrollArea#practiceScroll > QWidget > QWidget {{
    background: {BACKGROUND};
}}
QWidget {{ color: {TEXT}; }}
QToolTip {{ color: {TEXT}; background: {CARD}; border: 1px solid {SECONDARY}; padding: 4px; }}
QLabel#heading {{ font-size: 12pt; font-weight: 600; color: {TEXT}; }}
QLabel#hint, QLabel#secondary {{ color: {SECONDARY}; }}
QLabel#countLine {{ color: {TEXT}; font-weight: 600; }}

QLineEdit {{
    background: {CARD}; border: 2px solid {TEXT}; border-radius: 0; padding: 6px 8px; font-size: 12pt;
    selection-background-color: {BLUE};
}}
QLineEdit:focus {{ border: 3px solid {TEXT}; padding: 5px 7px; }}
QLineEdit[invalid="true"] {{ border: 3px solid {ERROR}; padding: 5px 7px; }}
QLabel#fieldError {{ color: {ERROR}; font-weight: 600; }}

QPushButton {{
    background: {BLUE}; color: white; border: none; border-radius: 4px; padding: 6px 14px; font-weight: 600;
}}
QPushButton:hover {{ background: {DARK_BLUE}; }}
QPushButton:focus {{ outline: none; border: 3px solid {FOCUS}; padding: 3px 11px; }}
QPushButton:disabled {{ background: #aeb7bd; color: #f0f4f5; }}
QPushButton#secondaryButton {{ background: {CARD}; color: {BLUE}; border: 2px solid {BLUE}; padding: 4px 10px; }}
QPushButton#secondaryButton:hover {{ background: #e8f1f8; }}
QPushButton#secondaryButton:focus {{ border: 3px solid {TEXT}; padding: 3px 9px; }}
QPushButton#secondaryButton:disabled {{ color: #aeb7bd; border-color: #d8dde0; background: {CARD}; }}

QTreeView, QTableView {{
    background: {CARD}; alternate-background-color: #f7f9fa; border: 1px solid {BORDER};
    selection-background-color: {BLUE}; selection-color: white; gridline-color: {BORDER};
}}
QTreeView:focus, QTableView:focus {{ border: 2px solid {TEXT}; }}
QHeaderView::section {{
    background: #e8edee; color: {TEXT}; border: none; border-right: 1px solid {BORDER};
    border-bottom: 1px solid {BORDER}; padding: 4px 6px; font-weight: 600;
}}

QFrame#practiceRow {{ background: {CARD}; border: 1px solid {BORDER}; border-radius: 4px; }}
QFrame#card {{ background: {CARD}; border: 1px solid {BORDER}; }}
QFrame#banner {{ background: {CARD}; border: 1px solid {BORDER}; border-bottom: 2px solid {BLUE}; }}
QLabel#bannerName {{ font-size: 14pt; font-weight: 700; }}
QLabel#bannerField {{ font-size: 10pt; }}
QLabel#bannerPractice {{ font-size: 11pt; font-weight: 700; }}
QFrame#banner[deceased="true"] {{ background: #e8edee; }}
QLabel#deceasedBadge {{ background: {TEXT}; color: white; font-weight: 700; padding: 1px 6px; border-radius: 3px; }}
QLabel#bannerDetails {{ color: {SECONDARY}; }}
QFrame#alertsLine {{ border: none; border-top: 1px solid {BORDER}; }}
QFrame#alertsLine[state="known"] {{ background: #fbe9e7; border-left: 6px solid {ERROR}; }}
QFrame#alertsLine[state="unknown"] {{ background: #fff4e0; border-left: 6px solid {WARNING_BORDER}; }}
QFrame#alertsLine[state="quiet"] {{ background: {BACKGROUND}; border-left: 6px solid {BORDER}; }}
QLabel#incomplete {{ background: {ERROR}; color: white; font-weight: 700; padding: 2px 8px; border-radius: 3px; }}
QToolButton#copyNhs {{
    border: 1px solid {BORDER}; border-radius: 3px; padding: 0 4px; background: {CARD}; color: {BLUE}; font-size: 9pt;
}}
QToolButton#copyNhs:focus {{ border: 2px solid {TEXT}; }}
QFrame#sectionBlock {{ background: {CARD}; border: 1px solid {BORDER}; }}
QLabel#sectionTitle {{ font-size: 12pt; font-weight: 700; color: {TEXT}; }}
QHeaderView#rowHeader::section {{ padding: 0; border: none; }}
QLabel#groupTitle {{ font-size: 11pt; font-weight: 700; color: {TEXT}; }}
QToolButton#groupToggle {{ font-size: 11pt; font-weight: 700; color: {TEXT}; border: none; background: transparent; }}
QToolButton#groupToggle:focus {{ background: {FOCUS}; }}
QLabel#withheld {{ color: {SECONDARY}; }}
QLabel#noneRecorded {{ color: {SECONDARY}; font-style: italic; }}
QLabel#notProvided {{ color: {SECONDARY}; }}
QFrame#failure {{ background: #fbe9e7; border: none; border-left: 6px solid {ERROR}; }}
QLabel#failureText {{ color: {TEXT}; font-weight: 600; }}
QFrame#notice {{ background: {WARNING_BG}; border: none; border-left: 6px solid {WARNING_BORDER}; }}
QFrame#problems {{ background: #fbe9e7; border: none; border-left: 6px solid {ERROR}; }}
QFrame#notes {{ background: #e8f1f8; border: none; border-left: 6px solid {BLUE}; }}

QTabWidget::pane {{ border: 1px solid {BORDER}; background: {BACKGROUND}; top: -1px; }}
QTabBar::tab {{
    background: #e8edee; color: {TEXT}; border: 1px solid {BORDER}; border-bottom: none;
    padding: 6px 10px; margin-right: 2px; min-width: 80px;
}}
/* not bold when selected: Qt cuts a tab's title measured in the tab bar's own font, so a bolder one overflows */
QTabBar::tab:selected {{ background: {CARD}; border-top: 3px solid {BLUE}; }}
QTabBar::tab:focus {{ background: {FOCUS}; }}
QStatusBar {{ background: #e8edee; color: {TEXT}; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QDockWidget::title {{ background: #e8edee; padding: 6px; font-weight: 600; }}
QSplitter::handle {{ background: {BORDER}; }}
QProgressBar {{ border: 1px solid {BORDER}; background: {CARD}; height: 6px; }}
QProgressBar::chunk {{ background: {BLUE}; }}
"""


@lru_cache(maxsize=64)
def swatch_pixmap(colour: str, size: int = 14) -> QPixmap:
    """A small rounded square in a practice's colour, with a dark rim so pale colours stay visible."""
    pixmap = QPixmap(QSize(size, size))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor(TEXT).lighter(150))
    painter.setBrush(QColor(colour))
    painter.drawRoundedRect(QRectF(0.5, 0.5, size - 1, size - 1), 3, 3)
    painter.end()
    return pixmap


def swatch_icon(colour: str, size: int = 14) -> QIcon:
    return QIcon(swatch_pixmap(colour, size))


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property used in a selector changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()


def app_icon() -> QIcon:
    """Four tiles in practice-like colours: a mosaic."""
    icon = QIcon()
    for size in (16, 32, 64):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        half, gap = size / 2, max(size / 16, 1)
        for i, colour in enumerate((BLUE, SUCCESS, "#ae2573", WARNING_BORDER)):
            x, y = (i % 2) * half, (i // 2) * half
            painter.setBrush(QColor(colour))
            painter.drawRoundedRect(QRectF(x + gap / 2, y + gap / 2, half - gap, half - gap), size / 10, size / 10)
        painter.end()
        icon.addPixmap(pixmap)
    return icon
