"""Full garbage collections when the window has nothing to do, never in the middle of opening a record.

CPython starts a full (oldest-generation) collection by itself after enough younger ones: with 20 records open
that walk took 28-47 ms of the GUI thread (every thread stops for it), and it fell where the allocations are,
while ten records were being put on screen at once, on top of their own steps. `install` stops the automatic
full collections and runs them from a timer instead, only when no record is being put on screen and some
younger collections have happened since the last (there is something new to look at). Younger collections
(a few milliseconds) run as before. Installed by `app.ui.app.settle_heap`, with the rest of the start-up heap
settings; the tests, which do not call it, collect as CPython does.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 2000  # how often to look for a quiet moment
NEVER_BY_ITSELF = 1_000_000  # a third threshold no count reaches: no automatic full collection

_COLLECTOR: IdleCollector | None = None


class IdleCollector(QObject):
    def __init__(self, busy: Callable[[], bool]) -> None:
        super().__init__()
        self._busy = busy
        self.collections = 0
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_MS)
        self.timer.timeout.connect(self.collect_if_idle)

    def collect_if_idle(self) -> bool:
        """One full collection when nothing is being built and the younger generations have been collected
        since the last one (otherwise there is nothing new to find)."""
        if gc.get_count()[2] == 0 or self._busy():
            return False
        gc.collect(2)
        self.collections += 1
        return True


def install(busy: Callable[[], bool]) -> IdleCollector:
    """Full collections from now on only when `busy()` is False (checked every CHECK_MS). Once per process."""
    global _COLLECTOR
    if _COLLECTOR is None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER_BY_ITSELF)
        _COLLECTOR = IdleCollector(busy)
        _COLLECTOR.timer.start()
    return _COLLECTOR
