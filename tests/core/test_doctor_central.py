"""`mosaic doctor`'s central audit store check against the real PostgreSQL (127.0.0.1:5432, database `test`),
set up from packaging/central-audit-postgres.sql in a schema and roles of this run's own (as
tests/core/test_audit_central.py does; skipped, saying why, when no PostgreSQL answers)."""

from __future__ import annotations

import socket

import pytest

from app.core.doctor.network_checks import central_store
from app.core.doctor.result import Status
from tests.core import test_audit_central as central_setup
from tests.core.test_audit_central import Names, admin, pg_url

names = central_setup.names  # the module-scoped fixture: this run's schema and roles, dropped afterwards

psycopg = pytest.importorskip("psycopg")


def count_rows(schema: str) -> int:
    with admin() as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}".audit_entry').fetchone()[0]


def test_a_workstation_login_that_may_add_entries(names: Names) -> None:
    before = count_rows(names.schema)
    check = central_store(pg_url(names.ws_login), schema=names.schema)
    assert check.status is Status.OK, check.detail
    assert check.detail == (f"postgresql+psycopg://{names.ws_login}@127.0.0.1:5432/test: reachable; this login may "
                            "add entries and checkpoints (nothing was added).")
    assert count_rows(names.schema) == before


def test_a_login_that_may_only_read_fails(names: Names) -> None:
    check = central_store(pg_url(names.auditor_login), schema=names.schema)
    assert check.status is Status.FAIL
    assert f"this login may not add rows to {names.schema}.audit_entry (no INSERT on entry_id, seq" in check.detail
    assert "GRANT mosaic_workstation" in check.action


def test_a_store_without_the_schema_fails_naming_the_sql_file(names: Names) -> None:
    check = central_store(pg_url("postgres"), schema=f"{names.schema}_missing")
    assert check.status is Status.FAIL and f"there is no table {names.schema}_missing.audit_entry" in check.detail
    assert "packaging/central-audit-postgres.sql" in check.action


def test_an_unknown_login_fails_with_what_to_do(names: Names) -> None:
    check = central_store(pg_url(f"{names.ws_login}_nobody"), schema=names.schema)
    assert check.status is Status.FAIL and "could not be reached" in check.detail
    assert f'role "{names.ws_login}_nobody" does not exist' in check.detail
    assert "mosaic credentials set central" in check.action


def test_a_store_that_is_down_fails() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = central_store(f"postgresql+psycopg://mosaic_ws@127.0.0.1:{port}/audit")
    assert check.status is Status.FAIL and f"127.0.0.1:{port}/audit" in check.detail
    assert "Connection refused" in check.detail or "connection failed" in check.detail


def test_a_url_mosaic_refuses_is_a_failure_before_anything_is_sent() -> None:
    check = central_store("postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit?sslmode=require")
    assert check.status is Status.FAIL and "sslmode=verify-full" in check.detail
