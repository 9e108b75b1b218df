"""Checks of the files Mosaic reads and writes: the machine-wide and per-user practice directories, the access
policy, and the audit journal's folder and schema. Nothing here writes anything but one empty temporary file (to
prove the journal folder takes writes), removed at once."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.core import paths
from app.core.config import (
    AuditSettings,
    ConfigError,
    IdentitySettings,
    load_audit_settings,
    load_directory,
    load_identity_settings,
    load_notify_settings,
)
from app.core.doctor.result import CheckResult
from app.core.model import Practice


@dataclass(frozen=True)
class Settings:
    """The configuration as Mosaic would load it, or the error that stops it (naming the file)."""

    practices: list[Practice]
    audit: AuditSettings
    identity: IdentitySettings
    error: ConfigError | None = None


def load_settings(config_file: Path | None) -> Settings:
    try:
        practices = load_directory(config_file)
        audit = load_audit_settings(config_file)
        identity = load_identity_settings(config_file)
        load_notify_settings(config_file)
    except ConfigError as exc:
        return Settings([], AuditSettings(), IdentitySettings(), exc)
    return Settings(practices, audit, identity)


def _not_roots(path: Path, file_mode: str = "0644") -> tuple[str, str] | None:
    """Why `path` (or a folder above it, or a link on the way) can be changed by someone other than root, and the
    command that fixes it; None when it is root's alone (app/core/root_owned.py; POSIX only)."""
    from app.core.root_owned import root_only_problem

    unsafe = root_only_problem(path)
    return None if unsafe is None else (str(unsafe), unsafe.action(file_mode))


def machine_file(settings: Settings) -> CheckResult:
    from app.core import group_policy

    name, path = "machine-file", paths.machine_config_file()
    title = "Machine-wide settings"
    unusable = group_policy.read_group_policy().problems
    if unusable:  # nothing machine-wide was read past it (the folder may not be known), and Mosaic does not start
        return CheckResult.fail(name, title, f"Not read: Group Policy {'; '.join(unusable)}. Mosaic does not start "
                                "until it is corrected (it never falls back to the default folder).",
                                "Correct or remove that value (Group Policy editor: Computer Configuration > "
                                "Administrative Templates > Mosaic; README: Group Policy), then gpupdate /force.")
    if not path.exists():
        return CheckResult.warn(name, title, f"There is no machine-wide file at {path}: only the user's own "
                                "practices are used, with no sign-in service, central audit store or access policy.",
                                "If IT manages this PC, deploy the machine-wide practices.toml there "
                                "(README: Configuration).")
    unsafe = _not_roots(path)
    if unsafe:
        return CheckResult.fail(name, title, f"Not safe: {unsafe[0]}. Whoever can change it can send practice "
                                "secrets and patient data to another server.",
                                f"Make it root's alone: {unsafe[1]} (the file and every folder above it owned by "
                                "root, not writable by group or others).")
    if settings.error is not None and Path(settings.error.file) == path:
        return CheckResult.fail(name, title, str(settings.error), f"Correct {path}; Mosaic does not start until then.")
    for practice in settings.practices:
        key = Path(practice.key_file).expanduser() if practice.key_file and practice.source == str(path) else None
        unsafe = _not_roots(key, "go-w") if key is not None and key.exists() else None
        if unsafe:
            return CheckResult.fail(name, title, f"Not safe: the key file of practice '{practice.id}': {unsafe[0]}. "
                                    "Whoever can change it can sign in as the practice with a key of their own.",
                                    f"Make it root's alone: {unsafe[1]} (readable only by those who run Mosaic).")
    if settings.error is not None:  # another file's error stopped the load: this one's practices were not counted
        return CheckResult.ok(name, title, f"{path}: root's alone; not checked further, because "
                              f"{settings.error.file} has an error (see that check).")
    machine = [p for p in settings.practices if p.source == str(path)]
    return CheckResult.ok(name, title, f"{path}: valid, root's alone (and every folder above it); {len(machine)} "
                          "practice(s).")


def user_file(settings: Settings, config_file: Path | None) -> CheckResult:
    path = config_file if config_file is not None else paths.user_config_file()
    name, title = "user-file", "Per-user settings" if config_file is None else "--config file"
    if not path.exists():
        if config_file is not None:
            return CheckResult.fail(name, title, f"{path}: file not found.", "Name an existing file with --config.")
        return CheckResult.ok(name, title, f"No per-user file at {path} (optional).")
    if sys.platform != "win32":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            return CheckResult.fail(name, title, f"{path} can be changed by other accounts (mode {mode:04o}): they "
                                    "could point a practice, and the secret sent to it, at another server.",
                                    f"chmod go-w {path}")
    if settings.error is not None and Path(settings.error.file) != paths.machine_config_file():
        return CheckResult.fail(name, title, str(settings.error), f"Correct {settings.error.file}.")
    if settings.error is not None:
        return CheckResult.ok(name, title, f"{path}: not read (the machine-wide file comes first and has an error).")
    own = [p for p in settings.practices if p.source == str(path)]
    return CheckResult.ok(name, title, f"{path}: valid; {len(own)} practice(s) of its own.")


