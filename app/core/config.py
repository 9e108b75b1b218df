"""The practice directory: a machine-wide TOML file that IT deploys, merged with a per-user file.

Decision: the machine file is authoritative. A per-user file may add practices of its own and, for a
practice the machine file defines, change only cosmetic or personal keys (name, colour, username);
it may not point a machine practice at another server or change how it authenticates.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core import paths
from app.core.model import Practice

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_AUTH_KINDS = ("none", "basic", "bearer", "client-credentials")
_KEYS = {
    "id", "name", "ods_code", "adapter", "base_url", "auth", "username", "token_url", "client_id",
    "scope", "colour", "timeout", "max_response_mb",
}
_REQUIRED = ("id", "name", "ods_code", "adapter", "base_url")
USER_OVERRIDABLE = {"name", "colour", "username"}


class ConfigError(Exception):
    """A problem in a practice directory file, naming the file, the practice and the key."""

    def __init__(self, file: Path | str, message: str, practice: str | None = None,
                 key: str | None = None) -> None:
        where = str(file)
        if practice:
            where += f", practice '{practice}'"
        if key:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")
        self.file = str(file)
        self.practice = practice
        self.key = key


@dataclass(frozen=True)
class AuditSettings:
    """The machine-wide [audit] table. `central_url` is a database URL without a password."""

    central_url: str | None = None


def load_audit_settings(config_file: Path | None = None) -> AuditSettings:
    """[audit] from `config_file`, else from the machine-wide file only: where audit goes is IT's
    decision, so a per-user file may not set it."""
    if config_file is None:
        user = paths.user_config_file()
        if user.exists() and "audit" in _read_toml(user):
            raise ConfigError(user, "audit settings belong in the machine-wide file (ask IT)", key="audit")
        config_file = paths.machine_config_file()
        if not config_file.exists():
            return AuditSettings()
    table = _read_toml(config_file).get("audit", {})
    if not isinstance(table, dict):
        raise ConfigError(config_file, "must be an [audit] table", key="audit")
    for key, value in table.items():
        if key != "central_url":
            raise ConfigError(config_file, "unknown key in [audit] (known: central_url)", key=key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(config_file, "must be a database URL such as "
                              "\"postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit\"", key=key)
        if "@" in value and ":" in value.split("@", 1)[0].split("//", 1)[-1]:
            raise ConfigError(config_file, "must not contain a password; set MOSAIC_SECRET_CENTRAL or use "
                              "`mosaic credentials set central`", key=key)
    return AuditSettings(central_url=table.get("central_url"))


def load_directory(config_file: Path | None = None) -> list[Practice]:
    """The practices to open. `config_file`, when given, replaces both the machine and user files."""
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError(config_file, "file not found")
        return _parse_file(config_file)
    machine = paths.machine_config_file()
    user = paths.user_config_file()
    machine_practices = _parse_file(machine) if machine.exists() else []
    user_tables = _read_tables(user) if user.exists() else []
    return _merge(machine_practices, user_tables, user)


def _merge(machine: list[Practice], user_tables: list[dict[str, Any]], user_file: Path) -> list[Practice]:
    by_id = {p.id: p for p in machine}
    merged = list(machine)
    for index, table in enumerate(user_tables, start=1):
        pid = table.get("id")
        if isinstance(pid, str) and pid in by_id:
            for key in table:
                if key != "id" and key not in USER_OVERRIDABLE:
                    raise ConfigError(user_file, "set by the machine-wide directory and cannot be changed "
                                      "in a per-user file (ask IT)", pid, key)
            base = _table_of(by_id[pid])
            base.update(table)
            practice = _practice_from_table(base, user_file, index)
            merged[merged.index(by_id[pid])] = practice
            by_id[pid] = practice
        else:
            practice = _practice_from_table(table, user_file, index)
            if practice.id in by_id:
                raise ConfigError(user_file, "this id is used twice", practice.id, "id")
            merged.append(practice)
            by_id[practice.id] = practice
    return merged


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot be read: {exc}") from exc


def _read_tables(file: Path) -> list[dict[str, Any]]:
    data = _read_toml(file)
    unknown = set(data) - {"practice", "audit"}
    if unknown:
        raise ConfigError(file, "unknown top-level key (expected [[practice]] tables and an optional [audit])",
                          key=sorted(unknown)[0])
    tables = data.get("practice", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(file, "'practice' must be written as [[practice]] tables", key="practice")
    return tables


def _parse_file(file: Path) -> list[Practice]:
    practices: list[Practice] = []
    seen: set[str] = set()
    for index, table in enumerate(_read_tables(file), start=1):
        practice = _practice_from_table(table, file, index)
        if practice.id in seen:
            raise ConfigError(file, "this id is used twice", practice.id, "id")
        seen.add(practice.id)
        practices.append(practice)
    return practices


def _practice_from_table(table: dict[str, Any], file: Path, index: int) -> Practice:
    label = table.get("id") if isinstance(table.get("id"), str) else f"#{index}"

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(file, message, label, key)

    for key in table:
        if key not in _KEYS:
            raise fail(key, f"unknown key (known keys: {', '.join(sorted(_KEYS))})")
    for key in _REQUIRED:
        if key not in table:
            raise fail(key, "missing; every [[practice]] needs it")
    for key, value in table.items():
        if key in ("timeout", "max_response_mb"):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise fail(key, "must be a positive number")
        elif not isinstance(value, str) or not value.strip():
            raise fail(key, "must be a non-empty string")
    if not _ID.match(table["id"]):
        raise fail("id", "must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit")
    auth = table.get("auth", "none")
    if auth not in _AUTH_KINDS:
        raise fail("auth", f"must be one of {', '.join(_AUTH_KINDS)}")
    if auth == "basic" and "username" not in table:
        raise fail("username", "needed when auth = \"basic\"")
    if auth == "client-credentials":
        for key in ("token_url", "client_id"):
            if key not in table:
                raise fail(key, "needed when auth = \"client-credentials\"")
    for key in ("base_url", "token_url"):
        if key in table:
            problem = _url_problem(table[key])
            if problem:
                raise fail(key, problem)
    colour = table.get("colour", "#505a5f")
    if not _COLOUR.match(colour):
        raise fail("colour", "must be a #rrggbb colour, e.g. \"#1d70b8\"")
    return Practice(
        id=table["id"], name=table["name"].strip(), ods_code=table["ods_code"].strip(),
        adapter=table["adapter"], base_url=table["base_url"].rstrip("/"), auth=auth,
        username=table.get("username"), token_url=table.get("token_url"), client_id=table.get("client_id"),
        scope=table.get("scope"), colour=colour.lower(), timeout_s=float(table.get("timeout", 15.0)),
        max_response_bytes=int(float(table.get("max_response_mb", 16)) * 1024 * 1024), source=str(file),
    )


def _url_problem(url: str) -> str | None:
    """Patient data never crosses a network in clear text: plain http is allowed only to this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL, e.g. \"https://fhir.example.nhs.uk/R4\""
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "plain http is only allowed to this machine (127.0.0.1/localhost); use https"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _table_of(practice: Practice) -> dict[str, Any]:
    table: dict[str, Any] = {
        "id": practice.id, "name": practice.name, "ods_code": practice.ods_code, "adapter": practice.adapter,
        "base_url": practice.base_url, "auth": practice.auth, "colour": practice.colour,
        "timeout": practice.timeout_s, "max_response_mb": practice.max_response_bytes / (1024 * 1024),
    }
    for key in ("username", "token_url", "client_id", "scope"):
        value = getattr(practice, key)
        if value is not None:
            table[key] = value
    return table


def render_directory(practices: list[Practice]) -> str:
    """TOML text for a practice directory (used by `mosaic demo-server --write-config`)."""
    lines: list[str] = []
    for p in practices:
        lines.append("[[practice]]")
        for key, value in _table_of(p).items():
            if key in ("timeout", "max_response_mb") and value in (15.0, 16.0):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
