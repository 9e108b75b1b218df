"""Starting and stopping the window. Nothing touches the network until the window is on screen."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QApplication

    from app.core.config import IdentitySettings
    from app.core.model import Practice
    from app.ui.bridge import AsyncBridge
    from app.ui.main_window import MainWindow, StartDemo


def ensure_application() -> QApplication:
    """The running QApplication, created (with the window's base font) if there is none."""
    from PySide6.QtWidgets import QApplication

    running = QApplication.instance()
    if running is not None:
        if not isinstance(running, QApplication):
            raise RuntimeError("a Qt application without widgets is already running: Mosaic's window needs a "
                               "QApplication")
        return running
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Mosaic")
    app.setApplicationDisplayName("Mosaic")
    app.setOrganizationName("Mosaic")
    app.setDesktopFileName("mosaic")
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
        app.setFont(font)
    return app


def build_window(practices: list[Practice], *, start_demo: StartDemo | None = None,
                 bridge: AsyncBridge | None = None, central_url: str | None = None,
                 identity: IdentitySettings | None = None,
                 open_url: Callable[[str], object] | None = None,
                 core_options: dict[str, Any] | None = None) -> tuple[MainWindow, AsyncBridge]:
    """The real window and its bridge, not shown and without an event loop (tests, benchmarks).
    `core_options` go to MosaicCore (e.g. the demo's `notify` settings).

    Showing the window starts signing in. Shut down with `bridge.shutdown(window.core)`.
    """
    ensure_application()
    from app.core.service import MosaicCore
    from app.ui.bridge import AsyncBridge
    from app.ui.main_window import MainWindow

    bridge = bridge or AsyncBridge()
    window = MainWindow(bridge, start_demo=start_demo)
    core = MosaicCore(practices, on_state=window.on_core_state, on_outbox_status=window.on_outbox_status,
                      central_url=central_url, **(core_options or {}))
    if identity is not None and identity.configured:
        from app.core.identity import Identity

        core.identity = Identity(identity, open_url=open_url)  # one sign-in, then every practice opens
    window.set_core(core)
    from app.core.session_lock import IdleLock
    from app.ui.lock import WindowLock

    window.lock = WindowLock(window, IdleLock.from_settings(identity) if identity is not None else None)
    return window, bridge


def settle_heap(window: MainWindow | None = None) -> None:
    """What exists once the window is built (Qt and the libraries the core loaded, the window itself, an
    in-process demo's practices) lives as long as the process: take it out of the cyclic garbage
    collector's sight. A full collection stops every thread, the GUI thread included, for as long as it
    walks the heap: about 40 ms with all of this in it, in the middle of opening a record. Garbage made
    later is collected as before.

    Only `run_window` does this, once per process: a process that builds and closes many windows (the
    tests) would otherwise keep every closed window's Python objects out of the collector for good.

    The audit journal's libraries (SQLAlchemy) are imported here too, before the window is shown. The
    core opens the journal in a worker thread when signing in starts, and an import there holds the
    interpreter lock for most of its ~100 ms (PySide6 also reads the source of every module imported after
    it): the window, just painted, would not answer input meanwhile. Imported now, that time is part of
    the start, and what they make is frozen with the rest. So is pyqtgraph, for the trend charts
    (app.ui.trends.prepare: ~0.3 s with numpy; in a worker it stalled the window for 80-100 ms).

    With `window`, the heap is settled again, once each, when signing in first finishes and when the first
    record is on screen: the core imports the HTTP, keyring and journal libraries (and the migrations) only
    when it first signs in and reads, ~300 modules and 35,000 objects that live as long as the process. Left
    in sight they made every later full collection take 35-50 ms (with 20 records open; 15-20 ms
    without them). A young collection runs before each of these two freezes: what it leaves is mostly in
    use, and garbage already old by then (little, so early) stays for good."""
    import app.core.audit.journal  # noqa: F401 - imported for its side effect, see above
    import app.core.audit.outbox  # noqa: F401
    import app.core.audit.recorder  # noqa: F401
    from app.ui.locality import prepare as prepare_locality_view
    from app.ui.trends import prepare as prepare_trend_charts

    prepare_trend_charts()
    prepare_locality_view()  # ~35 ms here; ~50 ms of one pass of the GUI thread at the view's first open

    gc.collect()
    gc.freeze()
    if window is not None:
        _settle_again_after_first(window.sign_in_finished)
        _settle_again_after_first(window.record_finished)


def _settle_again_after_first(signal: SignalInstance) -> None:
    def once(*_: object) -> None:
        signal.disconnect(once)
        gc.collect(1)  # the young garbage first: a frozen object is never collected
        gc.freeze()

    signal.connect(once)


def run_window(practices: list[Practice], *, start_demo: StartDemo | None = None,
               on_close: Callable[[], None] | None = None, central_url: str | None = None,
               identity: IdentitySettings | None = None, open_url: Callable[[str], object] | None = None,
               core_options: dict[str, Any] | None = None) -> int:
    """Show the window, run until it closes, close every session, and return the exit code."""
    from app.ui.stop_signals import StopSignals

    app = ensure_application()
    window, bridge = build_window(practices, start_demo=start_demo, central_url=central_url, identity=identity,
                                  open_url=open_url, core_options=core_options)
    # Quit when *this* window closes. Qt's own last-window quit is posted as an event, and one left over
    # after exec() returns would end the next event loop at once (a second run, or a test), so it is off.
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(app.quit)
    stop_signals = StopSignals(window.close)  # SIGTERM (logging out, kill) and Ctrl+C close it as its button does
    settle_heap(window)
    window.show()
    try:
        code = app.exec()
    finally:
        stop_signals.remove()
        window.closed.disconnect(app.quit)
        app.setQuitOnLastWindowClosed(quit_on_last)
        if window.isVisible():
            window.close()
        clean = bridge.shutdown(window.core)
        if on_close is not None:
            on_close()
    if not clean:
        _end_process(int(code))
    return int(code)


def _end_process(code: int) -> NoReturn:
    """Work the core abandoned at shutdown (a keyring or store call that never answers) runs in threads
    Python would wait for at exit, for ever. Every journal entry is already committed and the outbox keeps
    what is undelivered, so end the process now, with logs and output flushed."""
    import logging
    import os

    logging.getLogger("mosaic.ui").warning("ending without waiting for work that did not finish")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
