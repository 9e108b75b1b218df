"""Tests only: the machine folder (/etc/mosaic in production) moved in-process, never by a switch that ships.

`use_machine_dir` replaces `app.core.paths.MACHINE_DIR` in this process and names the folder in
TEST_MACHINE_DIR_ENV for `mosaic` subprocesses started through `tests.cli_launcher` (CLI = its command line).
The installed `mosaic` reads no such variable: tests/ is not installed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
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


def demo_env(folder: Path) -> dict[str, str]:
    """This process's environment for a `mosaic` subprocess: no inherited MOSAIC_SECRET_*, this test's own
    per-user folder (FOLDER/home) and machine folder (FOLDER/machine: no machine-wide file until one is written)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_SECRET_")}
    env["MOSAIC_HOME"] = str(folder / "home")
    env[TEST_MACHINE_DIR_ENV] = str(folder / "machine")
    return env


@contextlib.contextmanager
def running_demo_server(config: Path, *options: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A real `mosaic demo-server --write-config CONFIG OPTIONS…` until the block ends (SIGTERM, exit 0 checked).
    Yields `env` plus the secrets it wrote to CONFIG.env: what an unattended script would run the CLI with."""
    proc = subprocess.Popen([*CLI, "demo-server", "--write-config", str(config), *options], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        secrets = dict(item.split("=", 1) for item in Path(f"{config}.env").read_text().split())
        yield {**env, **secrets}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


#: machine files must be root's alone (app/core/root_owned.py): tests that make them, or chown to another account,
#: need root. CI runs as root; as another user they skip, saying so.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: machine files must be owned by root "
                                "(app/core/root_owned.py); CI runs as root")
