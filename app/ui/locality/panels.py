"""The Locality view's side panels: a figure's definition with its counts, the data-quality badge, and peers
(funnel position, national decile, similar practices with adjustable weights)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.insight.measures import MEASURES, Figure
from app.insight.peer_report import PeerReport
from app.insight.peers import DEFAULT_WEIGHTS
from app.insight.store_rows import QualityRow
from app.ui.locality.source import Similar
from app.ui.locality.words import cell_text, count_text, number, period_words
from app.ui.style import ERROR, SECONDARY, WARNING_BG, WARNING_BORDER

WEIGHT_WORDS = {"list_size": "List size", "imd_decile": "Deprivation (IMD decile)",
                "share_over_65": "Share aged 65 and over", "share_under_18": "Share under 18",
                "rurality": "Rurality (urban or rural)"}


def _words(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


class DefinitionPanel(QFrame):
    """What the figure in hand means: the measure's words, its numerator and denominator with their counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setAccessibleName("Definition of the figure")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        self.heading = _words("Choose a figure", "heading")
        self.figure_line = _words()
        self.definition = _words()
        self.numerator = _words()
        self.denominator = _words()
        for widget in (self.heading, self.figure_line, self.definition, self.numerator, self.denominator):
            layout.addWidget(widget)
        layout.addStretch(1)

    def show_figure(self, figure: Figure, label: str, where: str) -> None:
        measure = MEASURES[figure.metric]
        self.heading.setText(f"{measure.title}: {label}")
        self.figure_line.setText(f"<b>{cell_text(figure, measure.unit)}</b> &nbsp; {period_words(figure.period)}, "
                                 f"{where}")
        self.definition.setText(f"<b>Definition.</b> {measure.definition}")
        if measure.numerator:
            self.numerator.setText(f"<b>Numerator:</b> {measure.numerator} = {count_text(figure.numerator, figure)}")
        else:
            self.numerator.setText("<b>Numerator:</b> none (a median of the appointments below)")
        if measure.denominator:
            self.denominator.setText(f"<b>Denominator:</b> {measure.denominator} = "
                                     f"{count_text(figure.denominator, figure)}")
        else:
            self.denominator.setText("<b>Denominator:</b> none (a count)")
        self.setAccessibleDescription(" ".join(w.text() for w in (self.heading, self.figure_line, self.definition,
                                                                   self.numerator, self.denominator)))


def quality_words(rows: Sequence[QualityRow], scope: Sequence[str]) -> tuple[str, bool]:
    """The badge's words and whether it warns: unmapped categories and missing statuses (shares of the
    appointments in scope) and the practices not providing data. Only the practices in `scope` (never the store's
    others); a share whose count, or whose total, is 1 to 4 reads "fewer than 5" (app/insight/shown_quality.py)."""
    chosen = [r for r in rows if r.practice_id in scope]
    total = sum(r.appointments for r in chosen)
    unmapped = sum((r.unmapped_category or 0) * r.appointments for r in chosen)
    missing = sum((r.missing_status or 0) * r.appointments for r in chosen)
    absent = [r.name for r in chosen if r.status != "ok"]
    parts = [f"{_share(unmapped, total)} of appointments with no national category",
             f"{_share(missing, total)} with a missing status"]
    if absent:
        parts.append(f"{len(absent)} of {len(chosen)} practices not providing data ({', '.join(absent)})")
    else:
        parts.append(f"all {len(chosen)} practices providing data")
    warns = bool(absent) or (total > 0 and (unmapped / total > 0.02 or missing / total > 0.02))
    return "Data quality: " + "; ".join(parts) + ".", warns


def _share(part: float, total: float) -> str:
    from app.insight.shown_quality import small

    if not total:
        return "—"
    if small(total) or small(part):
        return "fewer than 5"
    return f"{part / total * 100:.1f} %"


