"""Each time unit's protected tables kept in the store, so that no query works out suppression on the spot.

Suppression (app/insight/suppression.py) of a month or week depends only on that unit's cells over the
store's practices (and, for a month, on its weeks' decisions), and its exact check takes a few milliseconds a
unit: a two-year range by practice covers ~130 units and took over a second when first asked. So a unit's
cells and hidden cells are worked out once, by the refresh that changed them (`InsightStore.prepare`) or by the
first query that needs them, and kept in the store (`protections`, `protected_cells`), where every later query and every
other process (the CLI, a window opened later, another PC sharing a PostgreSQL store) reads them.

Never stale: each write of a unit's rows (`InsightStore.apply_staged`) gives the unit a new random mark in
`unit_marks`, in the same transaction as the rows. A unit's kept tables carry a fingerprint of everything they
were worked out from: the measure's SQL, the practices, the unit's mark and (for a month) the marks of the
weeks its days fall in, and the suppression code's version. A query uses kept tables only when their
fingerprint is the one the store's marks give now; otherwise it works them out again and keeps those. The
cells a figure adds are the kept cells themselves, kept with their hidden cells, so a figure is always made
of the very counts its protection was worked out over.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.insight import suppression
from app.insight.measures import MeasureSql
from app.insight.periods import week_key
from app.insight.store_engine import Columns, Engine
from app.insight.suppression import Coord, Counts

log = logging.getLogger("mosaic.insight.store")

#: one time unit's cells and its hidden ones
UnitTables = tuple[dict[Coord, Counts], dict[Coord, str]]

#: the row tables whose units are marked (the measures count slots and appointments only)
MARKED_TABLES = ("slots", "appointments")
GRAINS = ("month", "week")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS unit_marks (tbl TEXT NOT NULL, grain TEXT NOT NULL, unit TEXT NOT NULL, "
    "mark TEXT NOT NULL, PRIMARY KEY (tbl, grain, unit))",
    # a unit's kept tables: which fingerprint they were worked out under (an empty unit has no cells)
    "CREATE TABLE IF NOT EXISTS protections (kind TEXT NOT NULL, grain TEXT NOT NULL, unit TEXT NOT NULL, "
    "fingerprint TEXT NOT NULL, PRIMARY KEY (kind, grain, unit))",
    # and their cells, each under the fingerprint it was worked out with (only those of the unit's current one
    # are read, so two PCs keeping a unit at once never mix their cells)
    "CREATE TABLE IF NOT EXISTS protected_cells (kind TEXT NOT NULL, grain TEXT NOT NULL, unit TEXT NOT NULL, "
    "fingerprint TEXT NOT NULL, c0 TEXT NOT NULL, c1 TEXT NOT NULL, c2 TEXT NOT NULL, numerator DOUBLE PRECISION, "
    "denominator DOUBLE PRECISION, hidden TEXT)",
)
PG_INDEXES = ("CREATE INDEX IF NOT EXISTS protected_cells_kept ON protected_cells (kind, grain, fingerprint)",
              "CREATE INDEX IF NOT EXISTS protected_cells_unit ON protected_cells (kind, grain, unit)")
_KEPT: Columns = (("kind", "TEXT"), ("grain", "TEXT"), ("unit", "TEXT"), ("fingerprint", "TEXT"))
_CELLS: Columns = (*_KEPT, ("c0", "TEXT"), ("c1", "TEXT"), ("c2", "TEXT"), ("numerator", "DOUBLE PRECISION"),
                   ("denominator", "DOUBLE PRECISION"), ("hidden", "TEXT"))


#: the modules whose code decides a protected table: suppression itself, and the store's queries that feed it
_DECIDING_MODULES = ("app.insight.suppression", "app.insight.store", "app.insight.kept_protections",
                     "app.insight.measures")


@lru_cache(maxsize=1)
def algorithm_version() -> str:
    """The fingerprint of the code that decides protections: tables kept by other code are worked out again.
    Mosaic's version and PROTECTION_VERSION, and the source of the deciding modules where it is on disk (a frozen
    bundle ships none: there the version alone moves with each build). Source text, not compiled code, so that
    PCs running the same version agree on a shared store's fingerprints."""
    import importlib.util

    from app import installed_version

    digest = hashlib.sha256(f"{suppression.PROTECTION_VERSION}\0{installed_version()}".encode())
    for name in _DECIDING_MODULES:
        spec = importlib.util.find_spec(name)
        try:
            digest.update(Path(spec.origin).read_bytes() if spec is not None and spec.origin else b"")
        except OSError:  # a frozen build without sources
            continue
    return digest.hexdigest()[:16]