def policy(config_file: Path | None) -> CheckResult:
    from app.core.policy import PolicyFileError, load_policy, policy_file

    name, title = "policy", "Access policy"
    try:
        where = policy_file(config_file)
        unsafe = _not_roots(where) if where is not None and where.exists() else None
        if unsafe:  # before it is read: load_policy's own check refuses only what the current user could change
            return CheckResult.fail(name, title, f"Not safe: {unsafe[0]}. Whoever can change it decides who may "
                                    "open which records. Mosaic would read it as it is.",
                                    f"Make it root's alone: {unsafe[1]} (the file and every folder above it owned "
                                    "by root, not writable by group or others).")
        loaded = load_policy(config_file=config_file)
    except PolicyFileError as exc:
        message = " ".join(str(exc).split())
        action = (f"Make it read-only to users: chown root:root {exc.file} && chmod 0644 {exc.file} (its folder "
                  "not writable by others)." if "refused:" in message else
                  f"Correct {exc.file}" + (f" at line {exc.line}" if exc.line else "") + ".")
        return CheckResult.fail(name, title, f"{message}. Mosaic does not start while it is so.", action)
    if loaded is None:
        return CheckResult.ok(name, title, "No access policy is configured: every user may open every configured "
                              "practice, and no reason is asked.")
    restricted = sum(len(numbers) for numbers in loaded.restricted.values())
    return CheckResult.ok(name, title, f"{where}: loads; {len(loaded.roles)} role(s), {len(loaded.users)} user(s), "
                          f"{len(loaded.studies)} stud(y/ies), {restricted} restricted patient(s).")


def journal_folder() -> CheckResult:
    from app.core.audit.journal import default_path

    name, title = "journal-folder", "Journal folder"
    journal = default_path()
    folder = journal.parent
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            return CheckResult.fail(name, title, f"{folder} does not exist and cannot be made ({parent} is not "
                                    "writable by this account).", "Give this account a writable home folder, or "
                                    "ask IT.")
        return CheckResult.ok(name, title, f"{folder} is not made yet: Mosaic makes it (mode 0700) at first use.")
    problems = []
    if sys.platform != "win32":
        st = folder.stat()
        if st.st_uid != os.geteuid():
            problems.append(f"it belongs to another account (uid {st.st_uid})")
        elif stat.S_IMODE(st.st_mode) & 0o077:
            problems.append(f"other accounts may open it (mode {stat.S_IMODE(st.st_mode):04o}, not 0700)")
        if journal.exists() and stat.S_IMODE(journal.stat().st_mode) & 0o077:
            problems.append(f"the journal {journal} is readable by others (mode "
                            f"{stat.S_IMODE(journal.stat().st_mode):04o}, not 0600)")
    try:
        handle, probe = tempfile.mkstemp(prefix=".mosaic-doctor-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        problems.append(f"it cannot be written ({exc.strerror or exc})")
    if problems:
        return CheckResult.fail(name, title, f"{folder}: " + "; ".join(problems) + ".",
                                f"chown $USER {folder} && chmod 0700 {folder}" + (f" && chmod 0600 {journal}"
                                                                                   if journal.exists() else "")
                                + " (as the user who runs Mosaic; Mosaic also tightens a folder of its own "
                                "when it next opens the journal).")
    return CheckResult.ok(name, title, f"{folder}: private to this account and writable.")


def journal_schema() -> CheckResult:
    from app import installed_version
    from app.core.audit import migrations
    from app.core.audit.journal import default_path
    from app.core.audit.schema_state import journal_schema as schema_of

    name, title = "journal-schema", "Journal schema"
    found = schema_of(default_path())
    where = found.path
    if found.state == "absent":
        return CheckResult.ok(name, title, f"No journal yet at {where}: made at first use with schema "
                              f"{migrations.HEAD}.")
    if found.state == "current":
        return CheckResult.ok(name, title, f"{where}: schema {found.version}, this Mosaic's.")
    if found.state == "older":
        return CheckResult.ok(name, title, f"{where}: schema {found.version}; this Mosaic upgrades it to "
                              f"{migrations.HEAD} when it next opens it (every entry kept).")
    if found.state == "newer":
        return CheckResult.fail(name, title, f"{where} was written by a newer Mosaic (schema {found.version}; this "
                                f"one, {installed_version()}, knows schemas up to {migrations.HEAD}): Mosaic refuses "
                                "to open it, so it shows no patient.", "Update Mosaic on this PC to the version "
                                "that wrote the journal (never delete the journal: it is the audit record).")
    return CheckResult.fail(name, title, f"{where} cannot be read as a journal: {found.problem}.",
                            "Keep the file (it is the audit record) and ask IT: mosaic audit verify says more.")
