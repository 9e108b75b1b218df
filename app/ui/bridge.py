"""The bridge between Qt's GUI thread and the core's asyncio loop.

The core's practice I/O runs on one asyncio loop in a dedicated daemon thread (QtAsyncio does not
work with httpx). The GUI thread only submits coroutines and receives results: every callback the
bridge delivers runs on the GUI thread, via a queued Qt signal, so widgets are only touched there.

Callbacks wait in one first-in first-out queue. The GUI thread runs them for at most DRAIN_BUDGET_S per
event-loop pass and leaves the rest for the next pass, so answers that arrive together (ten records,
twenty practices' search results) never hold the GUI thread in one long stall: input and painting get
their turn in between. The core's loop itself waits its turn while the GUI thread is handling events
(app/ui/gui_first.py): both need the interpreter lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from app.core.thread_priority import lower_this_thread
from app.ui.gui_first import GuiFirstGate, GuiFirstLoop, gui_busy

log = logging.getLogger("mosaic.ui.bridge")

DoneCallback = Callable[[Any], object]  # what it returns is not used
ErrorCallback = Callable[[BaseException], None]
DRAIN_BUDGET_S = 0.006  # callbacks run per event-loop pass, at least one
SHUTDOWN_BUDGET_S = 1.0  # closing the window never holds the GUI thread longer than this


class Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


class AsyncBridge(QObject):
    """One asyncio loop in a daemon thread; results come back to the GUI thread as queued signals."""

    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gate = GuiFirstGate()
        self._loop = GuiFirstLoop(self.gate)
        self._ready = threading.Event()
        self._closed = False
        self._queue: deque[Callable[[], object]] = deque()
        self._queue_lock = threading.Lock()
        self._wake_posted = False  # a drain is already on its way to the GUI thread
        self._thread = threading.Thread(target=self._run, name="mosaic-core-loop", daemon=True)
        # Queued explicitly: a callable posted from the GUI thread itself also waits for the event loop,
        # so callbacks never run re-entrantly inside the caller.
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        # The rest of a long queue waits for a zero timer rather than another posted event: timers, input
        # and painting get their turn after each pass (a posted event would run twice between two ticks).
        self._more = QTimer(self)
        self._more.setSingleShot(True)
        self._more.setInterval(0)
        self._more.timeout.connect(self._drain)
        self._thread.start()
        self._ready.wait()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def running(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def _run(self) -> None:
        # The core's loop and its workers (the journal's writes, the keyring) below the GUI thread in the
        # scheduler: when both want a CPU, the window goes first (app/core/thread_priority.py).
        lower_this_thread()
        self._loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix="mosaic-core-worker", initializer=lower_this_thread))
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def submit(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback | None = None,
               on_error: ErrorCallback | None = None, *,
               receiver: QObject | None = None) -> concurrent.futures.Future[Any]:
        """Run `coro` on the core loop. `on_done(result)` or `on_error(exc)` later runs on the GUI thread.

        A cancelled future calls neither; nor does an answer for a `receiver` (the widget the answer is
        for) that Qt has deleted by the time it arrives: it is dropped, and the caller need not check.
        """
        if not self.running:
            coro.close()
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_exception(RuntimeError("The background loop has been shut down."))
            return future
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)

        def settled(f: concurrent.futures.Future[Any]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                if on_error is not None:
                    self.post(lambda: on_error(exc), receiver=receiver)
                else:
                    log.error("background task failed", exc_info=exc)
            elif on_done is not None:
                result = f.result()
                self.post(lambda: on_done(result), receiver=receiver)

        future.add_done_callback(settled)
        return future

    def post(self, fn: Callable[[], object], *, receiver: QObject | None = None) -> None:
        """Run `fn` on the GUI thread soon. Safe to call from any thread (core listener callbacks).

        With a `receiver`, `fn` runs only if that object still exists then."""
        if self._closed:
            return
        if receiver is not None:
            fn = _for_receiver(receiver, fn)
        with self._queue_lock:
            self._queue.append(fn)
            if self._wake_posted:
                return
            self._wake_posted = True
        self._post_wake()

    def _post_wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the C++ object may be gone at interpreter exit
            self._wake.emit()

    @Slot()
    def _drain(self) -> None:
        """Run queued callbacks in order for about DRAIN_BUDGET_S, then yield to the event loop."""
        with gui_busy():
            self._drain_some()

    def _drain_some(self) -> None:
        deadline = time.perf_counter() + DRAIN_BUDGET_S
        while True:
            with self._queue_lock:
                if not self._queue:
                    self._wake_posted = False
                    return
                fn = self._queue.popleft()
            try:
                fn()
            except Exception:
                log.exception("GUI callback failed")
            if time.perf_counter() >= deadline:
                break
        with self._queue_lock:
            if not self._queue:
                self._wake_posted = False
                return
        self._more.start()  # the rest in the next pass, after pending input, timers and painting

    def shutdown(self, core: Closable | None = None, timeout_s: float = SHUTDOWN_BUDGET_S) -> bool:
        """Close the core (sessions, connections) on its loop, cancel what is left, stop the loop.

        Blocks the calling thread for at most about `timeout_s` in all, however a practice, the keyring or
        the central store behaves: whatever has not finished by then is abandoned (the journal commits each
        entry before anything is shown, and the outbox keeps what is undelivered for the next start).
        True when everything closed in time; False tells the caller that work was abandoned, so the process
        should end without waiting for it (see `app.ui.app.run_window`).
        """
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        self.gate.open_for_good()  # this thread now waits for the core: let it run
        deadline = time.monotonic() + timeout_s

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - time.monotonic()) * share)

        clean = True
        if core is not None and self._thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(_await(core.close()), self._loop)
            try:
                closing.result(timeout=left(0.7))
            except Exception:
                clean = False
                closing.cancel()
                log.warning("closing the core did not finish in time; abandoned", exc_info=True)
        if self._thread.is_alive():
            stopping = asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop)
            try:
                stopping.result(timeout=left(0.8))
            except Exception:
                clean = False
                log.warning("cancelling the core's tasks did not finish in time")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(left())
        return clean and not self._thread.is_alive()


def _for_receiver(receiver: QObject, fn: Callable[[], object]) -> Callable[[], object]:
    def delivered() -> None:
        if shiboken6.isValid(receiver):
            fn()
        else:
            log.debug("an answer for a widget that has gone was dropped")

    return delivered


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
