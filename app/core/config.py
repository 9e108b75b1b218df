"""The practice directory: a machine-wide TOML file that IT deploys, merged with a per-user file.

Decision: the machine file is authoritative. A per-user file may add practices of its own and, for a
practice the machine file defines, change only cosmetic or personal keys (name, colour, username);
it may not point a machine practice at another server or change how it authenticates.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core import paths
from app.core.model import Practice

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_AUTH_KINDS = ("none", "basic", "bearer", "client-credentials", "private-key-jwt")
_KEY_ALGS = ("RS384", "ES384")
_KEYS = {
    "id", "name", "ods_code", "adapter", "base_url", "auth", "username", "token_url", "client_id",
    "scope", "colour", "timeout", "max_response_mb", "key_id", "key_alg", "key_file", "asid",
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



_ODS_CODE = re.compile(r"[A-Za-z0-9]{3,10}")
ODS_CODE_EXPECTED = 'must be an ODS code such as "Y12345"'


#: tables only the machine-wide file may hold: who signs in, where audit goes, the access policy, who is told
MACHINE_ONLY_TABLES = ("identity", "audit", "policy", "notify", "gp_connect")
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
    user = config_file if config_file is not None else paths.user_config_file()
    machine = paths.machine_config_file()
    machine_data = _read_toml(machine) if machine.exists() else None
    if user.exists() and name in _read_toml(user):
        if name not in USER_FALLBACK_TABLES or (machine_data is not None and name in machine_data):
            raise ConfigError(user, f"{what} belong in the machine-wide file {machine} (ask IT); a per-user or "
                              "--config file may not set them", key=name)
        source, table = user, _read_toml(user)[name]
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
    found = machine_table("audit", "audit settings", config_file, known=("central_url",))
    if found is None:
        return AuditSettings()
    config_file, table = found
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(config_file, "must be a database URL such as "
                              "\"postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit\"", key=key)
        if "@" in value and ":" in value.split("@", 1)[0].split("//", 1)[-1]:
            raise ConfigError(config_file, "must not contain a password; set MOSAIC_SECRET_CENTRAL or use "
                              "`mosaic credentials set central`", key=key)
    return AuditSettings(central_url=table.get("central_url"))


NOTIFY_RULES = ("every", "cross-practice", "never")
NOTIFY_DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"


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


_NOTIFY_KEYS = ("rule", "sms_template_id", "email_template_id", "base_url", "digest_hour", "ods_code",
                "organisation")


def load_notify_settings(config_file: Path | None = None) -> NotifySettings:
    """[notify] from the machine-wide file only (a per-user file, `config_file` included, may not set it)."""
    found = machine_table("notify", "notify settings", config_file, known=_NOTIFY_KEYS)
    if found is None:
        return NotifySettings()
    config_file, table = found
    for key, value in table.items():
        if key == "rule" and value not in NOTIFY_RULES:
            raise ConfigError(config_file, f"must be one of {', '.join(NOTIFY_RULES)}", key=key)
        if key == "digest_hour" and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23):
            raise ConfigError(config_file, "must be a whole hour from 0 to 23", key=key)
        if key == "ods_code" and not (isinstance(value, str) and _ODS_CODE.fullmatch(value)):
            raise ConfigError(config_file, ODS_CODE_EXPECTED, key=key)
        if key in ("sms_template_id", "email_template_id", "base_url", "organisation") and (
                not isinstance(value, str) or not value.strip()):
            raise ConfigError(config_file, "must be a non-empty string", key=key)
        if key == "base_url" and _url_problem(value):
            raise ConfigError(config_file, _url_problem(value) or "", key=key)
        if key == "base_url" and any(s in value.lower() for s in ("api_key", "secret")):
            raise ConfigError(config_file, "must not contain the API key; set MOSAIC_SECRET_NOTIFY or use "
                              "`mosaic credentials set notify`", key=key)
    if table.get("rule", "never") != "never" and not (table.get("sms_template_id") or table.get("email_template_id")):
        raise ConfigError(config_file, "needs sms_template_id or email_template_id when rule is not \"never\"",
                          key="rule")
    return NotifySettings(**{k: (v.rstrip("/") if k == "base_url" else v) for k, v in table.items()})


@dataclass(frozen=True)
class IdentitySettings:
    """The machine-wide [identity] table: the OpenID provider users sign in with (NHS CIS2 or the
    demo's), and how long the window may sit idle before it locks."""

    issuer: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile")
    idle_lock_minutes: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id)


_IDENTITY_KEYS = ("issuer", "client_id", "scopes", "idle_lock_minutes")


