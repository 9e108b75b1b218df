"""`mosaic doctor`'s insight store check, against real DuckDB files (and a real process holding one open) and the
real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.doctor.insight_store import NAME, STALE_AFTER, insight_store
from app.core.doctor.result import Status
from app.insight.store import InsightStore

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def _store(path: Path, *rows: tuple[str, str, str, str | None, datetime]) -> None:
    store = InsightStore.open(path)
    try:
        for pid, name, status, error, at in rows:
            store.set_status(pid, name, status, error, at)
    finally:
        store.close()


@pytest.fixture
def store_path(mosaic_home: Path) -> Path:
    return mosaic_home / "data" / "insight.duckdb"


def test_no_store_yet_is_fine_and_doctor_makes_none(store_path: Path) -> None:
    check = insight_store(None, store_path, now=NOW)
    assert check.name == NAME and check.status is Status.OK and "No store yet" in check.detail
    assert not store_path.exists() and not store_path.parent.exists()


def test_fresh_figures_are_ok_old_or_failed_ones_are_warned_of(store_path: Path) -> None:
    earlier = NOW - timedelta(hours=2)
    _store(store_path, ("riverside", "Riverside Surgery", "ok", None, earlier),
           ("hillview", "Hillview Practice", "not provided", "Hillview Practice: not provided", earlier))
    before = store_path.read_bytes()
    check = insight_store(None, store_path, now=NOW)
    assert check.status is Status.OK, check
    assert "2 practices" in check.detail and "last refreshed 04-Dec-2026 07:30 UTC" in check.detail
    assert "no appointment book from Hillview Practice" in check.detail
    assert store_path.read_bytes() == before  # read only

    later = NOW + STALE_AFTER + timedelta(days=1)
    stale = insight_store(None, store_path, now=later)
    assert stale.status is Status.WARN and "older than 7 days" in stale.detail
    assert "mosaic insight refresh" in stale.action

    _store(store_path, ("oakfield", "Oakfield Health Centre", "failed", "Oakfield Health Centre did not answer", NOW))
    failed = insight_store(None, store_path, now=NOW)
    assert failed.status is Status.WARN
    assert "Oakfield Health Centre (Oakfield Health Centre did not answer)" in failed.detail
    assert "earlier figures still stand" in failed.action


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_store_others_can_read_fails_with_what_to_do(store_path: Path) -> None:
    _store(store_path, ("riverside", "Riverside Surgery", "ok", None, NOW))
    store_path.chmod(0o644)
    check = insight_store(None, store_path, now=NOW)
    assert check.status is Status.FAIL and "mode 0644, not 0600" in check.detail
    assert f"chmod 0600 {store_path}" in check.action
    store_path.chmod(0o600)
    store_path.parent.chmod(0o755)
    check = insight_store(None, store_path, now=NOW)
    assert check.status is Status.FAIL and "not 0700" in check.detail


def test_a_file_that_is_not_a_store_fails(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True, mode=0o700)
    store_path.write_bytes(b"not a database at all" * 100)
    store_path.chmod(0o600)
    check = insight_store(None, store_path, now=NOW)
    assert check.status is Status.FAIL and "cannot be read as an insight store" in check.detail
    assert "refresh again" in check.action


@pytest.fixture
def held_open(store_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the store open for writing, as a running Mosaic has it."""
    _store(store_path, ("riverside", "Riverside Surgery", "ok", None, NOW))
    child = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                              "print('open', flush=True); sys.stdin.read()", str(store_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "open"
    yield child
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=30)


def test_a_store_in_use_by_a_running_mosaic_is_left_alone(store_path: Path, held_open: subprocess.Popen[str]) -> None:
    check = insight_store(None, store_path, now=NOW)
    assert check.status is Status.OK and "in use by a Mosaic running now" in check.detail


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    import secrets

    import psycopg

    schema = f"doctor_insight_{secrets.token_hex(4)}"
    yield schema
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_shared_postgresql_store_is_read_without_making_anything(pg_schema: str) -> None:
    import psycopg

    empty = insight_store(PG_URL, now=NOW, schema=pg_schema)
    assert empty.status is Status.OK and "no figures yet" in empty.detail and "127.0.0.1" in empty.detail
    with psycopg.connect(PG_URL) as con:  # doctor made no schema
        assert not con.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                               [pg_schema]).fetchall()
    store = InsightStore.open(PG_URL, schema=pg_schema)
    try:
        store.set_status("riverside", "Riverside Surgery", "ok", None, NOW - timedelta(hours=1))
        store.set_status("oakfield", "Oakfield Health Centre", "failed", "Oakfield Health Centre did not answer", NOW)
    finally:
        store.close()
    check = insight_store(PG_URL, now=NOW, schema=pg_schema)
    assert check.status is Status.WARN and "2 practices" in check.detail
    assert "Oakfield Health Centre (Oakfield Health Centre did not answer)" in check.detail


def test_an_unreachable_postgresql_store_fails_naming_the_setting(pg_schema: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = insight_store(f"postgresql://postgres@127.0.0.1:{port}/test", now=NOW, schema=pg_schema)
    assert check.status is Status.FAIL and "cannot be reached" in check.detail
    assert "[insight] store_url" in check.action
