"""Tests only: the machine folder (/etc/mosaic in production) moved in-process, never by a switch that ships.

`use_machine_dir` replaces `app.core.paths.MACHINE_DIR` in this process and names the folder in
TEST_MACHINE_DIR_ENV for `mosaic` subprocesses started through `tests.cli_launcher` (CLI = its command line).
The installed `mosaic` reads no such variable: tests/ is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.core import paths

TEST_MACHINE_DIR_ENV = "MOSAIC_TEST_MACHINE_DIR"
#: `mosaic` in a subprocess, with this test's machine folder (the launcher reads TEST_MACHINE_DIR_ENV)
CLI = [sys.executable, "-m", "tests.cli_launcher"]
REPO = Path(__file__).resolve().parents[1]


def use_machine_dir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    monkeypatch.setattr(paths, "MACHINE_DIR", folder)
    monkeypatch.setenv(TEST_MACHINE_DIR_ENV, str(folder))
    return folder


def write_machine_file(text: str, folder: Path | None = None) -> Path:
    """Write the machine-wide practices.toml (replacing it) in this test's machine folder."""
    folder = folder or paths.MACHINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    path = folder / "practices.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    return path


def add_machine_table(text: str, folder: Path | None = None) -> Path:
    """Append `text` (whole tables) to the machine-wide practices.toml, creating it when missing."""
    path = (folder or paths.MACHINE_DIR) / "practices.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    return write_machine_file(text + "\n" + before, folder)


def set_machine_policy(policy: Path, folder: Path | None = None) -> Path:
    """Name `policy` in the machine-wide practices.toml's [policy] table (replacing one named before)."""
    import re

    path = (folder or paths.MACHINE_DIR) / "practices.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    before = re.sub(r"(?m)^\[policy\]\nfile = .*\n", "", before)
    return write_machine_file(f'[policy]\nfile = "{policy}"\n\n' + before, folder)