def load_identity_settings(config_file: Path | None = None) -> IdentitySettings:
    """[identity] from the machine-wide file only: who may sign in, and where, is IT's decision, so a
    per-user file (`config_file` included) may not set it."""
    found = machine_table("identity", "identity settings", config_file, known=_IDENTITY_KEYS)
    if found is None:
        return IdentitySettings()
    config_file, table = found
    for key in ("issuer", "client_id"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(config_file, "must be a non-empty string", key=key)
    issuer = table.get("issuer")
    if issuer is not None:
        problem = _url_problem(issuer)
        if problem:
            raise ConfigError(config_file, problem, key="issuer")
    if (issuer is None) != (table.get("client_id") is None):
        raise ConfigError(config_file, "issuer and client_id go together", key="client_id" if issuer else "issuer")
    scopes = table.get("scopes", "openid profile")
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s.strip() for s in scopes) \
            or "openid" not in scopes:
        raise ConfigError(config_file, 'must list scopes including "openid", e.g. "openid profile"', key="scopes")
    minutes = table.get("idle_lock_minutes", 10)
    if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes <= 0:
        raise ConfigError(config_file, "must be a positive number of minutes", key="idle_lock_minutes")
    return IdentitySettings(issuer=issuer.rstrip("/") if issuer else None, client_id=table.get("client_id"),
                            scopes=tuple(scopes), idle_lock_minutes=float(minutes))


@dataclass(frozen=True)
class GpConnectSettings:
    """The machine-wide [gp_connect] table: Mosaic's own Spine ASID (sent as Ssp-From) and the ODS code
    of the organisation its users work for (the JWT's requesting_organization until sign-in says)."""

    asid: str | None = None
    ods_code: str | None = None


_GP_CONNECT_KEYS = ("asid", "ods_code")


def load_gp_connect_settings(config_file: Path | None = None) -> GpConnectSettings:
    """[gp_connect] from the machine-wide file; a per-user file (`config_file` included) may supply it only
    while the machine file has none (USER_FALLBACK_TABLES: it names Mosaic, not the user)."""
    found = machine_table("gp_connect", "GP Connect settings", config_file, known=_GP_CONNECT_KEYS)
    if found is None:
        return GpConnectSettings()
    config_file, table = found
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(config_file, "must be a non-empty string", key=key)
    if "asid" in table and not re.fullmatch(r"\d{12}", table["asid"]):
        raise ConfigError(config_file, "must be Mosaic's 12-digit Spine ASID", key="asid")
    if "ods_code" in table and not _ODS_CODE.fullmatch(table["ods_code"]):
        raise ConfigError(config_file, ODS_CODE_EXPECTED, key="ods_code")
    ods = table.get("ods_code")
    return GpConnectSettings(asid=table.get("asid"), ods_code=ods.upper() if ods else None)


def _with_gp_connect(practices: list[Practice], settings: GpConnectSettings) -> list[Practice]:
    return [replace(p, consumer_asid=p.consumer_asid or settings.asid, consumer_ods=p.consumer_ods or settings.ods_code)
            if p.adapter == "gp-connect" else p for p in practices]


def load_directory(config_file: Path | None = None) -> list[Practice]:
    """The practices to open: the machine-wide file's, merged with the per-user file's — `config_file` (from
    --config) when given, else the user's own practices.toml. --config replaces the per-user file only."""
    if config_file is not None and not config_file.exists():
        raise ConfigError(config_file, "file not found")
    machine = paths.machine_config_file()
    user = config_file if config_file is not None else paths.user_config_file()
    machine_practices = _parse_file(machine) if machine.exists() else []
    user_tables: list[dict[str, Any]] = []
    if user.exists():
        user_tables = _read_tables(user)
        for name in MACHINE_ONLY_TABLES:  # refused here too, whichever settings the caller goes on to load
            machine_table(name, f"[{name}] settings", config_file)
    return _with_gp_connect(_merge(machine_practices, user_tables, user), load_gp_connect_settings(config_file))


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
            base = _table_of(by_id[pid])
            base.update(table)
            practice = replace(_practice_from_table(base, user_file, index), source=by_id[pid].source)
            merged[merged.index(by_id[pid])] = practice
            by_id[pid] = practice
        else:
            practice = _practice_from_table(table, user_file, index)
            if practice.id in by_id:
                raise ConfigError(user_file, "this id is used twice", practice.id, "id")
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


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot be read: {exc}") from exc


def _read_tables(file: Path) -> list[dict[str, Any]]:
    data = _read_toml(file)
    unknown = set(data) - {"practice", "audit", "identity", "gp_connect", "notify", "policy"}
    if unknown:
        raise ConfigError(file, "unknown top-level key (expected [[practice]] tables and optional [audit], "
                          "[identity], [gp_connect], [notify] and [policy])",
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
    if auth == "private-key-jwt":
        for key in ("token_url", "client_id", "key_id"):
            if key not in table:
                raise fail(key, "needed when auth = \"private-key-jwt\"")
        if table.get("key_alg", "RS384") not in _KEY_ALGS:
            raise fail("key_alg", f"must be one of {', '.join(_KEY_ALGS)}")
    for key in ("key_id", "key_alg", "key_file"):
        if key in table and auth != "private-key-jwt":
            raise fail(key, "only used when auth = \"private-key-jwt\"")
    if "asid" in table and not re.fullmatch(r"\d{12}", table["asid"]):
        raise fail("asid", "must be the 12-digit Spine ASID of the practice's GP Connect endpoint")
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
        key_id=table.get("key_id"), key_file=table.get("key_file"),
        key_alg=table.get("key_alg", "RS384") if auth == "private-key-jwt" else None,
        asid=table.get("asid"),
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
