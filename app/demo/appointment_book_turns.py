"""An in-process demo's appointment books let the window's GUI thread go first.

Why. `mosaic demo` runs its practices in the window's own process, and a practice's book is Python work: made the
first time it is asked for (~0.3 s a practice, five at once on a first refresh) and written out as FHIR JSON a
page at a time (~10-20 ms a page, several servers' threads at once). Each of those threads held the interpreter
lock in 5 ms turns while the GUI thread waited for it between every call into Qt: stalls of 60-200 ms while the
Locality view first opened (tests/perf/bench_locality.py --why). A real practice's server is another machine.

What. The book's loops call `give_way()` between small slices (a day of the book, a few hundred resources of a
page). Where a Qt application runs in this process, a thread that has run CHECK_EVERY_S since it last looked
stands aside PROBE_S and, while the GUI thread's CPU clock says it used that time (app/ui/gui_first.py's
GuiActivity, the same reading the core's loop waits on), waits on, MAX_WAIT_S at most a time. Without a GUI
(`mosaic demo-server`, tests without Qt) it costs a clock read a slice.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

MAX_WAIT_S = 0.025  # the longest a book's thread waits for the GUI thread at a time
CHECK_EVERY_S = 0.004  # running this long without a break, it stands aside to see whether the GUI works
PROBE_S = 0.001

_local = threading.local()
_never = threading.Event()  # waited on for PROBE_S: the lock is free for the GUI thread meanwhile


def give_way() -> None:
    """Between slices of a book's work: let the GUI thread go first if it is working (see the module's words)."""
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
