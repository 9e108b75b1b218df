"""The Locality view's query bar: measure, zoom (the locality or one practice), cut, period and filters.

Every choice is a combo box with an accessible name and a mnemonic label, so the whole query is made from the
keyboard; `changed` fires (once, shortly after the last change) when the query it describes has changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QGridLayout, QLabel, QWidget

from app.core.activity import CLINICIAN_TYPES, MODES
from app.core.model import Practice
from app.insight.measures import MEASURES
from app.insight.periods import parse_period, week_key
from app.ui.locality.source import ViewQuery
from app.ui.locality.words import group_words, month_words

CUTS = (("practice", "Practice"), ("clinician-type", "Clinician type"), ("mode", "Mode"),
        ("category", "Category (slot type)"))
GRAINS = (("month", "Month"), ("week", "Week"), ("range", "Range of months"))
ANY = ""


def _combo(name: str, items: Sequence[tuple[str, str]]) -> QComboBox:
    box = QComboBox()
    box.setAccessibleName(name)
    for data, text in items:
        box.addItem(text, data)
    return box


class QueryBar(QFrame):
    changed = Signal()

    def __init__(self, practices: Sequence[Practice], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self._quiet = False
        self.measure = _combo("Measure", [(m.name, m.title) for m in MEASURES.values()])
        by_name = sorted(practices, key=lambda p: p.name)
        self.zoom = _combo("Zoom: the locality or one practice", [(ANY, "Whole locality"),
                                                                   *[(p.id, p.name) for p in by_name]])
        self.cut = _combo("Cut by", CUTS)
        self.grain = _combo("Period: month, week or range", GRAINS)
        self.period = _combo("Period", [])
        self.until = _combo("Range ends with", [])
        self.mode = _combo("Mode filter", [(ANY, "Any mode"), *[(m, group_words(m)) for m in MODES]])
        self.clinician = _combo("Clinician type filter",
                                [(ANY, "Any clinician type"), *[(c, group_words(c)) for c in CLINICIAN_TYPES]])
        self.category = _combo("Category filter", [(ANY, "Any category")])
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        row1: tuple[tuple[str, QComboBox], ...] = (
            ("&Measure", self.measure), ("&Zoom", self.zoom), ("C&ut by", self.cut), ("P&eriod", self.grain))
        for column, (text, box) in enumerate(row1):
            label = QLabel(text)
            label.setBuddy(box)
            grid.addWidget(label, 0, column * 2)
            grid.addWidget(box, 0, column * 2 + 1)
        for box in (self.period, self.until):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setMinimumContentsLength(16)
        grid.addWidget(self.period, 0, 8)
        self.to_label = QLabel("to")
        self.to_label.setBuddy(self.until)
        grid.addWidget(self.to_label, 0, 9)
        grid.addWidget(self.until, 0, 10)
        for column, (text, box) in enumerate((("M&ode", self.mode), ("Clinician &type", self.clinician),
                                              ("Cate&gory", self.category))):
            label = QLabel(text)
            label.setBuddy(box)
            grid.addWidget(label, 1, column * 2)
            grid.addWidget(box, 1, column * 2 + 1)
        grid.setColumnStretch(11, 1)
        self._months: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.changed.emit)
        for box in (self.measure, self.cut, self.period, self.until, self.mode, self.clinician, self.category):
            box.currentIndexChanged.connect(self._changed)
        self.zoom.currentIndexChanged.connect(self._zoomed)
        self.grain.currentIndexChanged.connect(self._grain_changed)
        self.cut.setCurrentIndex(0)
        self._grain_changed()

    def set_months(self, months: Sequence[str], chosen: str) -> None:
        """The months there are (newest first) and the one to show."""
        self._quiet = True
        self._months = list(months)
        self._fill_period(chosen)
        self._quiet = False

    def set_categories(self, categories: Sequence[str]) -> None:
        current = self.category.currentData()
        known = [self.category.itemData(i) for i in range(1, self.category.count())]
        if list(categories) == known:
            return
        self._quiet = True
        self.category.clear()
        self.category.addItem("Any category", ANY)
        for value in categories:
            self.category.addItem(group_words(value), value)
        index = self.category.findData(current)
        self.category.setCurrentIndex(max(index, 0))
        self._quiet = False

    def _fill_period(self, chosen: str | None = None) -> None:
        grain = self.grain.currentData()
        previous = chosen or self.period.currentData()
        self.period.clear()
        self.until.clear()
        if grain == "week":
            weeks: list[str] = []
            for month in self._months[:6]:
                for week in reversed(parse_period(month).weeks()):
                    weeks.append(week)
            for week in weeks:
                monday = parse_period(week).first
                self.period.addItem(f"Week {int(week.split('-W')[1])}, from {monday:%d %b %Y}", week)
        else:
            for month in self._months:
                self.period.addItem(month_words(month), month)
                self.until.addItem(month_words(month), month)
        index = self.period.findData(previous)
        if index < 0 and previous and grain == "week" and "-W" not in previous:
            index = self.period.findData(week_key(parse_period(previous).first))
        self.period.setCurrentIndex(max(index, 0))
        if grain == "range":
            start = min(self.period.currentIndex() + 11, self.period.count() - 1)
            self.period.setCurrentIndex(start)  # a year's range ending with the month chosen
            self.until.setCurrentIndex(max(index, 0))
        self.until.setVisible(grain == "range")
        self.to_label.setVisible(grain == "range")

    def _grain_changed(self) -> None:
        quiet, self._quiet = self._quiet, True
        self._fill_period()
        self._quiet = quiet
        self._changed()

    def _zoomed(self) -> None:
        zoomed = bool(self.zoom.currentData())
        model_item = self.cut.model().item(0)  # type: ignore[attr-defined]
        model_item.setEnabled(not zoomed)
        if zoomed and self.cut.currentData() == "practice":
            self._quiet = True
            self.cut.setCurrentIndex(self.cut.findData("clinician-type"))
            self._quiet = False
        elif not zoomed and self.cut.currentData() != "practice":
            self._quiet = True
            self.cut.setCurrentIndex(0)
            self._quiet = False
        self._changed()

    def zoom_to(self, practice_id: str | None) -> None:
        self.zoom.setCurrentIndex(max(self.zoom.findData(practice_id or ANY), 0))

    def _changed(self) -> None:
        self._limit_crossing()
        if not self._quiet:
            self._timer.start()

    def _limit_crossing(self) -> None:
        """A figure can cross two of mode, clinician type and category at most, and by week none (the store keeps
        its suppression in two-way tables, and cross-cuts by month: app/insight/store.py `figures`): the filters
        beyond that are set back to Any (weeks chosen with two in use: the second filter), the others greyed, with why
        in the tooltip."""
        boxes = {"mode": self.mode, "clinician-type": self.clinician, "category": self.category}
        cut = self.cut.currentData()
        weekly = self.grain.currentData() == "week"
        limit = 1 if weekly else 2
        filtered = [dim for dim, box in boxes.items() if box.currentData() and dim != cut]
        while len(filtered) + (cut in boxes) > limit and filtered:
            dropped = boxes[filtered.pop()]
            quiet, self._quiet = self._quiet, True
            dropped.setCurrentIndex(0)
            self._quiet = quiet
        in_use = set(filtered) | ({cut} if cut in boxes else set())
        why = ("By week, a figure is cut or filtered by one of mode, clinician type and category (its weekly cells "
               "crossing two are nearly all under 5)" if weekly else
               "A figure can cross two of mode, clinician type and category at a time, so that small counts stay "
               "hidden")
        for dim, box in boxes.items():
            free = dim in in_use or len(in_use - {dim}) < limit
            box.setEnabled(free)
            box.setToolTip("" if free else why + ": set the other back to Any first.")
        model = self.cut.model()
        for row in range(self.cut.count()):
            dim = self.cut.itemData(row)
            if dim in boxes:
                model.item(row).setEnabled(len(set(filtered) - {dim}) < limit)  # type: ignore[attr-defined]

    def period_text(self) -> str | None:
        first = self.period.currentData()
        if first is None:
            return None
        if self.grain.currentData() == "range":
            last = self.until.currentData() or first
            if last < first:
                first, last = last, first
            return first if first == last else f"{first}..{last}"
        return str(first)

    def query(self, weights: dict[str, float]) -> ViewQuery | None:
        period = self.period_text()
        if period is None:
            return None
        filters = {key: box.currentData() for key, box in (("mode", self.mode), ("clinician-type", self.clinician),
                                                            ("category", self.category)) if box.currentData()}
        return ViewQuery(self.measure.currentData(), self.cut.currentData(), period, self.zoom.currentData() or None,
                         filters, weights)
