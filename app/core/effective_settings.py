"""Every setting in force on this computer and where each came from (machine file, Group Policy, user file,
--config file, default): what `mosaic config show` prints.

Secrets are never read into the result: for each secret Mosaic would need, only where it would come from (the
environment variable's name, the keyring entry) and whether it is there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from app.core import group_policy, paths
from app.core.config import (
    load_audit_settings,
    load_directory,
    load_gp_connect_settings,
    load_identity_settings,
    load_insight_store_url,
    load_notify_settings,
    machine_table,
    practice_table,
    read_toml,
)
from app.core.idle_lock_setting import effective_idle_lock
from app.core.model import Practice
from app.core.schema_types import redacted_url
from app.core.secrets import KEYRING_SERVICE, env_name
from app.core.setting_source import (
    DEFAULT,
    FIXED_FOR_OS,
    GROUP_POLICY,
    MACHINE_FILE,
    MOSAIC_HOME,
    PLATFORM,
    user_source,
)
from app.core.settings_schema import AuditTable, GpConnectTable, IdentityTable, InsightTable, NotifyTable

Setting = dict[str, Any]


#: the keys whose value is a URL: shown only through redacted_url (no password, no query string)
URL_KEYS = frozenset({"base_url", "token_url", "issuer", "central_url", "store_url"})


def setting(value: Any, source: str, where: str | Path | None = None) -> Setting:
    return {"value": value, "source": source, "where": str(where) if where is not None else None}


def _shown(key: str, value: Any) -> Any:
    return redacted_url(value) if key in URL_KEYS and isinstance(value, str) else value


def effective_settings(config_file: Path | None = None) -> dict[str, Any]:
    """Everything in force, as plain data (JSON-ready). Raises ConfigError or PolicyFileError like a start would."""
    practices = load_directory(config_file)
    identity = load_identity_settings(config_file)
    audit = load_audit_settings(config_file)
    notify = load_notify_settings(config_file)
    insight = SimpleNamespace(store_url=load_insight_store_url(config_file))
    result: dict[str, Any] = {
        "folders": _folders(config_file),
        "practices": [_practice(p, config_file) for p in practices],
        "identity": _table("identity", IdentityTable, identity, config_file, skip=("idle_lock_minutes",)),
        "idle_lock_minutes": _idle_lock(config_file),
        "gp_connect": _table("gp_connect", GpConnectTable, load_gp_connect_settings(config_file), config_file),
        "audit": _table("audit", AuditTable, audit, config_file),
        "notify": _table("notify", NotifyTable, notify, config_file),
        "insight": _table("insight", InsightTable, insight, config_file),
        "policy": _policy(config_file),
    }
    studies = [s["id"] for s in (result["policy"] or {}).get("studies", [])]
    result["secrets"] = _secrets(practices, bool(audit.central_url), notify.rule != "never", studies,
                                 insight=bool(insight.store_url and urlsplit(insight.store_url).username))
    return result


# --- folders --------------------------------------------------------------------------------------------------

def _folders(config_file: Path | None) -> dict[str, Setting]:
    policy = group_policy.read_group_policy()
    if sys.platform == "win32" and policy.machine_folder:  # pragma: no cover - Windows only
        machine = setting(str(paths.MACHINE_DIR), GROUP_POLICY,
                          group_policy.registry_name(group_policy.MACHINE_FOLDER_VALUE))
    else:
        machine = setting(str(paths.MACHINE_DIR), FIXED_FOR_OS)
    home = paths.home()
    per_user = MOSAIC_HOME if home is not None else PLATFORM
    user_file = config_file if config_file is not None else paths.user_config_file()
    machine_file = paths.machine_config_file()
    return {
        "machine": machine,
        "machine_file": {**setting(str(machine_file), machine["source"], machine["where"]),
                         "exists": machine_file.exists()},
        "user_file": {**setting(str(user_file), user_source(config_file)), "exists": user_file.exists()},
        "user_config": setting(str(paths.user_config_dir()), per_user),
        "data": setting(str(paths.user_data_dir()), per_user),
        "logs": setting(str(paths.user_log_dir()), per_user),
    }


# --- practices ------------------------------------------------------------------------------------------------

def _raw_practices(file: Path) -> dict[str, dict[str, Any]]:
    if not file.exists():
        return {}
    tables = read_toml(file).get("practice", [])
    return {t["id"]: t for t in tables if isinstance(t, dict) and isinstance(t.get("id"), str)}


def _practice(practice: Practice, config_file: Path | None) -> dict[str, Any]:
    machine_file = paths.machine_config_file()
    user_file = config_file if config_file is not None else paths.user_config_file()
    in_machine = _raw_practices(machine_file).get(practice.id, {})
    in_user = _raw_practices(user_file).get(practice.id, {})
    settings: dict[str, Setting] = {}
    for key, value in practice_table(practice).items():
        value = _shown(key, value)
        if key in in_user and not (key == "id" and in_machine):
            settings[key] = setting(value, user_source(config_file), user_file)
        elif key in in_machine:
            settings[key] = setting(value, MACHINE_FILE, machine_file)
        else:
            settings[key] = setting(value, DEFAULT)
    return {"id": practice.id, "defined_in": practice.source, "settings": settings}


# --- machine tables -------------------------------------------------------------------------------------------

def _table(name: str, model: type[BaseModel], loaded: object, config_file: Path | None,
           skip: tuple[str, ...] = ()) -> dict[str, Setting]:
    """Each key of the table [name] as loaded (normalised, defaults filled), with the file that set it."""
    found = machine_table(name, f"[{name}] settings", config_file)
    source, table = found if found is not None else (None, {})
    label = MACHINE_FILE if source == paths.machine_config_file() else user_source(config_file)
    out: dict[str, Setting] = {}
    for key in model.model_fields:
        if key in skip:
            continue
        value = getattr(loaded, key)
        value = _shown(key, list(value) if isinstance(value, tuple) else value)
        out[key] = setting(value, label, source) if key in table else setting(value, DEFAULT)
    return out


def _idle_lock(config_file: Path | None) -> Setting:
    found = machine_table("identity", "identity settings", config_file)
    machine = None
    if found is not None and "idle_lock_minutes" in found[1]:
        machine = (found[0], float(found[1]["idle_lock_minutes"]))
    idle = effective_idle_lock(machine, config_file)
    result = setting(idle.minutes, idle.source, idle.where)
    if idle.note:
        result["note"] = idle.note
    return result


# --- the access policy ----------------------------------------------------------------------------------------

def _policy(config_file: Path | None) -> dict[str, Any] | None:
    """The policy file and its key settings: roles and what they may do, counts of users and of restricted
    patients per practice (never an NHS number or a login)."""
    from app.core.policy import load_policy, policy_file

    path = policy_file(config_file)
    if path is None:
        return None
    policy = load_policy(path)
    assert policy is not None
    return {
        "file": setting(str(path), MACHINE_FILE, paths.machine_config_file()),
        "roles": {name: {"practices": sorted(r.practices), "sections": sorted(r.sections),
                         "reason_required": r.reason_required, "reasons": list(r.reasons),
                         "reason_covers_patient": r.reason_covers_patient, "research": r.research, "study": r.study,
                         "records": r.records, "insight": r.insight}
                  for name, r in sorted(policy.roles.items())},
        "users": len(policy.users),
        "studies": [{"id": s.id, "consented": len(s.consented)} for s in policy.studies.values()],
        "restricted": {pid: len(numbers) for pid, numbers in sorted(policy.restricted.items())},
        "notify_restricted": sorted(policy.notify_restricted),
    }


# --- secrets: where from, and whether there; never the value ----------------------------------------------------

def _secrets(practices: list[Practice], central: bool, notify: bool, studies: list[str], *,
             insight: bool = False) -> list[dict[str, Any]]:
    from app.core.audit.keys import ENV_KEY, KEY_USER
    from app.core.sessions import needs_secret

    wanted = [(f"practice {p.id}", p.id) for p in practices if needs_secret(p)]
    wanted += [("central audit store", "central")] if central else []
    wanted += [("GOV.UK Notify API key", "notify")] if notify else []
    wanted += [("insight store", "insight")] if insight else []
    wanted += [(f"study {s} pseudonym key", f"study-{s}") for s in studies]
    keyring = _KeyringPresence()
    out = [_secret(what, env_name(name), name, keyring) for what, name in wanted]
    for p in practices:
        if p.key_file:
            out.append({"for": f"practice {p.id} private key", "file": p.key_file,
                        "present": Path(p.key_file).expanduser().is_file()})
    journal = _secret("audit journal key", ENV_KEY, None, keyring)
    journal["keyring"] = f"service {KEYRING_SERVICE}, user {KEY_USER}<journal id>"
    out.append(journal)
    return out


def _secret(what: str, variable: str, keyring_user: str | None, keyring: _KeyringPresence) -> dict[str, Any]:
    entry: dict[str, Any] = {"for": what, "environment": variable, "environment_set": bool(os.environ.get(variable))}
    if keyring_user is not None:
        entry["keyring"] = f"service {KEYRING_SERVICE}, user {keyring_user}"
        entry.update(keyring.holds(keyring_user))
    return entry


#: how long one keyring read may take: doctor's bound on its own keyring check (app/core/doctor/run.py)
KEYRING_TIMEOUT_S = 10.0


class _KeyringPresence:
    """Whether the keyring holds an entry, each read bounded as doctor bounds its keyring check (a daemon thread,
    KEYRING_TIMEOUT_S): a locked keyring whose unlock prompt nobody answers cannot hang `mosaic config show`.
    The keyring library can only hand the value over (get_password; get_credential holds it too): it is compared
    with None in the reading thread and dropped there, never returned, kept or shown. After one read that did
    not answer, the keyring is not asked again (each would wait as long, and leave another thread behind)."""

    def __init__(self) -> None:
        self.silent: str | None = None

    def holds(self, user: str) -> dict[str, Any]:
        from app.core.doctor.bounded import within

        if self.silent is not None:
            return {"keyring_set": None, "keyring_error": "TimeoutError", "keyring_problem": self.silent}
        try:
            return {"keyring_set": within(lambda: _present(user), KEYRING_TIMEOUT_S)}
        except TimeoutError:
            self.silent = f"the keyring did not answer within {KEYRING_TIMEOUT_S:g} s"
            return {"keyring_set": None, "keyring_error": "TimeoutError", "keyring_problem": self.silent}
        except Exception as exc:  # keyring backends raise many types: locked, no D-Bus, no backend
            return {"keyring_set": None, "keyring_error": type(exc).__name__}


def _present(user: str) -> bool:
    import keyring

    return keyring.get_password(KEYRING_SERVICE, user) is not None
