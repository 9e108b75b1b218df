"""`mosaic` on a Linux computer without Qt's xcb libraries says which packages to install, instead of Qt's abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.machine import TEST_MACHINE_DIR_ENV
from tests.qt_libs_launcher import HIDDEN_LIBS_ENV

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's Linux libraries")

LAUNCHER = [sys.executable, "-m", "tests.qt_libs_launcher"]


def without(libs: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a computer with a screen whose loader cannot find `libs`."""
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # Qt's default: the xcb platform
    env.update({HIDDEN_LIBS_ENV: libs, "DISPLAY": ":99", TEST_MACHINE_DIR_ENV: str(tmp_path / "machine"),
                "MOSAIC_HOME": str(tmp_path / "home")})
    return env


@pytest.mark.parametrize("command", [[], ["demo"]])
def test_the_window_names_the_packages_and_exits_1(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run([*LAUNCHER, *command], env=without("libxcb-cursor.so.0,libxkbcommon-x11.so.0", tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "missing (libxkbcommon-x11.so.0, libxcb-cursor.so.0)" in result.stderr
    assert "sudo apt install libxkbcommon-x11-0 libxcb-cursor0" in result.stderr
    assert "platform plugin" not in result.stderr and "Aborted" not in result.stderr  # never Qt's own words
    assert result.stdout == ""


def test_doctor_reports_the_missing_packages(tmp_path: Path) -> None:
    result = subprocess.run([*LAUNCHER, "doctor", "--json"], env=without("libxcb-cursor.so.0", tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "qt-libraries")
    assert check["status"] == "fail" and "libxcb-cursor.so.0 (libxcb-cursor0)" in check["detail"]
    assert check["action"] == "sudo apt install libxcb-cursor0"