def spec_key(spec: MeasureSql) -> str:
    """A measure's counts as protection sees them (measures counting the same cells share their tables)."""
    text = json.dumps([spec.table, spec.numerator, spec.denominator, algorithm_version()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mark_statements(table: str, practice_id: str, mark: str, full_period: tuple[date, date] | None
                    ) -> list[tuple[str, list[Any]]]:
    """SQL giving a new mark to every unit of `table` that applying the practice's staged rows can change: the
    units of the staged rows, the units those rows are in now (a moved appointment leaves one), and for a full
    read (`full_period`) every unit of the practice's rows in its period (the rows it no longer holds are
    deleted). Run before the rows change, in the same transaction."""
    staged = f"staged_{table}"
    out = []
    for grain in GRAINS:
        touched = [f"SELECT {grain} AS unit FROM {staged} WHERE practice_id = ?",
                   f"SELECT {grain} FROM {table} WHERE practice_id = ? AND id IN "
                   f"(SELECT id FROM {staged} WHERE practice_id = ?)"]
        params: list[Any] = [mark, practice_id, practice_id, practice_id]
        if full_period is not None:
            touched.append(f"SELECT {grain} FROM {table} WHERE practice_id = ? AND "
                           "(start_date BETWEEN ? AND ? OR start_date IS NULL)")
            params += [practice_id, *full_period]
        out.append((f"INSERT INTO unit_marks (tbl, grain, unit, mark) SELECT DISTINCT '{table}', '{grain}', unit, "
                    f"CAST(? AS TEXT) FROM ({' UNION ALL '.join(touched)}) AS touched WHERE unit IS NOT NULL "
                    "ON CONFLICT (tbl, grain, unit) DO UPDATE SET mark = excluded.mark", params))
    return out


#: the store's newest mark (any unit's rows changed: a process holding tables in memory reads them again)
LATEST_MARK_SQL = ("INSERT INTO unit_marks (tbl, grain, unit, mark) VALUES ('*', '*', '*', ?) "
                   "ON CONFLICT (tbl, grain, unit) DO UPDATE SET mark = excluded.mark")
LATEST_MARK_QUERY = "SELECT mark FROM unit_marks WHERE tbl = '*' AND grain = '*' AND unit = '*'"


def weeks_of_month(month: str) -> list[str]:
    """The ISO weeks any day of the month falls in (a month is protected against each of them)."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday < following:
        weeks.append(week_key(monday))
        monday += timedelta(days=7)
    return weeks


class KeptProtections:
    """The store's kept unit tables: fingerprints from the current marks, reading and keeping tables."""

    def __init__(self, db: Engine) -> None:
        self._db = db
        self._marks: dict[tuple[str, str, str], str] | None = None
        self._fingerprints: dict[tuple[str, str, str, tuple[str, ...]], str] = {}
        self._pending: list[tuple[str, str, Mapping[str, tuple[str, UnitTables]]]] | None = None

    def forget(self) -> None:
        """The marks are read again (the store's rows changed, here or on another PC)."""
        self._marks = None
        self._fingerprints.clear()

    def _mark(self, table: str, grain: str, unit: str) -> str:
        if self._marks is None:
            self._marks = {(t, g, u): m for t, g, u, m in
                           self._db.query("SELECT tbl, grain, unit, mark FROM unit_marks")}
        return self._marks.get((table, grain, unit), "")

    def fingerprint(self, kind: str, table: str, grain: str, unit: str, practices: Sequence[str]) -> str:
        """Everything a unit's protected tables are worked out from, hashed (until the marks are read again)."""
        key = (kind, grain, unit, tuple(practices))
        known = self._fingerprints.get(key)
        if known is None:
            marks = [self._mark(table, grain, unit)]
            if grain == "month":
                marks += [self._mark(table, "week", w) for w in weeks_of_month(unit)]
            text = json.dumps([kind, table, grain, unit, list(practices), marks, algorithm_version()])
            known = self._fingerprints[key] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return known

    def current(self, kind: str, grain: str, fingerprints: Mapping[str, str]) -> set[str]:
        """The units whose kept tables are up to date (without reading them)."""
        if not fingerprints:
            return set()
        units = list(fingerprints)
        rows = self._db.query(f"SELECT unit, fingerprint FROM protections WHERE kind = ? AND grain = ? AND unit IN "
                              f"({', '.join('?' for _ in units)})", [kind, grain, *units])
        return {unit for unit, kept in rows if fingerprints.get(unit) == kept}

    def load(self, kind: str, grain: str, fingerprints: Mapping[str, str]) -> dict[str, UnitTables]:
        """The kept tables of the units whose fingerprint is still the one given."""
        current = self.current(kind, grain, fingerprints)
        if not current:
            return {}
        unit_of = {fingerprints[unit]: unit for unit in current}
        made: dict[str, UnitTables] = {unit: ({}, {}) for unit in current}
        rows = self._db.query(
            "SELECT fingerprint, c0, c1, c2, numerator, denominator, hidden FROM protected_cells WHERE kind = ? AND "
            f"grain = ? AND fingerprint IN ({', '.join('?' for _ in unit_of)})", [kind, grain, *unit_of])
        for fingerprint, c0, c1, c2, numerator, denominator, why in rows:
            cube, hidden = made[unit_of[fingerprint]]
            coord = (c0, c1, c2)
            if numerator is not None:
                cube[coord] = [numerator, denominator]
            if why is not None:
                hidden[coord] = why
        return made

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Tables kept inside are written together on the way out, in one transaction (a refresh's hundreds of
        units: one commit, not one per measure and grain)."""
        self._pending = []
        try:
            yield
        finally:
            pending, self._pending = self._pending, None
            self._write(pending)

    def keep(self, kind: str, grain: str, made: Mapping[str, tuple[str, UnitTables]]) -> None:
        """Keep worked-out tables (unit -> (fingerprint, tables)), in one transaction (or with the batch's)."""
        if not made:
            return
        if self._pending is not None:
            self._pending.append((kind, grain, dict(made)))
        else:
            self._write([(kind, grain, made)])

    def _write(self, batches: Sequence[tuple[str, str, Mapping[str, tuple[str, UnitTables]]]]) -> None:
        """A store that cannot take them (a PostgreSQL role that may only read) is logged and left: the figures
        stand, worked out again next time."""
        if not batches:
            return
        kept = [(kind, grain, unit, fingerprint) for kind, grain, made in batches
                for unit, (fingerprint, _) in made.items()]
        cells = [(kind, grain, unit, fingerprint, *_three(coord), *(cube.get(coord) or (None, None)), hidden.get(coord))
                 for kind, grain, made in batches for unit, (fingerprint, (cube, hidden)) in made.items()
                 for coord in {**cube, **hidden}]
        try:
            self._db.begin()
            try:
                for kind, grain, made in batches:
                    units = list(made)
                    marks = ", ".join("?" for _ in units)
                    for table in ("protected_cells", "protections"):
                        self._db.execute(f"DELETE FROM {table} WHERE kind = ? AND grain = ? AND unit IN ({marks})",
                                         [kind, grain, *units])
                self._db.append("protections", _KEPT, kept)
                if cells:
                    self._db.append("protected_cells", _CELLS, cells)
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        except Exception as exc:  # noqa: BLE001 - any store error: the tables are worked out again next time
            log.warning("insight protections not kept (%s: %s)", type(exc).__name__, exc)


def _three(coord: Coord) -> Coord:
    """A cell's coordinate as the three columns keep it (linked tables' and cross tables' cells have three)."""
    if len(coord) != 3:
        raise ValueError(f"a kept cell has three coordinates, not {coord!r}")
    return coord
