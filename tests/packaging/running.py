"""Running a built `mosaic` (the bundle's or the installed one) as a user would, in a clean environment."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: the longest any condition below is waited for; each wait ends as soon as its condition holds
DEADLINE_S = 120.0


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen | None = None) -> None:
    """Poll `condition` until it holds; fail naming `what` if the process ends first or the deadline passes."""
    end = time.monotonic() + DEADLINE_S
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (exit {process.returncode})")
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {DEADLINE_S:.0f} s")
        time.sleep(0.1)


def read_env_file(path: Path) -> dict[str, str]:
    """The MOSAIC_SECRET_… lines `demo-server --write-config` writes beside its config (its own MOSAIC_HOME left
    out: the user's files are under the user's home)."""
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    return {name: value for name, value in pairs if name != "MOSAIC_HOME"}


@contextmanager
def demo_server(mosaic: Path, home: Path, env: dict[str, str]) -> Iterator[Path]:
    """`mosaic demo-server --write-config` (50 patients a practice) until the block ends; yields the config file."""
    config = home / "demo.toml"
    process = subprocess.Popen([str(mosaic), "demo-server", "--write-config", str(config), "--patients", "50"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server says it is ready (or ends)
        assert line.strip() == "ready", f"demo-server: {line!r} {process.stderr.read() if process.poll() else ''}"
        yield config
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0, process.returncode


def run_window_offscreen(mosaic: Path, home: Path) -> tuple[int, str]:
    """`mosaic demo` offscreen: started, waited for until every demo practice is online in its log, then ended
    with SIGTERM. Returns its exit status and stderr."""
    logs = home / "mosaic-home" / "logs" / "mosaic.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home),
           "MOSAIC_HOME": str(home / "mosaic-home"), "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen([str(mosaic), "demo", "--patients", "50"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        def all_online() -> bool:
            return logs.exists() and logs.read_text(encoding="utf-8", errors="replace").count("status=online") >= 5

        wait_for(all_online, "the window's five demo practices online", process)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr
