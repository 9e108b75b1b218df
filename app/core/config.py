"""The practice directory: a machine-wide TOML file that IT deploys, merged with a per-user file.

Decision: the machine file is authoritative. A per-user file may add practices of its own and, for a
practice the machine file defines, change only cosmetic or personal keys (name, colour, username);
it may not point a machine practice at another server or change how it authenticates.

What each table and key may hold is declared once, in app/core/settings_schema.py (pydantic); this module
decides which file may hold which table, merges them, and turns a schema fault into a ConfigError.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.core import paths
from app.core.model import Practice
from app.core.schema_types import error_key_path, error_message, first_error, printable
from app.core.settings_schema import (
    DEFAULT_IDLE_LOCK_MINUTES,
    NOTIFY_DEFAULT_BASE_URL,
    NOTIFY_RULES,
    ODS_CODE_EXPECTED,
    TABLES,
    AuditTable,
    GpConnectTable,
    IdentityTable,
    NotifyTable,
    PracticeDirectory,
    PracticeEntry,
)

__all__ = ["NOTIFY_DEFAULT_BASE_URL", "NOTIFY_RULES", "ODS_CODE_EXPECTED"]

#: the keys a [[practice]] may hold (app/core/settings_schema.py declares them)
_KEYS = set(PracticeEntry.model_fields)
USER_OVERRIDABLE = {"name", "colour", "username"}
#: a table only a user's own file may hold: a shorter idle lock for that user (app/core/idle_lock_setting.py)
USER_ONLY_TABLES = ("lock",)
Model = TypeVar("Model", bound=BaseModel)


class ConfigError(Exception):
    """A problem in a practice directory file, naming the file, the practice and the key."""

    def __init__(self, file: Path | str, message: str, practice: str | None = None,
                 key: str | None = None) -> None:
        where = str(file)
        if practice:
            where += f", practice '{practice}'"
        if key:
            where += f", key '{key}'"
        super().__init__(printable(f"{where}: {message}"))
        self.file = str(file)
        self.practice = practice
        self.key = key


@dataclass(frozen=True)
class AuditSettings:
    """The machine-wide [audit] table. `central_url` is a database URL without a password."""

    central_url: str | None = None


def validated(model: type[Model], table: dict[str, Any], file: Path | str, practice: str | None = None) -> Model:
    """`table` checked against its schema `model`; the first fault as a ConfigError naming file, practice and key."""
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        error = first_error(exc)
        where = error_key_path(error)
        key = where[-1] if where else None
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(model.model_fields))
            message = f"unknown key (known keys: {known})" if practice else f"unknown key (known: {known})"
        elif error["type"] == "missing":
            message = "missing; every [[practice]] needs it" if practice else "missing"
        else:
            message = error_message(error)
        raise ConfigError(file, message, practice, key) from None


#: tables only the machine-wide file may hold: who signs in, where audit goes, the access policy, who is told
MACHINE_ONLY_TABLES = ("identity", "audit", "policy", "notify", "gp_connect", "insight")
#: machine-only tables a per-user file may supply while the machine file has none: they say who Mosaic is (its
#: Spine ASID and its users' organisation, sent on GP Connect requests), not who the user is or what they may
#: do, so supplying them weakens no policy, audit or notification rule (the practice's own GP Connect
#: service decides what that ASID may read). `mosaic demo-server --write-config` relies on it.
USER_FALLBACK_TABLES = ("gp_connect",)


def machine_table(name: str, what: str, config_file: Path | None = None,
                  known: tuple[str, ...] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The [name] table from the machine-wide file only: these settings are IT's decision. The per-user file
    (`config_file`, from --config, else the user's own practices.toml) may not hold it: a ConfigError naming
    that file and the table (except a USER_FALLBACK_TABLES table while the machine file has none). None when
    neither file has it and there is no machine-wide file. With `known`, any other key is an error (a typo
    would otherwise be ignored silently)."""
    check_group_policy()  # a Group Policy value set but unusable: nothing machine-wide is read past it
    user = config_file if config_file is not None else paths.user_config_file()
    machine = paths.machine_config_file()
    machine_data = read_toml(machine) if machine.exists() else None
    if user.exists() and name in read_toml(user):
        if name not in USER_FALLBACK_TABLES or (machine_data is not None and name in machine_data):
            raise ConfigError(user, f"{what} belong in the machine-wide file {machine} (ask IT); a per-user or "
                              "--config file may not set them", key=name)
        source, table = user, read_toml(user)[name]
    elif machine_data is None:
        return None
    else:
        source, table = machine, machine_data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(source, f"must be a [{name}] table", key=name)
    for key in table:
        if known is not None and key not in known:
            raise ConfigError(source, f"unknown key in [{name}] (known: {', '.join(known)})", key=key)
    return source, table


def load_audit_settings(config_file: Path | None = None) -> AuditSettings:
    """[audit] from the machine-wide file only: where audit goes is IT's decision, so a per-user file
    (`config_file` from --config, else the user's own) may not set it, nor drop it."""
    found = machine_table("audit", "audit settings", config_file, known=_known(AuditTable))
    if found is None:
        return AuditSettings()
    source, table = found
    return AuditSettings(central_url=validated(AuditTable, table, source).central_url)


def load_insight_store_url(config_file: Path | None = None) -> str | None:
    """[insight] store_url from the machine-wide file only (where the locality's figures are kept is IT's
    decision); None: the user's own DuckDB file."""
    from app.core.settings_schema import InsightTable

    found = machine_table("insight", "insight settings", config_file, known=_known(InsightTable))
    if found is None:
        return None
    source, table = found
    return validated(InsightTable, table, source).store_url


def _known(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)


@dataclass(frozen=True)
class NotifySettings:
    """The machine-wide [notify] table: when patients are told who opened their record (GOV.UK Notify).

    The API key is never here: MOSAIC_SECRET_NOTIFY or the keyring (user "notify")."""

    rule: str = "never"  # "every" | "cross-practice" | "never"
    sms_template_id: str | None = None
    email_template_id: str | None = None
    base_url: str = NOTIFY_DEFAULT_BASE_URL
    digest_hour: int = 18  # local hour the daily digest goes out (for the previous day's accesses)
    # the organisation this workstation's users work for, as the patient is told it (a signed-in
    # user's organisation from the identity provider wins); "cross-practice" compares ODS codes
    ods_code: str | None = None
    organisation: str | None = None


def load_notify_settings(config_file: Path | None = None) -> NotifySettings:
    """[notify] from the machine-wide file only (a per-user file, `config_file` included, may not set it)."""
    found = machine_table("notify", "notify settings", config_file, known=_known(NotifyTable))
    if found is None:
        return NotifySettings()
    source, table = found
    notify = validated(NotifyTable, table, source)
    return NotifySettings(rule=notify.rule, sms_template_id=notify.sms_template_id,
                          email_template_id=notify.email_template_id, base_url=notify.base_url.rstrip("/"),
                          digest_hour=notify.digest_hour, ods_code=notify.ods_code, organisation=notify.organisation)


@dataclass(frozen=True)
class IdentitySettings:
    """The machine-wide [identity] table: the OpenID provider users sign in with (NHS CIS2 or the
    demo's), and how long the window may sit idle before it locks."""

    issuer: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile")
    idle_lock_minutes: float = DEFAULT_IDLE_LOCK_MINUTES

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id)


def load_identity_settings(config_file: Path | None = None) -> IdentitySettings:
    """[identity] from the machine-wide file only: who may sign in, and where, is IT's decision, so a
    per-user file (`config_file` included) may not set it. `idle_lock_minutes` is the effective idle lock:
    Group Policy, else this table, else the default, made shorter by the user's own [lock] (see
    app/core/idle_lock_setting.py)."""
    from app.core.idle_lock_setting import effective_idle_lock

    found = machine_table("identity", "identity settings", config_file, known=_known(IdentityTable))
    if found is None:
        return IdentitySettings(idle_lock_minutes=effective_idle_lock(None, config_file).minutes)
    source, table = found
    identity = validated(IdentityTable, table, source)
    machine = (source, identity.idle_lock_minutes) if "idle_lock_minutes" in table else None
    idle = effective_idle_lock(machine, config_file)
    return IdentitySettings(issuer=identity.issuer.rstrip("/") if identity.issuer else None,
                            client_id=identity.client_id, scopes=tuple(identity.scopes),
                            idle_lock_minutes=idle.minutes)


@dataclass(frozen=True)
class GpConnectSettings:
    """The machine-wide [gp_connect] table: Mosaic's own Spine ASID (sent as Ssp-From) and the ODS code
    of the organisation its users work for (the JWT's requesting_organization until sign-in says)."""

    asid: str | None = None
    ods_code: str | None = None


def load_gp_connect_settings(config_file: Path | None = None) -> GpConnectSettings:
    """[gp_connect] from the machine-wide file; a per-user file (`config_file` included) may supply it only
    while the machine file has none (USER_FALLBACK_TABLES: it names Mosaic, not the user)."""
    found = machine_table("gp_connect", "GP Connect settings", config_file, known=_known(GpConnectTable))
    if found is None:
        return GpConnectSettings()
    source, table = found
    settings = validated(GpConnectTable, table, source)
    return GpConnectSettings(asid=settings.asid, ods_code=settings.ods_code.upper() if settings.ods_code else None)


def _with_gp_connect(practices: list[Practice], settings: GpConnectSettings) -> list[Practice]:
    return [replace(p, consumer_asid=p.consumer_asid or settings.asid, consumer_ods=p.consumer_ods or settings.ods_code)
            if p.adapter == "gp-connect" else p for p in practices]


def load_directory(config_file: Path | None = None) -> list[Practice]:
    """The practices to open: the machine-wide file's, merged with the per-user file's — `config_file` (from
    --config) when given, else the user's own practices.toml. --config replaces the per-user file only."""
    if config_file is not None and not config_file.exists():
        raise ConfigError(config_file, "file not found")
    check_group_policy()
    machine = paths.machine_config_file()
    user = config_file if config_file is not None else paths.user_config_file()
    machine_practices = _parse_file(machine, machine=True) if machine.exists() else []
    user_tables: list[dict[str, Any]] = []
    if user.exists():
        user_tables = _read_tables(user)
        for name in MACHINE_ONLY_TABLES:  # refused here too, whichever settings the caller goes on to load
            machine_table(name, f"[{name}] settings", config_file)
    return _with_gp_connect(_merge(machine_practices, user_tables, user), load_gp_connect_settings(config_file))


def check_group_policy() -> None:
    """A Mosaic Group Policy value that is set but unusable stops Mosaic (it never falls back to defaults that
    may not hold the locality's rules)."""
    from app.core import group_policy

    problems = group_policy.read_group_policy().problems
    if problems:
        raise ConfigError(f"Group Policy {group_policy.registry_name('')}".rstrip("\\"), problems[0])


def _merge(machine: list[Practice], user_tables: list[dict[str, Any]], user_file: Path) -> list[Practice]:
    """A per-user file may add practices and, for a machine practice, change only USER_OVERRIDABLE keys. A
    practice it adds may not reach a machine practice's server under another id (an alias would escape that
    practice's restrictions and audit rules: app.core.server_identity), nor name a machine practice's key file."""
    from app.core.server_identity import same_server

    by_id = {p.id: p for p in machine}
    machine_keys = {_resolved(p.key_file) for p in machine if p.key_file}
    merged = list(machine)
    for index, table in enumerate(user_tables, start=1):
        pid = table.get("id")
        if isinstance(pid, str) and pid in by_id and by_id[pid] in machine:
            for key in table:
                if key != "id" and key not in USER_OVERRIDABLE:
                    raise ConfigError(user_file, "set by the machine-wide directory and cannot be changed "
                                      "in a per-user file (ask IT)", pid, key)
            base = practice_table(by_id[pid])
            base.update(table)
            practice = replace(_practice_from_table(base, user_file, index), source=by_id[pid].source)
            merged[merged.index(by_id[pid])] = practice
            by_id[pid] = practice
        else:
            practice = _practice_from_table(table, user_file, index)
            if practice.id in by_id:
                raise ConfigError(user_file, "this id is used twice", practice.id, "id")
            _check_secret_name(practice, merged, user_file)
            alias = next((m for m in machine if same_server(m, practice)), None)
            if alias is not None:
                raise ConfigError(user_file, f"points at the server of the machine-wide practice '{alias.id}' "
                                  f"({alias.base_url}); a per-user file may not add another entry for it, which "
                                  "would escape that practice's rules (ask IT)", practice.id, "base_url")
            if practice.key_file and _resolved(practice.key_file) in machine_keys:
                raise ConfigError(user_file, "names the key file of a machine-wide practice; a per-user "
                                  "practice needs a key of its own (or keep the key in the keyring)",
                                  practice.id, "key_file")
            merged.append(practice)
            by_id[practice.id] = practice
    return merged


def _resolved(path: str) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except OSError:
        return Path(path).expanduser().absolute()


def read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot be read: {exc}") from exc


def _read_tables(file: Path, *, machine: bool = False) -> list[dict[str, Any]]:
    data = read_toml(file)
    unknown = set(data) - set(PracticeDirectory.model_fields)
    if unknown:
        tables = ", ".join(f"[{name}]" for name in TABLES)
        raise ConfigError(file, f"unknown top-level key (expected [[practice]] tables and optional {tables})",
                          key=sorted(unknown)[0])
    for name in USER_ONLY_TABLES:
        if machine and name in data:
            raise ConfigError(file, "belongs in a user's own file (a shorter idle lock for that user); the "
                              "machine's idle-lock time is [identity] idle_lock_minutes, or Group Policy", key=name)
    tables = data.get("practice", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(file, "'practice' must be written as [[practice]] tables", key="practice")
    return tables


def _parse_file(file: Path, *, machine: bool = False) -> list[Practice]:
    practices: list[Practice] = []
    seen: set[str] = set()
    for index, table in enumerate(_read_tables(file, machine=machine), start=1):
        practice = _practice_from_table(table, file, index)
        if practice.id in seen:
            raise ConfigError(file, "this id is used twice", practice.id, "id")
        _check_secret_name(practice, practices, file)
        seen.add(practice.id)
        practices.append(practice)
    return practices


def _check_secret_name(practice: Practice, others: list[Practice], file: Path) -> None:
    """A practice's secret is MOSAIC_SECRET_<ID> (anything not a letter or digit as '_'): two ids that differ
    only there ("st-marys", "st_marys") would read one secret, so a practice a user adds would be handed a
    machine practice's. Refused whichever file the second is in."""
    from app.core.secrets import env_name

    variable = env_name(practice.id)
    clash = next((o for o in others if o.id != practice.id and env_name(o.id) == variable), None)
    if clash is not None:
        raise ConfigError(file, f"its secret would be {variable}, the secret of practice '{clash.id}' "
                          f"({clash.source}); choose an id that differs in a letter or digit", practice.id, "id")


def _practice_from_table(table: dict[str, Any], file: Path, index: int) -> Practice:
    label = table.get("id") if isinstance(table.get("id"), str) else f"#{index}"
    entry = validated(PracticeEntry, table, file, label)
    return Practice(
        id=entry.id, name=entry.name.strip(), ods_code=entry.ods_code.strip(), adapter=entry.adapter,
        base_url=entry.base_url.rstrip("/"), auth=entry.auth, username=entry.username, token_url=entry.token_url,
        client_id=entry.client_id, scope=entry.scope, colour=entry.colour.lower(), timeout_s=float(entry.timeout),
        max_response_bytes=int(float(entry.max_response_mb) * 1024 * 1024), source=str(file),
        key_id=entry.key_id, key_file=entry.key_file,
        key_alg=(entry.key_alg or "RS384") if entry.auth == "private-key-jwt" else None, asid=entry.asid,
    )


def practice_table(practice: Practice) -> dict[str, Any]:
    table: dict[str, Any] = {
        "id": practice.id, "name": practice.name, "ods_code": practice.ods_code, "adapter": practice.adapter,
        "base_url": practice.base_url, "auth": practice.auth, "colour": practice.colour,
        "timeout": practice.timeout_s, "max_response_mb": practice.max_response_bytes / (1024 * 1024),
    }
    for key in ("username", "token_url", "client_id", "scope", "key_id", "key_alg", "key_file", "asid"):
        value = getattr(practice, key)
        if value is not None:
            table[key] = value
    return table


def render_directory(practices: list[Practice]) -> str:
    """TOML text for a practice directory (used by `mosaic demo-server --write-config`)."""
    lines: list[str] = []
    for p in practices:
        lines.append("[[practice]]")
        for key, value in practice_table(p).items():
            if key in ("timeout", "max_response_mb") and value in (15.0, 16.0):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
