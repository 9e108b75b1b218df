"""The Locality view (issue 13): a window of its own, opened from the main window (View ▸ Locality, Ctrl+Shift+L).

`open_locality(main_window)` makes the window once and brings it forward after; the idle lock hides it while
the main window is locked (it shows the locality's business, if no patient) and shows it again after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.ui.locality.window import LocalityWindow
    from app.ui.main_window import MainWindow


def prepare() -> None:
    """Import the view's modules now (for start-up, beside pyqtgraph in app.ui.app.settle_heap): on the GUI thread at
    the first open they were ~50 ms of one pass (sixteen modules, each read again by PySide's import hook), the
    longest of the view's first open once the rest was taken apart (bench_locality gui_cpu_per_pass_ms)."""
    import duckdb  # noqa: F401 - the store's engine: imported by the refresh's worker it held the lock 35-60 ms

    import app.ui.locality.charts  # noqa: F401 - imported for the side effect
    import app.ui.locality.window  # noqa: F401


def open_locality(main: MainWindow) -> LocalityWindow | None:
    """Show the Locality window (one, reused; made for the core in use)."""
    from app.ui.locality.window import LocalityWindow

    if main.core is None:
        return None
    view: LocalityWindow | None = getattr(main, "locality", None)
    if view is not None and view.core is not main.core:  # the demo practices replaced the core
        view.release()
        view.close()
        view.deleteLater()
        view = None
    if view is None:
        view = LocalityWindow(main.bridge, main.core, main)
        main.locality = view
        main.closed.connect(view.release)  # the store closes with the window
        _follow_lock(main, view)
    view.show()
    view.raise_()
    view.activateWindow()
    view.focus_measure()  # now, or once the query bar is made (the view is made in parts, one a pass)
    return view


def _follow_lock(main: MainWindow, view: LocalityWindow) -> None:
    lock = getattr(main, "lock", None)
    if lock is None:
        return
    hidden = {"by_lock": False}

    def locked_changed(locked: bool) -> None:
        if locked and view.isVisible():
            hidden["by_lock"] = True
            view.hide()
        elif not locked and hidden["by_lock"]:
            hidden["by_lock"] = False
            view.show()

    lock.locked_changed.connect(locked_changed)