class QualityBadge(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("qualityBadge")
        self.setWordWrap(True)
        self.setAccessibleName("Data quality")
        # a line of words and its frame from the start: an empty badge that grew a line with the first figures
        # moved everything under it, and the charts were laid out and painted again in the figures' pass
        self.setText("Data quality: shown with the figures.")
        self.setStyleSheet(_QUIET_BADGE)

    def show_quality(self, rows: Sequence[QualityRow], scope: Sequence[str]) -> None:
        text, warns = quality_words(rows, scope)
        self.setText(text)
        self.setAccessibleDescription(text)
        style = _WARNING_BADGE if warns else _QUIET_BADGE
        if self.styleSheet() != style:  # set again, the same sheet still polished the badge anew
            self.setStyleSheet(style)


_WARNING_BADGE = f"background: {WARNING_BG}; border-left: 5px solid {WARNING_BORDER}; padding: 4px 6px;"
_QUIET_BADGE = f"border-left: 5px solid {SECONDARY}; padding: 4px 6px;"


class PeersPanel(QFrame):
    """One practice against its peers; the weights that choose "similar practices" are shown and adjustable."""

    weights_changed = Signal(object)  # dict[str, float]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setAccessibleName("Peers")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        self.heading = _words("Peers", "heading")
        self.report = _words()
        layout.addWidget(self.heading)
        layout.addWidget(self.report)
        weights_box = QFrame()
        form = QFormLayout(weights_box)
        form.setContentsMargins(0, 4, 0, 4)
        self.weight_boxes: dict[str, QDoubleSpinBox] = {}
        for name, default in DEFAULT_WEIGHTS.items():
            box = QDoubleSpinBox()
            box.setRange(0.0, 5.0)
            box.setSingleStep(0.5)
            box.setDecimals(1)
            box.setValue(default)
            box.setAccessibleName(f"Weight of {WEIGHT_WORDS[name].lower()} in similar practices")
            box.setToolTip("0 leaves it out; higher counts it more when choosing similar practices")
            box.valueChanged.connect(self._changed)
            form.addRow(WEIGHT_WORDS[name], box)
            self.weight_boxes[name] = box
        layout.addWidget(_words("<b>Similar practices</b> are chosen by these weights:"))
        layout.addWidget(weights_box)
        self.similar_note = _words("", "secondary")
        layout.addWidget(self.similar_note)
        self.similar = QTableWidget(0, 4)
        self.similar.setHorizontalHeaderLabels(["Practice (national)", "List size", "Likeness", "This measure"])
        self.similar.setAccessibleName("Similar practices, most alike first")
        self.similar.verticalHeader().setVisible(False)
        self.similar.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.similar.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.similar, 1)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(400)
        self._debounce.timeout.connect(lambda: self.weights_changed.emit(self.weights()))

    def weights(self) -> dict[str, float]:
        return {name: box.value() for name, box in self.weight_boxes.items()}

    def _changed(self) -> None:
        self._debounce.start()

    def show_none(self, why: str) -> None:
        self.heading.setText("Peers")
        self.report.setText(why)
        self.similar.setRowCount(0)
        self.similar_note.setText("")

    def show_peers(self, name: str, metric: str, report: PeerReport | None, similar: Sequence[Similar],
                   note: str | None, names: Mapping[str, str]) -> None:
        measure = MEASURES[metric]
        unit = "" if measure.unit == "count" else f" {measure.unit}"
        self.heading.setText(f"{name} against its peers: {measure.title}")
        lines = []
        if report is None:
            lines.append("Peers are compared for one month: choose a month.")
        elif report.status != "ok" or report.value is None:
            lines.append(report.note or report.status)
        else:
            lines.append(f"{period_words(report.period)}: <b>{number(report.value, measure.unit)}{unit}</b>.")
            if report.funnel_position is not None and report.target is not None:
                lines.append(f"Funnel plot: <b>{report.funnel_position}</b> the limits around the "
                             f"{report.target_from} figure of {number(report.target, measure.unit)}{unit}.")
            if report.national_decile is not None:
                lines.append(f"National decile: <b>{report.national_decile} of 10</b> (1 lowest) among "
                             f"{report.national_practices:,} practices (GPAD).")
            if report.note:
                lines.append(report.note)
        self.report.setText("<br>".join(lines))
        self.similar_note.setText(note or "")
        self.similar.setRowCount(len(similar))
        for row, other in enumerate(similar):
            value = "not in GPAD" if other.value is None else f"{number(other.value, measure.unit)}{unit}"
            for column, text in enumerate((f"{other.name} ({other.code})", f"{other.list_size:,}",
                                           f"{1 / (1 + other.distance):.2f}", value)):
                item = QTableWidgetItem(text)
                item.setToolTip("Likeness: 1 is identical on the weighted attributes; lower is less alike"
                                if column == 2 else text)
                self.similar.setItem(row, column, item)
        self.similar.resizeColumnsToContents()
        self.similar.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)


def failed_style() -> str:
    return f"color: {ERROR}; font-weight: 600;"
