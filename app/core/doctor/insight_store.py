"""`mosaic doctor`'s look at the locality insight store: private, readable, and how fresh each practice's figures are.

Read only: the DuckDB file is opened read-only (a store in use by a running Mosaic is locked; that is said, not
failed) and nothing is made or written, so doctor never creates a store nobody asked for. A PostgreSQL store
([insight] store_url) is read in a read-only transaction.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.core.doctor.result import CheckResult

NAME, TITLE = "insight-store", "Locality insight store"
#: figures older than this are worth a warning: the Locality view says how old they are, but IT should know
STALE_AFTER = timedelta(days=7)
_PRACTICES_SQL = "SELECT id, name, status, error, refreshed_at FROM practices ORDER BY name"


def check(config_file: Path | None) -> CheckResult:
    """Blocking: run in a thread (`run.py`). The store [insight] store_url names, else the user's own file."""
    from app.core.config import ConfigError, load_insight_store_url

    try:
        url = load_insight_store_url(config_file)
    except ConfigError as exc:
        return CheckResult.fail(NAME, TITLE, f"Not checked: {exc}", "Correct the [insight] table named above.")
    return insight_store(url)


def insight_store(url: str | None, path: Path | None = None, *, now: datetime | None = None,
                  schema: str | None = None) -> CheckResult:
    """`url`: [insight] store_url (None: the user's own DuckDB file at `path`, default the per-user data
    folder's). `schema`: tests use one of their own."""
    if url:
        return _postgres(url, now, schema)
    if path is None:
        from app.insight.store import default_path

        path = default_path()
    return _duckdb(path, now)


def _duckdb(path: Path, now: datetime | None) -> CheckResult:
    if not path.exists():
        return CheckResult.ok(NAME, TITLE, f"No store yet at {path}: made (private to this account) at the first "
                              "refresh of the Locality view or `mosaic insight refresh`.")
    problems = _private_problems(path)
    if problems:
        return CheckResult.fail(NAME, TITLE, f"{path}: " + "; ".join(problems) + ".",
                                f"chown $USER {path} && chmod 0600 {path} && chmod 0700 {path.parent} (as the user "
                                "who runs Mosaic; Mosaic also tightens them when it next opens the store).")
    try:
        import duckdb

        con = duckdb.connect(str(path), read_only=True)
    except Exception as exc:  # noqa: BLE001 - duckdb raises its own IOException and others: each said
        text = str(exc)
        if "lock" in text.lower():
            return CheckResult.ok(NAME, TITLE, f"{path}: in use by a Mosaic running now (its figures were not "
                                  "read, to leave it undisturbed).")
        return CheckResult.fail(NAME, TITLE, f"{path} cannot be read as an insight store ({type(exc).__name__}: "
                                f"{text.splitlines()[0] if text else 'no reason given'}).",
                                "Move the file aside and refresh again: the store holds only figures read from the "
                                "practices, so nothing is lost that a refresh does not read again.")
    try:
        rows = con.execute(_PRACTICES_SQL).fetchall()
    except Exception as exc:  # noqa: BLE001 - a file that is a database but not a store
        return CheckResult.fail(NAME, TITLE, f"{path} is not an insight store ({type(exc).__name__}).",
                                "Move the file aside and refresh again (the store is rebuilt from the practices).")
    finally:
        con.close()
    return _freshness(str(path), rows, now)


def _postgres(url: str, now: datetime | None, schema: str | None) -> CheckResult:
    from app.insight.location import with_password
    from app.insight.store import DEFAULT_PG_SCHEMA, postgres_connection

    schema = schema or DEFAULT_PG_SCHEMA
    try:
        con, where = postgres_connection(with_password(url))
    except Exception as exc:  # noqa: BLE001 - a bad URL, no driver, a refused login, no password: each said
        return CheckResult.fail(NAME, TITLE, f"The PostgreSQL insight store cannot be reached: {exc}",
                                "Check [insight] store_url in the machine-wide file, that this PC reaches the server "
                                "(firewall), and the login's password: mosaic credentials set insight.")
    try:
        con.execute("SET TRANSACTION READ ONLY")
        found = con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND "
                            "table_name = 'practices'", [schema]).fetchall()
        if not found:
            return CheckResult.ok(NAME, TITLE, f"{where}: reachable; no figures yet (the tables are made at the "
                                  "first refresh).")
        rows = con.execute(_PRACTICES_SQL.replace("FROM practices", f'FROM "{schema}".practices'))
        return _freshness(where, rows.fetchall(), now)
    except Exception as exc:  # noqa: BLE001 - refused by the server (rights): said with what to do
        return CheckResult.fail(NAME, TITLE, f"{where} answers, but its figures cannot be read: {exc}",
                                f"Give this PC's login read and write rights on the {schema} schema.")
    finally:
        con.close()


def _private_problems(path: Path) -> list[str]:
    if sys.platform == "win32":  # the per-user profile's ACLs keep it private there
        return []
    problems = []
    info, folder = path.stat(), path.parent.stat()
    if info.st_uid != os.geteuid():
        problems.append(f"it belongs to another account (uid {info.st_uid})")
    elif stat.S_IMODE(info.st_mode) & 0o077:
        problems.append(f"other accounts may read it (mode {stat.S_IMODE(info.st_mode):04o}, not 0600)")
    if stat.S_IMODE(folder.st_mode) & 0o077:
        problems.append(f"its folder {path.parent} is open to other accounts (mode "
                        f"{stat.S_IMODE(folder.st_mode):04o}, not 0700)")
    return problems


def _freshness(where: str, rows: Sequence[tuple[Any, ...]], now: datetime | None) -> CheckResult:
    """ok: every practice refreshed within STALE_AFTER; warn: one failed, or figures older than that."""
    if not rows:
        return CheckResult.ok(NAME, TITLE, f"{where}: no practice refreshed yet.")
    now = now or datetime.now(UTC)
    failed = [f"{name} ({error or 'no reason recorded'})" for _id, name, status, error, _at in rows
              if status == "failed"]
    not_provided = [name for _id, name, status, _e, _at in rows if status == "not provided"]
    times = [_utc(at) for *_rest, at in rows if at is not None]
    oldest = min(times) if times else None
    said = [f"{len(rows)} practices"]
    if times:
        said.append(f"last refreshed {max(times):%d-%b-%Y %H:%M} UTC")
    if not_provided:
        said.append(f"no appointment book from {', '.join(not_provided)} (not provided by their system)")
    detail = f"{where}: " + "; ".join(said) + "."
    if failed:
        return CheckResult.warn(NAME, TITLE, detail + " The last refresh failed for " + "; ".join(failed) + ".",
                                "Their earlier figures still stand. Check those practices (their checks above), then "
                                "refresh: mosaic insight refresh.")
    if oldest is None or now - oldest > STALE_AFTER:
        return CheckResult.warn(NAME, TITLE, detail + f" Some figures are older than {STALE_AFTER.days} days"
                                + (f" (oldest {oldest:%d-%b-%Y})." if oldest else "."),
                                "Refresh: mosaic insight refresh (or open the Locality view).")
    return CheckResult.ok(NAME, TITLE, detail)


def _utc(at: Any) -> datetime:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
