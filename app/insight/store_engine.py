"""The insight store's two engines behind one small interface: DuckDB in a file, or PostgreSQL.

Why a small dialect layer and not SQLAlchemy Core: every query the store runs (the schema, the grouped sums,
the median as `percentile_cont(0.5) WITHIN GROUP`, `INSERT ... ON CONFLICT (practice_id, id) DO UPDATE`) is
the same ANSI/PostgreSQL text on both engines, so the SQL *is* written once; what differs is only the bulk
path, which SQLAlchemy does not abstract: DuckDB scans a dict of NumPy columns in place (250,000 rows in
well under a second; `executemany` took over 30 s), PostgreSQL takes them by `COPY`. SQLAlchemy over DuckDB
would also need the duckdb_engine package for no gain. Parameters are written `?` and turned into psycopg's
`%s` for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

#: (name, SQL type) of each column of a table, in order
Columns = Sequence[tuple[str, str]]


class Engine(Protocol):
    kind: str  # "duckdb" | "postgresql"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def stage(self, name: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def unstage(self, name: str) -> None: ...
    def append(self, table: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None: ...
    def close(self) -> None: ...


class DuckDbEngine:
    kind = "duckdb"

    def __init__(self, path: str) -> None:
        import duckdb

        self._con = duckdb.connect(path)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params))

    def begin(self) -> None:
        self._con.begin()

    def commit(self) -> None:
        self._con.commit()

    def rollback(self) -> None:
        self._con.rollback()

    def stage(self, name: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        """`rows` as a relation `name`, typed as `columns`: a view over NumPy object columns, no copy."""
        raw = f"{name}_raw"
        self._con.register(raw, _object_columns(columns, rows))
        casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in columns)
        self._con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {casts} FROM {raw}")

    def unstage(self, name: str) -> None:
        self._con.execute(f"DROP VIEW IF EXISTS {name}")
        self._con.unregister(f"{name}_raw")

    def append(self, table: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        """`rows` inserted into `table` straight from NumPy columns (no view made and dropped: a refresh appends
        a few hundred pages, and the view cost ~5 ms each)."""
        raw = f"{table}_append"
        arrays = _object_columns(columns, rows)
        casts = ", ".join(_instants(c, arrays) if t == "TIMESTAMPTZ" else f"CAST({c} AS {t})" for c, t in columns)
        self._con.register(raw, arrays)
        try:
            self._con.execute(f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) SELECT {casts} FROM {raw}")
        finally:
            self._con.unregister(raw)

    def close(self) -> None:
        self._con.close()


class PostgresEngine:
    kind = "postgresql"

    def __init__(self, conninfo: str, schema: str, connect_args: dict[str, Any]) -> None:
        import psycopg

        self._con = psycopg.connect(conninfo, autocommit=True, **connect_args)
        self.schema = schema
        self._con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._con.execute(f'SET search_path TO "{schema}"')
        self._in_transaction = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._con.cursor() as cur:
            cur.execute(_pg(sql), list(params))
            return cur.fetchall() if cur.description else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._con.cursor() as cur:
            cur.execute(_pg(sql), list(params))

    def begin(self) -> None:
        self._con.execute("BEGIN")

    def commit(self) -> None:
        self._con.execute("COMMIT")

    def rollback(self) -> None:
        self._con.execute("ROLLBACK")

    def stage(self, name: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        """`rows` into a temporary table `name` by COPY (dropped at unstage)."""
        ddl = ", ".join(f"{c} {t}" for c, t in columns)
        self._con.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        self._con.execute(f"CREATE TEMP TABLE {name} ({ddl})")
        names = ", ".join(c for c, _ in columns)
        with self._con.cursor() as cur, cur.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def unstage(self, name: str) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    def append(self, table: str, columns: Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        """`rows` into `table` by COPY."""
        names = ", ".join(c for c, _ in columns)
        with self._con.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        self._con.close()


def _object_columns(columns: Columns, rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    """The rows as one NumPy object array a column, for DuckDB to scan in place."""
    arrays = {column: np.empty(len(rows), dtype=object) for column, _ in columns}
    for index, (column, _) in enumerate(columns):
        arrays[column][:] = [row[index] for row in rows]
    return arrays


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _instants(column: str, arrays: dict[str, Any]) -> str:
    """The SQL of an aware-time column, its values turned into microseconds since the epoch in `arrays` first: DuckDB
    reads a Python int in a quarter of the time of a datetime (whose offset it asks Python for), ~1.5 ms a column
    of a 2,000-row page, holding the interpreter lock. The same instant either way; a column holding anything
    but aware datetimes (or None) is left to DuckDB's own cast."""
    values = arrays[column]
    try:
        micros = [None if v is None else (v - _EPOCH) // _MICROSECOND for v in values]
    except TypeError:  # a naive time or not a time: as DuckDB casts it
        return f"CAST({column} AS TIMESTAMPTZ)"
    values[:] = micros
    return f"timezone('UTC', make_timestamp(CAST({column} AS BIGINT)))"


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")
