"""SIGTERM (a desktop session logging out, `kill`) and Ctrl+C close the window as its close button does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.ui.stop_signals import StopSignals
from tests.machine import CLI, TEST_MACHINE_DIR_ENV


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_calls_stop_once_on_the_event_loop(qtbot, number: int) -> None:
    stops: list[int] = []
    before = signal.getsignal(number)
    watcher = StopSignals(lambda: stops.append(1))
    try:
        os.kill(os.getpid(), number)
        os.kill(os.getpid(), number)  # a second one while closing is not a second close
        qtbot.waitUntil(lambda: stops == [1], timeout=10_000)
    finally:
        watcher.remove()
    assert signal.getsignal(number) is before, "the handler there before is back"
    assert stops == [1]


def test_mosaic_demo_ends_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The real window (offscreen) signed in to one demo practice, then SIGTERM: exit 0 and the log says it closed."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_SECRET_")}
    env.update(MOSAIC_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env[TEST_MACHINE_DIR_ENV] = str(tmp_path / "machine")
    log = home / "logs" / "mosaic.log"
    process = subprocess.Popen([*CLI, "demo", "--practices", "1", "--patients", "20"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and "status=online" in log.read_text(encoding="utf-8", errors="replace")):
            assert process.poll() is None, f"mosaic demo ended first: {process.returncode}"
            assert time.monotonic() < deadline, "the demo practice never came online"
            time.sleep(0.1)  # polling the log for the condition, not waiting a set time
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, (process.returncode, stderr)
    assert "Traceback" not in stderr, stderr
