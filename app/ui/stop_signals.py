"""SIGTERM and SIGINT close the window the way its close button does: sessions closed, the outbox and the
journal left consistent, exit status 0. Without this a desktop session logging out (SIGTERM), `kill`, or Ctrl+C
in the terminal ended the process where it stood.

Python runs a signal's handler only between bytecodes of the main thread, and Qt's event loop waits in C++: so
the handler is woken the standard way, through `signal.set_wakeup_fd` on one end of a socket pair whose other
end a `QSocketNotifier` watches (reading it runs Python, and with it the pending handler)."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, QTimer

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals(QObject):
    """While installed (main thread only), SIGTERM/SIGINT call `stop` on the GUI thread, once."""

    def __init__(self, stop: Callable[[], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stop = stop
        self._stopping = False
        self._installed = threading.current_thread() is threading.main_thread()
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        if not self._installed:
            return
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._woken)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def _woken(self) -> None:
        try:
            while self._reader.recv(64):
                pass
        except OSError:  # drained (BlockingIOError) or closed
            pass

    def _handle(self, _number: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            self._stopping = True
            QTimer.singleShot(0, self._stop)  # out of the handler, on the event loop

    def remove(self) -> None:
        """Put back what was there before (the window has closed)."""
        if not self._installed:
            return
        self._installed = False
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()
