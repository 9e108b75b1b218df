"""The idle lock's input sampling stops while records are put on screen (app/ui/lock.py): its application-wide
filter would otherwise be a call into Python for every event of every widget they make, show and lay out."""

from __future__ import annotations

import pytest

from app.core.session_lock import IdleLock
from app.ui.lock import WindowLock
from app.ui.record_view import build_step

pytestmark = pytest.mark.gui


def test_input_is_not_sampled_while_records_are_built_and_is_again_after(qtbot, window) -> None:
    lock = WindowLock(window, IdleLock(timeout_s=600), sample_every_ms=0)
    qtbot.waitUntil(lambda: lock.listening)
    seen: list[bool] = []
    build_step(lambda: seen.append(lock.listening))  # a record-building step: what the lock does meanwhile
    qtbot.waitUntil(lambda: bool(seen))
    assert seen == [False], "no application-wide filter while a record is being built"
    qtbot.waitUntil(lambda: lock.listening)  # the steps are done: input is sampled again
    lock.detach()
    ran: list[int] = []
    build_step(lambda: ran.append(1))  # steps start and end: a detached lock is not told to listen again
    qtbot.waitUntil(lambda: bool(ran))
    assert not lock.listening, "a detached lock never listens again"
