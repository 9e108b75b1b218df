"""Insight store fixtures: a DuckDB file in tmp_path, and PostgreSQL (127.0.0.1, database `test`) in a schema
of the test's own that is dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.insight.store import InsightStore

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql://", "postgresql://", 1), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the reason to skip
        return f"PostgreSQL at {PG_URL} not reachable ({type(exc).__name__})"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"insight_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def duck_store(tmp_path: Path) -> Iterator[InsightStore]:
    store = InsightStore.open(tmp_path / "insight" / "insight.duckdb")
    yield store
    store.close()


@pytest.fixture
def pg_store(pg_schema: str) -> Iterator[InsightStore]:
    store = InsightStore.open(PG_URL, schema=pg_schema)
    yield store
    store.close()


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest) -> InsightStore:
    """The same test on both engines."""
    return request.getfixturevalue("duck_store" if request.param == "duckdb" else "pg_store")
