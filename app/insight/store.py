"""The locality view's analytical store: DuckDB in a user-only file by default, or a locality's PostgreSQL.

Rows, never patients: slots, appointments and encounters keep the practice's resource id, status, times,
mode, clinician type, category and local type text, and no patient reference (Activity has none). Each row
also keeps its Europe/London local date, ISO week and month (app/insight/periods.py) so that every figure is
a plain grouped sum both engines compute identically. Figures are only ever made by `figures()`, which
applies suppression (app/insight/suppression.py) itself: no caller can get an unsuppressed count.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.activity import APPOINTMENT_STATUSES, Activity, ActivityPart
from app.core.gui_turns import give_way
from app.insight import kept_protections
from app.insight.kept_protections import KeptProtections, UnitTables, spec_key
from app.insight.measures import (
    CUTS,
    GROUP_COLUMNS,
    MEASURE_SQL,
    MEDIAN_ROWS,
    UNMAPPED,
    Figure,
    MeasureSql,
    measure,
    value_of,
)
from app.insight.national_model import NationalFigure, PracticeAttributes
from app.insight.periods import as_utc, default_month, local_date, month_key, parse_period, week_key
from app.insight.store_engine import Columns, DuckDbEngine, Engine, PostgresEngine
from app.insight.store_rows import MappingIssue, MappingUse, PracticeStatusRow, QualityRow
from app.insight.suppression import (
    ALL,
    TOTAL,
    Coord,
    Counts,
    PartRow,
    calendar_unit,
    cross_table,
    is_small,
    protect_month,
    protect_week,
    verdict,
)

#: the file's name in the per-user data folder
DEFAULT_FILE = "insight.duckdb"
#: the PostgreSQL schema used unless told otherwise
DEFAULT_PG_SCHEMA = "mosaic_insight"

_TEXT, _DATE, _TIME, _INT, _REAL = "TEXT", "DATE", "TIMESTAMPTZ", "BIGINT", "DOUBLE PRECISION"

SLOT_COLUMNS: Columns = (
    ("practice_id", _TEXT), ("id", _TEXT), ("status", _TEXT), ("start_utc", _TIME), ("end_utc", _TIME),
    ("start_date", _DATE), ("month", _TEXT), ("week", _TEXT), ("schedule_id", _TEXT), ("mode", _TEXT),
    ("clinician_type", _TEXT), ("category", _TEXT), ("local_type", _TEXT), ("updated", _TIME),
)
APPOINTMENT_COLUMNS: Columns = (
    ("practice_id", _TEXT), ("id", _TEXT), ("status", _TEXT), ("start_utc", _TIME), ("start_date", _DATE),
    ("month", _TEXT), ("week", _TEXT), ("created_utc", _TIME), ("created_date", _DATE),
    ("days_to_start", _INT), ("mode", _TEXT), ("clinician_type", _TEXT), ("category", _TEXT),
    ("local_type", _TEXT), ("slot_ids", _TEXT), ("updated", _TIME),
)
ENCOUNTER_COLUMNS: Columns = (
    ("practice_id", _TEXT), ("id", _TEXT), ("status", _TEXT), ("start_utc", _TIME), ("start_date", _DATE),
    ("mode", _TEXT), ("appointment_id", _TEXT), ("updated", _TIME),
)
_ROW_TABLES: dict[str, Columns] = {"slots": SLOT_COLUMNS, "appointments": APPOINTMENT_COLUMNS,
                                   "encounters": ENCOUNTER_COLUMNS}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS practices (id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, "
    "error TEXT, refreshed_at TIMESTAMPTZ, list_size BIGINT, cursor_at TIMESTAMPTZ, unreadable BIGINT, "
    "not_provided TEXT)",
    *(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{c} {t}' for c, t in columns)}, "
      "PRIMARY KEY (practice_id, id))" for table, columns in _ROW_TABLES.items()),
    "CREATE TABLE IF NOT EXISTS national (practice_code TEXT NOT NULL, practice_name TEXT, month DATE NOT NULL, "
    "metric TEXT NOT NULL, grp TEXT, numerator DOUBLE PRECISION, denominator DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS attributes (practice_code TEXT PRIMARY KEY, list_size BIGINT, imd_decile BIGINT, "
    "share_over_65 DOUBLE PRECISION, share_under_18 DOUBLE PRECISION, rurality TEXT)",
    "CREATE TABLE IF NOT EXISTS store_key (name TEXT PRIMARY KEY, secret TEXT NOT NULL)",
    *kept_protections.SCHEMA,
)
_PG_INDEXES = (
    "CREATE INDEX IF NOT EXISTS appointments_month ON appointments (month, practice_id)",
    "CREATE INDEX IF NOT EXISTS appointments_week ON appointments (week, practice_id)",
    "CREATE INDEX IF NOT EXISTS slots_month ON slots (month, practice_id)",
    "CREATE INDEX IF NOT EXISTS slots_week ON slots (week, practice_id)",
    *kept_protections.PG_INDEXES,
)

_DIMS = ("practice", "mode", "clinician-type", "category")
#: the pairs of group dimensions a cross-cut crosses (as figures() orders them)
_CROSSINGS = (("mode", "clinician-type"), ("mode", "category"), ("clinician-type", "category"))


def default_path() -> Path:
    return paths.user_data_dir() / DEFAULT_FILE


def postgres_target(url: str) -> tuple[str, dict[str, Any], str]:
    """(libpq conninfo, connect arguments, the store as a message may name it) for a PostgreSQL store's URL,
    with the TLS rules of the central audit store (`pg_connect_args`)."""
    import sqlalchemy as sa

    from app.core.audit.central import PgSetting, pg_connect_args
    from app.core.schema_types import redacted_url

    parsed = sa.make_url(url)
    setting = PgSetting("insight store", "[insight] store_url",
                        "its figures are the practices' activity, so Mosaic reads and writes them")
    args: dict[str, Any] = {"connect_timeout": 10, **pg_connect_args(parsed, setting)}
    if not args.get("hostaddr"):
        args.pop("hostaddr", None)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return conninfo, args, redacted_url(parsed.render_as_string(hide_password=True))


def postgres_connection(url: str) -> tuple[Any, str]:
    """A plain psycopg connection to a PostgreSQL store, making nothing (`mosaic doctor` reads through it), and
    where it is as a message may name it."""
    import psycopg

    conninfo, args, where = postgres_target(url)
    return psycopg.connect(conninfo, **args), where


#: rows of a table a read's parts hold in memory before they are staged (~5 pages: a few MB a table and practice)
STAGE_BATCH_ROWS = 10_000
#: unit tables held in memory at most (each a month's or week's cells and decisions, a few KB)
UNIT_CACHE_LIMIT = 20_000


class InsightStore:
    """One store. Not thread-safe: one thread (or a lock) per store."""

    def __init__(self, engine: Engine, where: str) -> None:
        self._db = engine
        self.where = where
        #: units' protected tables in memory, each with the fingerprint it was worked out under (used only while
        #: that is still the current one: see kept_protections)
        self._unit_cache: dict[tuple[Any, str], tuple[str, UnitTables]] = {}
        self._kept = KeptProtections(engine)
        #: while preparing: the measures counting each table, whose rows are fetched together, and rows fetched
        #: for a measure's units ahead of their turn (spec_key, grain, unit) -> rows
        self._siblings: dict[str, list[MeasureSql]] = {}
        self._rows_ahead: dict[tuple[str, str, str], list[PartRow]] = {}
        self._cross_ahead: dict[tuple[str, str, str], list[tuple[Coord, float, float]]] = {}
        self._version: tuple[Any, ...] | None = None
        self._staging = False  # the staged_* temporary tables made on this connection
        #: rows of a read's parts not yet in its staging tables, (practice, table) -> rows: they go in
        #: STAGE_BATCH_ROWS at a time (see stage_part), and always before the read is applied
        self._pending: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for statement in _SCHEMA:
            self._db.execute(statement)
        if engine.kind == "postgresql":
            for statement in _PG_INDEXES:
                self._db.execute(statement)
        self._rows = _RowMaker(self._id_key())

    def _id_key(self) -> bytes:
        """The store's key for resource ids (see _RowMaker): made once, kept in the store, so every refresh and
        every PC sharing a PostgreSQL store hashes an id alike (upserts match). A store made before ids were
        hashed holds them as sent: its rows are dropped and its practices marked to be read again."""
        made = secrets.token_hex(32)
        self._db.execute("INSERT INTO store_key (name, secret) VALUES ('ids', ?) ON CONFLICT (name) DO NOTHING",
                         [made])
        [(secret,)] = self._db.query("SELECT secret FROM store_key WHERE name = 'ids'")
        if secret == made and any(self._db.query(f"SELECT 1 FROM {table} LIMIT 1") for table in _ROW_TABLES):
            self._db.begin()
            try:
                for table in (*_ROW_TABLES, "unit_marks", "protections", "protected_cells"):
                    self._db.execute(f"DELETE FROM {table}")
                self._db.execute("UPDATE practices SET cursor_at = NULL, status = 'failed', error = name || ': "
                                 "the insight store now keeps no resource id as sent; refresh to read it again' "
                                 "WHERE status = 'ok'")
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        return bytes.fromhex(str(secret))

    # --- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | Path | None = None, *, schema: str | None = None) -> InsightStore:
        """A DuckDB file (default: insight.duckdb in the per-user data folder, 0600 in a 0700 folder), or a
        postgresql:// URL (tables in `schema`, default mosaic_insight; TLS rules as the central store's)."""
        text = str(target) if target is not None else ""
        if text.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            return cls._open_postgres(text, schema or DEFAULT_PG_SCHEMA)
        path = Path(target) if target is not None else default_path()
        _private_duckdb_file(path)
        return cls(DuckDbEngine(str(path)), str(path))

    @classmethod
    def _open_postgres(cls, url: str, schema: str) -> InsightStore:
        conninfo, args, where = postgres_target(url)
        return cls(PostgresEngine(conninfo, schema, args), where)

    def close(self) -> None:
        self._db.close()

    # --- writing ------------------------------------------------------------------------------------

    def apply(self, activity: Activity) -> None:
        """Upsert one practice's activity by (practice_id, resource id), in one transaction. A full read
        (since None) also removes the practice's rows in its period that the read no longer holds."""
        self.discard_staged(activity.practice_id)
        self.stage_part(activity.practice_id, ActivityPart(activity.slots, activity.appointments,
                                                           activity.encounters))
        self.apply_staged(activity)

    def stage_part(self, practice_id: str, part: ActivityPart) -> None:
        """Put one part of a practice's read (Adapter.activity_parts) into its staging rows: temporary tables of
        this connection, which no figure reads. They become the practice's figures only through `apply_staged`
        when the read has ended; a read that fails part-way is dropped by `discard_staged`, so the practice's
        earlier figures stand and a part-read book is never applied as whole. A part's rows wait in memory until
        STAGE_BATCH_ROWS of the table have come (a few pages): DuckDB takes rows in larger batches at half the cost
        a row, and that work holds the interpreter lock the read's decoding needs."""
        self._ensure_staging()
        make = self._rows
        for table, rows in (("slots", [make.slot(practice_id, s) for s in part.slots]),
                            ("appointments", [make.appointment(practice_id, a) for a in part.appointments]),
                            ("encounters", [make.encounter(practice_id, e) for e in part.encounters])):
            if rows:
                pending = self._pending.setdefault((practice_id, table), [])
                pending.extend(rows)
                if len(pending) >= STAGE_BATCH_ROWS:
                    self._flush_staged(practice_id, table)

    def _flush_staged(self, practice_id: str, table: str) -> None:
        rows = self._pending.pop((practice_id, table), None)
        if rows:
            give_way()
            self._db.append(f"staged_{table}", _ROW_TABLES[table], rows)

    def apply_staged(self, activity: Activity) -> None:
        """The practice's staged parts, closed by `activity` (its as_of, list size, unreadable count; its own rows
        are not read), applied as `apply` applies a whole read, in one transaction; its staging emptied either way.
        A resource staged twice (a server paging while it changes) is taken at its newest lastUpdated."""
        pid = activity.practice_id
        self._ensure_staging()
        try:
            for table in _ROW_TABLES:
                self._flush_staged(pid, table)
        except BaseException:
            self.discard_staged(pid)
            raise
        mark = secrets.token_hex(16)  # the units this changes: their kept protected tables are stale
        full = (activity.period_start, activity.period_end) if activity.since is None else None
        self._db.begin()
        try:
            for table in kept_protections.MARKED_TABLES:
                for sql, params in kept_protections.mark_statements(table, pid, mark, full):
                    self._db.execute(sql, params)
            self._db.execute(kept_protections.LATEST_MARK_SQL, [mark])
            for table in _ROW_TABLES:
                self._upsert_staged(table, activity)
            self._db.execute(
                "INSERT INTO practices (id, name, status, list_size, cursor_at, unreadable, not_provided) "
                "VALUES (?, ?, 'ok', ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = 'ok', error = NULL, "
                "list_size = COALESCE(excluded.list_size, practices.list_size), cursor_at = excluded.cursor_at, "
                "unreadable = excluded.unreadable, not_provided = excluded.not_provided",
                [pid, pid, activity.list_size, as_utc(activity.as_of), activity.unreadable,
                 json.dumps(list(activity.not_provided))])
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        finally:
            self._kept.forget()  # the changed units' fingerprints move: their tables in memory are not used again
            self.discard_staged(pid)

    def discard_staged(self, practice_id: str) -> None:
        """Drop whatever of the practice's read is staged (a read that failed, or one never applied)."""
        for table in _ROW_TABLES:
            self._pending.pop((practice_id, table), None)
        if self._staging:
            for table in _ROW_TABLES:
                self._db.execute(f"DELETE FROM staged_{table} WHERE practice_id = ?", [practice_id])

    def _ensure_staging(self) -> None:
        if not self._staging:
            for table, columns in _ROW_TABLES.items():
                self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS staged_{table} "
                                 f"({', '.join(f'{c} {t}' for c, t in columns)})")
            self._staging = True

    def _upsert_staged(self, table: str, activity: Activity) -> None:
        pid = activity.practice_id
        staged = f"staged_{table}"
        if activity.since is None:
            self._db.execute(
                f"DELETE FROM {table} WHERE practice_id = ? AND (start_date BETWEEN ? AND ? OR start_date IS NULL) "
                f"AND id NOT IN (SELECT id FROM {staged} WHERE practice_id = ?)",
                [pid, activity.period_start, activity.period_end, pid])
        names = ", ".join(c for c, _ in _ROW_TABLES[table])
        updates = ", ".join(f"{c} = excluded.{c}" for c, _ in _ROW_TABLES[table] if c not in ("practice_id", "id"))
        self._db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM (SELECT DISTINCT ON (id) {names} "
                         f"FROM {staged} WHERE practice_id = ? ORDER BY id, updated DESC NULLS LAST) AS newest "
                         f"ON CONFLICT (practice_id, id) DO UPDATE SET {updates}", [pid])

    def cursor(self, practice_id: str) -> datetime | None:
        rows = self._db.query("SELECT cursor_at FROM practices WHERE id = ?", [practice_id])
        return as_utc(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_status(self, practice_id: str, name: str, status: str, error: str | None = None,
                   refreshed_at: datetime | None = None) -> None:
        if status not in ("ok", "not provided", "failed"):
            raise ValueError(f"status {status!r} is not ok, not provided or failed")
        self._db.execute(
            "INSERT INTO practices (id, name, status, error, refreshed_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, "
            "error = excluded.error, refreshed_at = COALESCE(excluded.refreshed_at, practices.refreshed_at)",
            [practice_id, name, status, error, as_utc(refreshed_at) if refreshed_at else None])

    def replace_national(self, figures: Iterable[NationalFigure]) -> int:
        rows = [(f.practice_code, f.practice_name, f.month, f.metric, f.group, float(f.numerator),
                 None if f.denominator is None else float(f.denominator)) for f in figures]
        columns: Columns = (("practice_code", _TEXT), ("practice_name", _TEXT), ("month", _DATE),
                            ("metric", _TEXT), ("grp", _TEXT), ("numerator", _REAL), ("denominator", _REAL))
        self._replace("national", columns, rows)
        return len(rows)

    def replace_attributes(self, attributes: Iterable[PracticeAttributes]) -> int:
        rows = list({a.practice_code: (a.practice_code, a.list_size, a.imd_decile, a.share_over_65,
                                       a.share_under_18, a.rurality) for a in attributes}.values())
        columns: Columns = (("practice_code", _TEXT), ("list_size", _INT), ("imd_decile", _INT),
                            ("share_over_65", _REAL), ("share_under_18", _REAL), ("rurality", _TEXT))
        self._replace("attributes", columns, rows)
        return len(rows)

    def _replace(self, table: str, columns: Columns, rows: list[tuple[Any, ...]]) -> None:
        stage = f"stage_{table}"
        self._db.begin()
        try:
            self._db.stage(stage, columns, rows)
            names = ", ".join(c for c, _ in columns)
            self._db.execute(f"DELETE FROM {table}")
            if rows:
                self._db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}")
            self._db.unstage(stage)
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    # --- reading ------------------------------------------------------------------------------------

    def practices(self) -> list[PracticeStatusRow]:
        rows = self._db.query("SELECT id, name, status, error, refreshed_at, list_size, cursor_at IS NOT NULL "
                              "FROM practices ORDER BY id")
        return [PracticeStatusRow(r[0], r[1], r[2], r[3], as_utc(r[4]) if r[4] else None,
                                  None if r[5] is None else int(r[5]), bool(r[6])) for r in rows]

    def national(self, metric: str | None = None, month: date | None = None) -> list[NationalFigure]:
        sql = "SELECT practice_code, practice_name, month, metric, numerator, denominator, grp FROM national"
        params: list[Any] = []
        where = []
        if metric:
            where.append("metric = ?")
            params.append(metric)
        if month:
            where.append("month = ?")
            params.append(month)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [NationalFigure(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
                for r in self._db.query(sql + " ORDER BY practice_code, month", params)]

    def attributes(self) -> list[PracticeAttributes]:
        rows = self._db.query("SELECT practice_code, list_size, imd_decile, share_over_65, share_under_18, rurality "
                              "FROM attributes ORDER BY practice_code")
        return [PracticeAttributes(r[0], int(r[1]), None if r[2] is None else int(r[2]), r[3], r[4], r[5])
                for r in rows]

    def latest_month(self) -> str | None:
        rows = self._db.query("SELECT MAX(month) FROM appointments")
        return rows[0][0] if rows else None

    def figures(self, metric: str, by: str, period: str | None = None, *,
                practices: Sequence[str] | None = None, filters: Mapping[str, str] | None = None) -> list[Figure]:
        """Figures of `metric` cut `by` practice | mode | clinician-type | category | week | month | locality,
        for `period` (default: the latest whole month with appointments, periods.default_month), over `practices`
        (default: all), with `filters` ({"mode": "telephone", ...}). Suppressed here. Practices that did not provide
        data or failed come back as Figures with that status, never as zero."""
        measure(metric)
        if by not in CUTS:
            raise ValueError(f"unknown cut {by!r}; one of: {', '.join(CUTS)}")
        filters = dict(filters or {})
        for key in filters:
            if key not in GROUP_COLUMNS:
                raise ValueError(f"unknown filter {key!r}; one of: {', '.join(GROUP_COLUMNS)}")
        involved = sorted(set(filters) | ({by} & set(GROUP_COLUMNS)), key=_DIMS.index)
        if len(involved) > 2:
            raise ValueError("a cut can cross two of mode, clinician type and category, not all three (their cells "
                             "are nearly all under 5)")
        cross = len(involved) == 2
        spec = MEASURE_SQL[metric]
        chosen = parse_period(period or default_month(self.latest_month()))
        grain = "week" if by == "week" or chosen.grain == "week" else "month"
        if by == "month" and chosen.grain == "week":
            raise ValueError(f"{chosen.text} is a week: cut it by week, or ask for a month or range")
        if cross and grain == "week":  # its weeks could be set against its months, which are protected per month
            raise ValueError(f"a cut crossing {' and '.join(involved)} is by month or a range of months, not by week: "
                             "its weekly cells are nearly all under 5, and its weeks could otherwise be set against "
                             "its months to work out a hidden count")
        units = chosen.weeks() if grain == "week" else chosen.months()

        self._check_version()
        status_rows = {p.id: p for p in self.practices()}
        asked = list(dict.fromkeys(practices)) if practices is not None else sorted(status_rows)
        # the tables are over every practice with rows (a failed one keeps its cells: see PracticeStatusRow.tabled);
        # figures are of the practices whose last refresh ended well
        tabled = sorted(p for p, row in status_rows.items() if row.tabled)
        ok_asked = [p for p in asked if status_rows.get(p) is not None and status_rows[p].status == "ok"]
        lists = {p: status_rows[p].list_size for p in tabled}

        out: list[Figure] = []
        cubes, hidden = (self._cross_cubes(spec, grain, units, tabled, involved) if cross
                         else self._cubes(spec, grain, units, tabled))
        fixed = next(iter(filters.items()), None)

        def cells_for(members: Sequence[str], unit_list: Sequence[str], group: tuple[int, str] | None
                      ) -> list[tuple[str, Coord]]:
            if cross:
                wanted = dict(filters)
                if group is not None:
                    wanted[_DIMS[group[0]]] = group[1]
                rest = tuple(wanted.get(d, ALL) for d in involved)
                if set(members) == set(tabled) and members:
                    return [(u, (ALL, *rest)) for u in unit_list]
                return [(u, (p, *rest)) for p in members for u in unit_list]
            chosen = (_DIMS[group[0]], group[1]) if group is not None else fixed
            dim, value = chosen if chosen is not None else (TOTAL, ALL)
            if set(members) == set(tabled) and members:
                return [(u, (dim, ALL, value)) for u in unit_list]
            return [(u, (dim, p, value)) for p in members for u in unit_list]

        medians = self._medians(by, units, grain, ok_asked, filters) if spec.median else {}

        def figure(members: Sequence[str], unit_list: Sequence[str], group: tuple[int, str] | None,
                   practice_id: str | None, period_text: str, median_key: str | None = None) -> Figure | None:
            group_value = group[1] if group else None
            if spec.per_1000:
                members = [p for p in members if lists.get(p)]
                if not members:
                    return None
            cells = cells_for(members, unit_list, group)
            numerator = sum(cubes.get(u, {}).get(c, (0.0, 0.0))[0] for u, c in cells)
            denominator: float | None = sum(cubes.get(u, {}).get(c, (0.0, 0.0))[1] for u, c in cells)
            if spec.per_1000:
                denominator = float(sum(lists[p] or 0 for p in members))
            elif spec.denominator is None:
                denominator = None
            reason = verdict(cells, hidden)
            if reason is None and (is_small(numerator) or is_small(denominator)):
                reason = "primary"
            if reason is not None:
                return Figure(practice_id, metric, period_text, group_value, None, None, None, True, "ok",
                              suppression=reason)
            if spec.median:
                value = medians.get(median_key)
                return Figure(practice_id, metric, period_text, group_value, value, None, denominator, False, "ok")
            return Figure(practice_id, metric, period_text, group_value, value_of(spec, numerator, denominator),
                          numerator, denominator, False, "ok")

        single = ok_asked[0] if len(asked) == 1 and ok_asked else None
        if by == "practice":
            for p in ok_asked:
                made = figure([p], units, None, p, chosen.text, p)
                out.append(made or _not_provided(p, metric, chosen.text, status_rows[p].name, "list size"))
        elif by == "locality":
            made = figure(ok_asked, units, None, single, chosen.text) if ok_asked else None
            if made:
                out.append(made)
        elif by in ("week", "month"):
            for unit in units:
                made = figure(ok_asked, [unit], None, single, unit, unit) if ok_asked else None
                if made:
                    out.append(made)
        else:
            dim = _DIMS.index(by)
            position = 1 + involved.index(by) if cross else 0
            values = sorted({c[position] for u in units for c in cubes.get(u, {}) if c[position] != ALL} if cross
                            else {c[2] for u in units for c in cubes.get(u, {}) if c[0] == by})
            for value in values:
                made = figure(ok_asked, units, (dim, value), single, chosen.text, value) if ok_asked else None
                if made:
                    out.append(made)
        if spec.per_1000 and by != "practice":
            out.extend(_not_provided(p, metric, chosen.text, status_rows[p].name, "list size")
                       for p in ok_asked if not lists.get(p))
        for p in asked:
            row = status_rows.get(p)
            if row is None:
                out.append(Figure(p, metric, chosen.text, None, None, None, None, False, "failed",
                                  f"{p}: not in the insight store (never refreshed)"))
            elif row.status != "ok":
                why = row.error or ("not provided by this practice's system" if row.status == "not provided"
                                    else "the refresh failed")
                out.append(Figure(p, metric, chosen.text, None, None, None, None, False, row.status,
                                  f"{row.name}: {why}"))
        return out

    def prepare(self, period: str) -> int:
        """Work out and keep (in the store: app/insight/kept_protections.py) the protected two-way tables of every
        measure for the months and weeks of `period`, and the cross-cut tables of its months, where the kept ones
        are stale or missing, so that the first queries after a refresh, in this process or any other, are as
        quick as the rest: the refresh calls it when it has applied everything. Only units whose rows changed
        since their tables were kept (or whose practices changed) are worked out again. Returns the number of
        unit tables made."""
        self._check_version()
        chosen = parse_period(period)
        ok = sorted(p.id for p in self.practices() if p.tabled)
        made = 0
        specs = list({spec_key(s): s for s in MEASURE_SQL.values()}.values())
        self._siblings = {table: [s for s in specs if s.table == table] for table in {s.table for s in specs}}
        # the collector paused, as the read pauses it (adapters/fhir_r4/activity.py): the tables made outlive its
        # young passes and set off full ones over everything the process holds (an incremental refresh's 90
        # tables: 1.0 s with it running, 0.6 s paused); they hold no reference cycles
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self._kept.batch():  # the weeks first: each month is protected against its weeks
                for grain, units in (("week", chosen.weeks()),
                                     ("month", chosen.months() if chosen.grain == "month" else [])):
                    for spec in specs:
                        compute = functools.partial(self._linked_units, spec, grain, practices=ok)
                        made += self._cached(self._linked_kind(spec), spec.table, grain, units, ok, compute, load=False)
                # and the months' cross-cut tables (a cut by one dimension filtered by another: over a range of
                # months, one table a month; a week's cross-cut is one small table, worked out when first asked)
                months = chosen.months() if chosen.grain == "month" else []
                for spec in specs:
                    for dims in _CROSSINGS:
                        compute = functools.partial(self._cross_units, spec, "month", practices=ok, dims=dims)
                        made += self._cached(self._cross_kind(spec, dims), spec.table, "month", months, ok, compute,
                                             load=False)
        finally:
            self._siblings, self._rows_ahead, self._cross_ahead = {}, {}, {}
            if collecting:
                gc.enable()
        return made

    @staticmethod
    def _linked_kind(spec: MeasureSql) -> str:
        return f"linked:{spec_key(spec)}"

    @staticmethod
    def _cross_kind(spec: MeasureSql, dims: Sequence[str]) -> str:
        return f"cross:{spec_key(spec)}:{','.join(dims)}"

    def _cubes(self, spec: MeasureSql, grain: str, units: Sequence[str], practices: Sequence[str]
               ) -> tuple[dict[str, dict[Coord, Counts]], dict[Hashable, str]]:
        """Each unit's linked tables over all `practices` (suppression.linked_tables), and the hidden cells
        keyed (unit, cell)."""
        kind = self._linked_kind(spec)
        self._cached(kind, spec.table, grain, units, practices,
                     lambda missing: self._linked_units(spec, grain, missing, practices=practices))
        return self._gathered(kind, grain, units, practices)

    def _unit(self, kind: str, grain: str, unit: str, practices: Sequence[str]) -> UnitTables:
        return self._unit_cache[((kind, grain, tuple(practices)), unit)][1]

    def _gathered(self, kind: str, grain: str, units: Sequence[str], practices: Sequence[str]
                  ) -> tuple[dict[str, dict[Coord, Counts]], dict[Hashable, str]]:
        cubes: dict[str, dict[Coord, Counts]] = {}
        hidden: dict[Hashable, str] = {}
        for unit in units:
            cube, unit_hidden = self._unit(kind, grain, unit, practices)
            if cube:
                cubes[unit] = cube
            hidden.update({(unit, cell): why for cell, why in unit_hidden.items()})
        return cubes, hidden

    def _cached(self, kind: str, table: str, grain: str, units: Sequence[str], practices: Sequence[str],
                compute: Callable[[list[str]], dict[str, UnitTables]], *, load: bool = True) -> int:
        """Units' protected tables into the memory cache: those kept in the store while still current (their
        fingerprint is the one the store's marks give now), the rest worked out and kept. A unit's tables depend
        only on the data, so they are kept until the data changes. `load=False`: units whose kept tables are
        current are left in the store (a refresh making sure they are there). Returns the number worked out."""
        key = (kind, grain, tuple(practices))
        fingerprints = {u: self._kept.fingerprint(kind, table, grain, u, practices) for u in units}
        missing = [u for u in units if (cached := self._unit_cache.get((key, u))) is None
                   or cached[0] != fingerprints[u]]
        if not missing:
            return 0
        fingerprints = {u: fingerprints[u] for u in missing}
        if load:
            found = self._kept.load(kind, grain, fingerprints)
            for unit, tables in found.items():
                self._unit_cache[(key, unit)] = (fingerprints[unit], tables)
            current = set(found)
        else:
            current = self._kept.current(kind, grain, fingerprints)
        stale = [u for u in missing if u not in current]
        if not stale:
            return 0
        made = compute(stale)
        fresh = {unit: made.get(unit, ({}, {})) for unit in stale}
        for unit, tables in fresh.items():
            self._unit_cache[(key, unit)] = (fingerprints[unit], tables)
        self._kept.keep(kind, grain, {unit: (fingerprints[unit], tables) for unit, tables in fresh.items()})
        return len(stale)

    def _check_version(self) -> None:
        """Read the units' marks again when any practice's data or status changed (here or, for PostgreSQL, from
        another PC: every apply moves a practice's cursor and the store's latest mark): tables in memory whose
        fingerprint is no longer current are then worked out again or read from the store."""
        version = (*self._db.query("SELECT id, status, cursor_at, list_size FROM practices ORDER BY id"),
                   *self._db.query(kept_protections.LATEST_MARK_QUERY))
        if version != self._version:
            self._kept.forget()
            self._version = version
        if len(self._unit_cache) > UNIT_CACHE_LIMIT:  # here, before a query or a prepare, never in the middle of
            self._unit_cache.clear()  # one: tables it made sure of a moment ago are gathered after (a KeyError)

    def _linked_units(self, spec: MeasureSql, grain: str, units: Sequence[str], *, practices: Sequence[str]
                      ) -> dict[str, UnitTables]:
        """Each unit's protected linked tables, from its rows split by the other calendar's unit (a month's by
        week, a week's by month): a month is protected against its weeks' figures (suppression.protect_month),
        so the weeks come first."""
        if not units or not practices:
            return {}
        key = spec_key(spec)
        missing = [u for u in units if (key, grain, u) not in self._rows_ahead]
        if missing:  # while preparing, the rows of every measure counting the same table come in one query
            siblings = self._siblings.get(spec.table, []) or [spec]
            for sibling, fetched in self._linked_rows([spec, *siblings], grain, missing, practices).items():
                for unit in missing:
                    self._rows_ahead[(sibling, grain, unit)] = fetched.get(unit, [])
        per_unit = {u: rows for u in units if (rows := self._rows_ahead.pop((key, grain, u)))}
        made: dict[str, UnitTables] = {}
        weeks_hidden: dict[str, dict[Coord, str]] = {}
        if grain == "month":
            weeks = sorted({row[0] for unit_rows in per_unit.values() for row in unit_rows})
            self._cubes(spec, "week", weeks, practices)
            kind = self._linked_kind(spec)
            weeks_hidden = {w: self._unit(kind, "week", w, practices)[1] for w in weeks}
        for unit in sorted(per_unit):
            give_way()  # a unit's exact check is Python work: the window's GUI thread first, where there is one
            calendar = calendar_unit(sorted(per_unit[unit]))
            hidden = (protect_month(calendar, weeks_hidden) if grain == "month" else protect_week(calendar))
            made[unit] = (calendar.tables.cube, hidden)
        return made

    def _linked_rows(self, specs: Sequence[MeasureSql], grain: str, units: Sequence[str],
                     practices: Sequence[str]) -> dict[str, dict[str, list[PartRow]]]:
        """The rows of `units` for each measure of `specs` (all counting one table), keyed by spec_key then unit,
        from one GROUPING SETS query."""
        chosen = {spec_key(s): s for s in specs}
        table = specs[0].table
        sums = ", ".join(f"SUM({s.numerator or '0'}), SUM({s.denominator or '0'})" for s in chosen.values())
        other = "week" if grain == "month" else "month"
        rows = self._db.query(
            f"SELECT {grain}, {other}, practice_id, GROUPING(mode), GROUPING(clinician_type), "
            f"COALESCE(mode, '{UNMAPPED}'), COALESCE(clinician_type, '{UNMAPPED}'), COALESCE(category, '{UNMAPPED}'), "
            f"{sums} FROM {table} WHERE {grain} IN ({', '.join('?' for _ in units)}) AND practice_id "
            f"IN ({', '.join('?' for _ in practices)}) GROUP BY GROUPING SETS (({grain}, {other}, practice_id, mode), "
            f"({grain}, {other}, practice_id, clinician_type), ({grain}, {other}, practice_id, category))",
            [*units, *practices])
        out: dict[str, dict[str, list[PartRow]]] = {key: defaultdict(list) for key in chosen}
        for unit, part, pid, no_mode, no_type, mode, clinician, category, *counts in rows:
            dim, value = (("mode", mode) if not no_mode else ("clinician-type", clinician) if not no_type
                          else ("category", category))
            for index, key in enumerate(chosen):
                num, den = counts[2 * index], counts[2 * index + 1]
                out[key][unit].append((part, dim, pid, value, float(num or 0), float(den or 0)))
        return out

    def _cross_cubes(self, spec: MeasureSql, grain: str, units: Sequence[str], practices: Sequence[str],
                     dims: Sequence[str]) -> tuple[dict[str, dict[Coord, Counts]], dict[Hashable, str]]:
        """For a cross-cut (two of mode, clinician type and category): each unit's cross table of those two,
        protected in agreement with its linked two-way tables (suppression.cross_table)."""
        kind = self._cross_kind(spec, dims)
        self._cached(kind, spec.table, grain, units, practices,
                     lambda missing: self._cross_units(spec, grain, missing, practices=practices, dims=dims))
        return self._gathered(kind, grain, units, practices)

    def _cross_units(self, spec: MeasureSql, grain: str, units: Sequence[str], *, practices: Sequence[str],
                     dims: Sequence[str]) -> dict[str, UnitTables]:
        if not units or not practices:
            return {}
        key, crossing = spec_key(spec), f"{grain}:{','.join(dims)}"
        missing = [u for u in units if (key, crossing, u) not in self._cross_ahead]
        if missing:  # while preparing, every measure counting the same table in one query
            siblings = self._siblings.get(spec.table, []) or [spec]
            for sibling, fetched in self._cross_rows([spec, *siblings], grain, missing, practices, dims).items():
                for unit in missing:
                    self._cross_ahead[(sibling, crossing, unit)] = fetched.get(unit, [])
        fine = {u: rows for u in units if (rows := self._cross_ahead.pop((key, crossing, u)))}
        self._cubes(spec, grain, units, practices)  # the two-way tables' decisions, which the cross tables keep
        made: dict[str, UnitTables] = {}
        for unit in sorted(fine):
            give_way()
            _, decided = self._unit(self._linked_kind(spec), grain, unit, practices)
            tables, unit_hidden = cross_table(sorted(fine[unit]), dims, decided)
            made[unit] = (tables.cube, unit_hidden)
        return made

    def _cross_rows(self, specs: Sequence[MeasureSql], grain: str, units: Sequence[str], practices: Sequence[str],
                    dims: Sequence[str]) -> dict[str, dict[str, list[tuple[Coord, float, float]]]]:
        """The cross table's fine cells of `units` for each measure of `specs` (all counting one table), keyed by
        spec_key then unit, from one grouped query."""
        chosen = {spec_key(s): s for s in specs}
        first, second = (GROUP_COLUMNS[d] for d in dims)
        sums = ", ".join(f"SUM({s.numerator or '0'}), SUM({s.denominator or '0'})" for s in chosen.values())
        rows = self._db.query(
            f"SELECT {grain}, practice_id, COALESCE({first}, '{UNMAPPED}'), COALESCE({second}, '{UNMAPPED}'), "
            f"{sums} FROM {specs[0].table} WHERE {grain} IN ({', '.join('?' for _ in units)}) AND practice_id IN "
            f"({', '.join('?' for _ in practices)}) GROUP BY 1, 2, 3, 4", [*units, *practices])
        out: dict[str, dict[str, list[tuple[Coord, float, float]]]] = {k: defaultdict(list) for k in chosen}
        for unit, pid, one, two, *counts in rows:
            for index, key in enumerate(chosen):
                num, den = counts[2 * index], counts[2 * index + 1]
                out[key][unit].append(((pid, one, two), float(num or 0), float(den or 0)))
        return out

    def _medians(self, by: str, units: Sequence[str], grain: str, members: Sequence[str],
                 filters: Mapping[str, str]) -> dict[str | None, float]:
        """The median days to appointment of each figure `by` asks for, in one grouped query."""
        if not units or not members:
            return {}
        where = [MEDIAN_ROWS, f"{grain} IN ({', '.join('?' for _ in units)})",
                 f"practice_id IN ({', '.join('?' for _ in members)})"]
        params: list[Any] = [*units, *members]
        for key, value in filters.items():
            column = GROUP_COLUMNS[key]
            if value == UNMAPPED:
                where.append(f"{column} IS NULL")
            else:
                where.append(f"{column} = ?")
                params.append(value)
        key_sql = {"practice": "practice_id", "locality": "NULL", "week": grain, "month": grain}.get(
            by, f"COALESCE({GROUP_COLUMNS.get(by, 'mode')}, '{UNMAPPED}')")
        rows = self._db.query(f"SELECT {key_sql}, percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_start) "
                              f"FROM appointments WHERE {' AND '.join(where)} GROUP BY 1", params)
        return {key: float(value) for key, value in rows if value is not None}

    def quality(self, period: str | None = None) -> list[QualityRow]:
        """Per practice: shares of its appointments (in `period`, default all) with an unmapped category, mode
        or clinician type, no (FHIR) status or no creation time; what it does not provide."""
        statuses = ", ".join(f"'{s}'" for s in APPOINTMENT_STATUSES)
        where, params = "", []
        if period:
            units = parse_period(period)
            column = "week" if units.grain == "week" else "month"
            keys = units.units()
            where = f" WHERE {column} IN ({', '.join('?' for _ in keys)})"
            params = keys
        counts = {r[0]: r[1:] for r in self._db.query(
            "SELECT practice_id, COUNT(*), SUM(CASE WHEN category IS NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN mode IS NULL THEN 1 ELSE 0 END), SUM(CASE WHEN clinician_type IS NULL THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN status IS NULL OR status NOT IN ({statuses}) THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN created_utc IS NULL THEN 1 ELSE 0 END) "
            f"FROM appointments{where} GROUP BY practice_id", params)}
        extra = {r[0]: (r[1], r[2]) for r in self._db.query("SELECT id, unreadable, not_provided FROM practices")}
        out = []
        for row in self.practices():
            total, *parts = counts.get(row.id, (0, 0, 0, 0, 0, 0))
            total = int(total or 0)
            category, mode, clinician, status, created = (
                None if not total else float(part or 0) / total for part in parts)
            unreadable, provided_json = extra.get(row.id, (0, None))
            not_provided = tuple(json.loads(provided_json)) if provided_json else ()
            if row.status == "not provided":
                not_provided = ("Appointment", "Slot", *not_provided)
            out.append(QualityRow(row.id, row.name, row.status, total, category, mode, clinician, status, created,
                                  int(unreadable or 0), tuple(dict.fromkeys(not_provided))))
        return out

    def mapping_consistency(self) -> list[MappingIssue]:
        """Local slot type texts (compared ignoring case and spacing) mapped to more than one national category,
        at different practices or within one."""
        rows = self._db.query("SELECT local_type, practice_id, category, COUNT(*) FROM slots "
                              "WHERE local_type IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
        grouped: dict[str, list[tuple[str, str, str | None, int]]] = defaultdict(list)
        for local, pid, category, count in rows:
            grouped[" ".join(str(local).casefold().split())].append((local, pid, category, int(count)))
        issues = []
        for key in sorted(grouped):
            uses: dict[tuple[str, str | None], int] = defaultdict(int)
            for _, pid, category, count in grouped[key]:
                uses[(pid, category)] += count
            if len({category for _, category in uses}) > 1:
                issues.append(MappingIssue(grouped[key][0][0], tuple(
                    MappingUse(pid, category, count)
                    for (pid, category), count in sorted(uses.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")))))
        return issues

    # --- export -------------------------------------------------------------------------------------

    def export_parquet(self, folder: Path, practices: Sequence[str] | None = None) -> list[Path]:
        """Parquet files of the store: practices, national, attributes and figures (every measure by practice
        and for the locality per month, and the appointment mix by mode, clinician type and category per
        month), each figure suppressed as figures() gives it. `practices`: only these (a role's), in the
        practices table and every figure (the locality is theirs alone); default every practice the store
        holds. Row-level slots and appointments are not exported (see the README: an appointment's exact time,
        mode and attendance could be matched to a person by someone who knows when they were seen). Files are
        user-only (0600)."""
        import duckdb

        from app.insight.measures import MEASURES

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        months = [r[0] for r in self._db.query("SELECT DISTINCT month FROM appointments WHERE month IS NOT NULL "
                                               "UNION SELECT DISTINCT month FROM slots WHERE month IS NOT NULL "
                                               "ORDER BY 1")]
        kept = [p for p in self.practices() if practices is None or p.id in set(practices)]
        everyone = None if practices is None else [p.id for p in kept]
        figure_rows: list[tuple[Any, ...]] = []
        if months and (everyone is None or everyone):
            whole = f"{months[0]}..{months[-1]}"
            for metric in MEASURES:
                sets: list[Sequence[str] | None] = [everyone, *[[p.id] for p in kept]]
                for chosen in sets:
                    figure_rows.extend(_figure_row(f, "month") for f in
                                       self.figures(metric, "month", whole, practices=chosen))
            for cut in ("mode", "clinician-type", "category"):
                for month in months:
                    figure_rows.extend(_figure_row(f, cut) for f in
                                       self.figures("appointments", cut, month, practices=everyone))
        tables: dict[str, tuple[Columns, list[tuple[Any, ...]]]] = {
            "practices": ((("id", _TEXT), ("name", _TEXT), ("status", _TEXT), ("error", _TEXT),
                           ("refreshed_at", _TIME), ("list_size", _INT)),
                          [(p.id, p.name, p.status, p.error, p.refreshed_at, p.list_size) for p in kept]),
            "national": ((("practice_code", _TEXT), ("practice_name", _TEXT), ("month", _DATE), ("metric", _TEXT),
                          ("grp", _TEXT), ("numerator", _REAL), ("denominator", _REAL)),
                         self._db.query("SELECT practice_code, practice_name, month, metric, grp, numerator, "
                                        "denominator FROM national ORDER BY 1, 3, 4")),
            "attributes": ((("practice_code", _TEXT), ("list_size", _INT), ("imd_decile", _INT),
                            ("share_over_65", _REAL), ("share_under_18", _REAL), ("rurality", _TEXT)),
                           self._db.query("SELECT * FROM attributes ORDER BY 1")),
            "figures": (FIGURE_COLUMNS, figure_rows),
        }
        written = []
        work = Path(tempfile.mkdtemp(prefix=".mosaic-export-", dir=folder))  # 0700: nobody else reaches it
        try:
            con = duckdb.connect()
            engine = _Memory(con)
            for name, (columns, rows) in tables.items():
                engine.stage(f"t_{name}", columns, rows)
                part = work / f"{name}.parquet"
                con.execute(f"COPY (SELECT * FROM t_{name}) TO ? (FORMAT PARQUET)", [str(part)])  # a folder as data
                os.chmod(part, paths.PRIVATE_FILE_MODE)
                final = folder / f"{name}.parquet"
                os.replace(part, final)
                written.append(final)
            con.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return written


FIGURE_COLUMNS: Columns = (
    ("cut", _TEXT), ("practice_id", _TEXT), ("metric", _TEXT), ("period", _TEXT), ("grp", _TEXT), ("value", _REAL),
    ("numerator", _REAL), ("denominator", _REAL), ("suppressed", "BOOLEAN"), ("suppression", _TEXT),
    ("status", _TEXT), ("error", _TEXT),
)


def _figure_row(f: Figure, cut: str) -> tuple[Any, ...]:
    return (cut, f.practice_id, f.metric, f.period, f.group, f.value, f.numerator, f.denominator, f.suppressed,
            f.suppression, f.status, f.error)


class _Memory(DuckDbEngine):
    def __init__(self, con: Any) -> None:
        self._con = con


def _private_duckdb_file(path: Path) -> None:
    """The database file made user-only before DuckDB opens it (DuckDB's .wal takes the umask: the folder,
    0700, is what keeps it private). DuckDB refuses an empty existing file, so a new one is made by DuckDB
    inside the private folder and tightened at once, before any row is written."""
    paths.private_dir(path.parent)
    if path.exists():
        paths.private_file(path)
        return
    old = os.umask(0o077)
    try:
        import duckdb

        duckdb.connect(str(path)).close()
    finally:
        os.umask(old)
    paths.private_file(path)


def _not_provided(practice_id: str, metric: str, period: str, name: str, what: str) -> Figure:
    return Figure(practice_id, metric, period, None, None, None, None, False, "not provided",
                  f"{name}: {what} not provided by this practice's system")


class _RowMaker:
    """A store's rows from a practice's Activity, keeping no patient identifier a hostile (or careless) server
    could have put in the two places a practice writes freely:

    - resource ids (and the slot, schedule and appointment ids that refer to them): stored as a keyed hash,
      BLAKE2b with the store's own random 256-bit key (a MAC, as HMAC is, at half its cost: ~0.8 us an id),
      128 bits. It is stable, so upserts, incremental refreshes and the links between rows still match; the id
      itself is not kept. Nothing reads an id but those matches. The key lives in the store (a PostgreSQL
      store is shared by the PCs that refresh it), so it stops the id being read, not someone who holds the
      whole store from testing candidate numbers against it: see the README.
    - the practice's own slot or appointment type text: digit runs of six or more (an NHS number, a phone
      number, a date of birth) replaced and the length capped, as it is written."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        #: schedule ids hidden so far: a practice has a few dozen schedules, each named by thousands of slots
        self._schedules: dict[str, str | None] = {}

    def hide(self, rid: str | None) -> str | None:
        if rid is None:
            return None
        return hashlib.blake2b(rid.encode(), key=self._key, digest_size=16).hexdigest()

    def _schedule(self, sid: str | None) -> str | None:
        if sid is None:
            return None
        hidden = self._schedules.get(sid)
        if hidden is None:
            if len(self._schedules) >= 4096:  # a server naming a new schedule in every slot: bounded all the same
                self._schedules.clear()
            hidden = self._schedules[sid] = self.hide(sid)
        return hidden

    def slot(self, pid: str, s: Any) -> tuple[Any, ...]:
        day = local_date(s.start)
        return (pid, self.hide(s.id), s.status, as_utc(s.start), as_utc(s.end) if s.end else None, day,
                month_key(day) if day else None, week_key(day) if day else None, self._schedule(s.schedule_id),
                s.mode, s.clinician_type, s.category, stored_local_type(s.local_type),
                as_utc(s.updated) if s.updated else None)

    def appointment(self, pid: str, a: Any) -> tuple[Any, ...]:
        day = local_date(a.start)
        created = local_date(a.created)
        days = (day - created).days if day and created else None
        slot_ids = ",".join(str(self.hide(i)) for i in a.slot_ids) or None
        return (pid, self.hide(a.id), a.status, as_utc(a.start) if a.start else None, day,
                month_key(day) if day else None, week_key(day) if day else None,
                as_utc(a.created) if a.created else None, created, days, a.mode, a.clinician_type, a.category,
                stored_local_type(a.local_type), slot_ids, as_utc(a.updated) if a.updated else None)

    def encounter(self, pid: str, e: Any) -> tuple[Any, ...]:
        return (pid, self.hide(e.id), e.status, as_utc(e.start) if e.start else None, local_date(e.start), e.mode,
                self.hide(e.appointment_id), as_utc(e.updated) if e.updated else None)


#: the longest local type text stored (a type's name is a few words; the rest of a note is not kept)
MAX_STORED_TYPE_CHARS = 100
#: six or more digits, allowing the spaces, dashes, dots and slashes people write numbers with
_DIGIT_RUN = re.compile(r"\d(?:[\s./-]?\d){5,}")


@functools.lru_cache(maxsize=4096)
def stored_local_type(text: str | None) -> str | None:
    """A practice's type text as stored: digit runs of six or more replaced (before the cap, so no half of one
    is left), white space collapsed, at most MAX_STORED_TYPE_CHARS."""
    if text is None:
        return None
    words = " ".join(_DIGIT_RUN.sub("[number removed]", text).split())
    return words[:MAX_STORED_TYPE_CHARS].rstrip()
