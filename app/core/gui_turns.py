"""Long Python work in a background thread lets the window's GUI thread go first.

Why. CPython runs one thread's Python at a time, and the GUI thread needs the interpreter lock between almost
every call into Qt. A background thread that runs Python for hundreds of milliseconds holds the lock in 5 ms
turns, and each of the GUI thread's calls waits for one: stalls of 60-200 ms were measured while the Locality
view first opened (tests/perf/bench_locality.py --why), from `mosaic demo`'s in-process practices making their
appointment books (~0.3 s a practice, written out as FHIR JSON a page at a time) and from the insight store
working out every month's and week's protected tables after a refresh (app/insight/store.py `prepare`).

What. Such loops call `give_way()` between small slices (a day of a book, a few hundred resources of a page, one
month's or week's tables). Where a Qt application runs in this process, a thread that has run CHECK_EVERY_S since
it last looked stands aside PROBE_S and, while the GUI thread's CPU clock says it used that time (app/ui/
gui_first.py's GuiActivity, the same reading the core's loop waits on), waits on, MAX_WAIT_S at most a time. Without
a GUI (`mosaic demo-server`, the CLI, tests without Qt) it costs a clock read a slice. Nothing here imports Qt: the
GUI is looked for among the modules already loaded.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

MAX_WAIT_S = 0.025  # the longest a background thread waits for the GUI thread at a time
CHECK_EVERY_S = 0.004  # running this long without a break, it stands aside to see whether the GUI works
PROBE_S = 0.001

_local = threading.local()
_never = threading.Event()  # waited on for PROBE_S: the lock is free for the GUI thread meanwhile


def give_way() -> None:
    """Between slices of a background thread's work: the GUI thread goes first if it is working (see above)."""
    now = time.monotonic()
    due: float | None = getattr(_local, "due", None)
    if due is not None and now < due:
        return
    activity = _gui_activity()
    if activity is not None:
        deadline = now + MAX_WAIT_S
        while activity.busy_while_waiting(PROBE_S, _never) and time.monotonic() < deadline:
            pass
    _local.due = time.monotonic() + CHECK_EVERY_S


def _gui_activity() -> Any:
    """The GUI thread's CPU clock as app.ui.gui_first reads it, for this thread; None without a GUI here."""
    if not hasattr(_local, "activity"):
        _local.activity = None
        gui_first = sys.modules.get("app.ui.gui_first")
        widgets = sys.modules.get("PySide6.QtWidgets")
        if gui_first is not None and widgets is not None and widgets.QApplication.instance() is not None:
            _local.activity = gui_first.GuiActivity.of(threading.main_thread().ident)
    return _local.activity
