"""An in-process demo's appointment books give way to the GUI thread (app/core/gui_turns.py): with a
Qt application in the process, a book's thread waits while the GUI (main) thread is running, and not while it
is idle; without one it never waits."""

from __future__ import annotations

import threading
import time

import pytest

from app.core import gui_turns as turns


def waited_in_give_way(main_busy: bool, slices: int = 20) -> float:
    """Seconds a worker spent inside give_way() over `slices` slices of ~5 ms work, the main thread busy or idle."""
    spent: list[float] = []
    started = threading.Event()
    done = threading.Event()

    def worker() -> None:
        started.set()
        total = 0.0
        for _ in range(slices):
            until = time.thread_time() + 0.005
            while time.thread_time() < until:  # a slice of the book's Python work
                pass
            began = time.perf_counter()
            turns.give_way()
            total += time.perf_counter() - began
        spent.append(total)
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    if main_busy:
        while not done.is_set():  # the GUI thread's own work (Python: it wants the interpreter lock too)
            sum(range(2000))
    thread.join()
    return spent[0]


@pytest.mark.gui
def test_a_books_thread_waits_while_the_gui_thread_runs(qapp) -> None:
    import app.ui.gui_first  # noqa: F401 - the GUI thread's clock is read as gui_first reads it

    busy = waited_in_give_way(main_busy=True)
    idle = waited_in_give_way(main_busy=False)
    assert busy > 0.05  # it stood aside for the GUI thread, slice after slice
    assert idle < busy / 2  # one probe of a millisecond a slice, no more


def test_without_a_gui_it_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "_gui_activity", lambda: None)
    assert waited_in_give_way(main_busy=True) < 0.01
