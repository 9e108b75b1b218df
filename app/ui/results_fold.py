"""The search results give their height to the records: folded away when a record opens, back with Ctrl+F,
a new search, Go to results, or the "Search results (N)" toggle.

With a record open the results used to keep some 40 % of the window; a clinician reading a record needs the
height, and the results are one key press away.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QSplitter

from app.ui.record_tabs import RecordArea
from app.ui.search_panel import SearchPanel

QWIDGETSIZE_MAX = (1 << 24) - 1
UNFOLDED_SHARE = 0.42  # of the splitter's height, for the results brought back over an open record
ALONE_SHARE = 0.72  # ... and with no record open (the rest shows only a hint)


class ResultsFold(QObject):
    def __init__(self, panel: SearchPanel, splitter: QSplitter, records: RecordArea) -> None:
        super().__init__(panel)
        self.panel, self.splitter, self.records = panel, splitter, records
        self._views = len(records.views())
        self._sizes: list[int] | None = None  # the splitter's sizes when the results were folded
        records.views_changed.connect(self._views_changed)
        panel.fold_toggled.connect(self.set_folded)
        panel.search_requested.connect(lambda _text: self.set_folded(False))
        self._fitted_width = -1
        panel.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Folded, a new width may wrap the count line onto more (or fewer) lines: fit again."""
        if event.type() == QEvent.Type.Resize and self.panel.folded and self.panel.width() != self._fitted_width:
            QTimer.singleShot(0, self, self._fit)
        return False

    @property
    def folded(self) -> bool:
        return self.panel.folded

    def show_results(self) -> None:
        """Ctrl+F: the results come back (the search box takes the focus)."""
        self.set_folded(False)

    def _views_changed(self) -> None:
        count = len(self.records.views())
        if count > self._views:  # a record opened: it gets the height
            self.set_folded(True)
        elif count == 0:
            self.set_folded(False)
            self.share_height()
        self._views = count

    def set_folded(self, folded: bool) -> None:
        if folded == self.panel.folded:
            return
        if folded:
            self._sizes = self.splitter.sizes()
            self.panel.set_folded(True)
            self._fit()
            QTimer.singleShot(0, self, self._fit)  # once the layout has settled (wrapped text, new width)
        else:
            self.panel.setMaximumHeight(QWIDGETSIZE_MAX)
            self.panel.set_folded(False)
            sizes = self._sizes if self._sizes and sum(self._sizes) > 0 else None
            if sizes is None or sizes[0] < self.panel.minimumSizeHint().height():
                self.share_height()
            else:
                self.splitter.setSizes(sizes)

    def share_height(self) -> None:
        """The results' share of the height: most of it with no record open, less over an open record."""
        if self.panel.folded:
            return
        total = sum(self.splitter.sizes()) or self.splitter.height()
        top = int(total * (UNFOLDED_SHARE if self.records.views() else ALONE_SHARE))
        self.splitter.setSizes([top, total - top])

    def _fit(self) -> None:
        """Folded, the search panel is exactly as tall as its search row and toggle line."""
        if not self.panel.folded:
            return
        layout = self.panel.layout()
        assert layout is not None
        layout.activate()
        width = self._fitted_width = self.panel.width()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() and width > 0 else -1
        if height <= 0:
            height = layout.totalSizeHint().height()
        self.panel.setMaximumHeight(height)
        total = sum(self.splitter.sizes())
        self.splitter.setSizes([height, max(0, total - height)])
