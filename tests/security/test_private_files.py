"""Class 8: patient-data files readable by everyone.

Every folder and file Mosaic makes for patient data — the journal and its -wal/-shm, the notify queue
(phone numbers) and its -wal/-shm, the logs, an export, the per-user folders under MOSAIC_HOME or the
platform's folders — is user-only: folders 0700, files 0600 from the moment they exist, whatever the umask,
and ones an older Mosaic left readable are tightened when opened. Proved by an unprivileged second account
that tries to read each of them (and can read a control file beside them).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import paths
from app.core.audit.journal import Journal
from app.core.notify.queue import NotifyQueue
from tests.security.other_account import OtherAccount

REPO = Path(__file__).resolve().parents[2]

LOG_AND_EXPORT = """
import logging, subprocess, sys
from app.core.logs import setup_logging
setup_logging()
logging.getLogger("mosaic.security-test").info("a line in the log")
sys.exit(subprocess.run([sys.executable, "-m", "app.cli", "audit", "export", "--format", "csv",
                         "--output", sys.argv[1]]).returncode)
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def everything_under(root: Path) -> Iterator[Path]:
    yield root
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(folder) / name


@pytest.fixture(params=["mosaic-home", "platform-folders"])
def layout(request: pytest.FixtureRequest, shared_folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Where Mosaic's per-user folders go: under MOSAIC_HOME, or the platform's (XDG) folders. Returns the
    folders Mosaic owns; every parent is 0755, so only Mosaic's own modes keep another account out."""
    if request.param == "mosaic-home":
        monkeypatch.setenv("MOSAIC_HOME", str(shared_folder / "home"))
    else:
        monkeypatch.delenv("MOSAIC_HOME", raising=False)
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            base = shared_folder / "xdg" / name.lower()
            base.mkdir(parents=True)
            os.chmod(base, 0o755)
            monkeypatch.setenv(f"XDG_{name}_HOME", str(base))
        os.chmod(shared_folder / "xdg", 0o755)
    roots = sorted({paths.user_config_dir(), paths.user_data_dir(), paths.user_log_dir()})
    assert all(shared_folder in r.parents for r in roots), roots
    return roots


def run_log_and_export(export: Path) -> None:
    result = subprocess.run([sys.executable, "-c", LOG_AND_EXPORT, str(export)], cwd=REPO, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def assert_private(roots: list[Path], export: Path, other: OtherAccount, shared_folder: Path) -> list[Path]:
    control = shared_folder / "control.txt"
    control.write_text("anyone may read this")
    os.chmod(control, 0o644)
    assert other.can_read(control), "the other account must be able to read an ordinary file here"
    found = [p for root in roots if root.exists() for p in everything_under(root)]
    wrong = {str(p): oct(mode(p)) for p in found
             if mode(p) != (0o700 if p.is_dir() else 0o600)}
    assert not wrong, f"not user-only: {wrong}"
    assert mode(export) == 0o600, oct(mode(export))
    readable = [str(p) for p in [*found, export] if other.can_read(p)]
    assert not readable, f"{other.name} can read {readable}"
    return found


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_every_patient_data_file_is_user_only_from_creation(other_account: OtherAccount,
                                                           shared_folder: Path, layout: list[Path],
                                                           umask: int) -> None:
    old = os.umask(umask)
    try:
        journal = Journal.open()
        try:
            queue = NotifyQueue.open()
            with queue._tx():  # inside a transaction: SQLite has made notify.sqlite-wal and -shm
                notify_side = {s: queue.path.with_name(queue.path.name + s) for s in ("-wal", "-shm")}
                assert all(p.exists() for p in notify_side.values())
                assert {s: oct(mode(p)) for s, p in notify_side.items()} == {"-wal": "0o600", "-shm": "0o600"}
            for suffix in ("-wal", "-shm"):  # the journal keeps its connections open: its side files are there
                assert journal.path.with_name(journal.path.name + suffix).exists()
            export = shared_folder / "access-export.csv"
            run_log_and_export(export)
            found = assert_private(layout, export, other_account, shared_folder)
        finally:
            journal.close()
    finally:
        os.umask(old)
    names = {p.name for p in found}
    assert {"journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "notify.sqlite", "mosaic.log"} <= names


def test_files_an_older_version_left_readable_are_tightened_on_open(other_account: OtherAccount,
                                                                   shared_folder: Path,
                                                                   layout: list[Path]) -> None:
    old = os.umask(0o022)
    try:
        Journal.open().close()
        NotifyQueue.open()
        export = shared_folder / "access-export.csv"
        run_log_and_export(export)
        journal_path = Journal.open().path
        leftover = sqlite3.connect(journal_path)  # another process still has it open: -wal and -shm are there
        try:
            leftover.execute("PRAGMA journal_mode=WAL")
            leftover.execute("SELECT count(*) FROM sqlite_master").fetchone()
            for root in filter(Path.exists, layout):  # as an older Mosaic left them: 0755 folders, 0644 files
                for p in everything_under(root):
                    os.chmod(p, 0o755 if p.is_dir() else 0o644)
            os.chmod(export, 0o644)
            assert other_account.can_read(journal_path), "the setup must start world-readable"
            journal = Journal.open()
            NotifyQueue.open()
            run_log_and_export(export)
            journal.close()
            assert_private(layout, export, other_account, shared_folder)
        finally:
            leftover.close()
    finally:
        os.umask(old)
