"""The locality access policy: who may open what, when a reason is needed, and break-glass.

IT deploys the policy as a TOML file of its own, named by the machine-wide practice directory
(`[policy] file = "/etc/mosaic/policy.toml"`) and by nothing else: no environment variable, argument or
per-user file names it or drops it. It must be read-only to the user: on POSIX a policy file (or its
folder) that is group- or other-writable, or owned by the current user when that user is not root, is
refused. On Windows the ProgramData ACLs IT sets are relied on. A malformed policy stops the app with a
message naming the file and line; it never falls open. No policy configured means the behaviour before
policies existed: everything is allowed and no reason is asked for.

    [roles.clinician]
    practices = ["*"]                   # or practice ids
    sections = ["*"]                    # or section names (problems, medications, ...)
    reason_required = true
    reasons = ["Direct care", "Medicines reconciliation"]
    reason_covers_patient = true        # a reason covers that patient at every practice for the session
    research = false                    # true: the research view (needs `study`)
    records = true                      # false: no patient search, no record (an insight-only role)
    insight = false                     # true: locality insight (aggregate figures) for the role's practices
    study = "diabetes-2026"             # research roles: the study whose consent list and key apply

    [studies.diabetes-2026]
    consented = ["9990000034"]          # research consent recorded: shown identified to the study

    [users.jbloggs]                     # by login id
    role = "clinician"
    nhs_number = "9990000018"           # the user's own record, for the self/family rule
    family = "Bloggs"
    postcode = "LS1 4AB"

    [practices.riverside]
    restricted = ["9990000026"]         # open only by break-glass
    notify_restricted = false           # tell restricted patients who opened their record (default: never)

Decisions are made in the core before any request leaves for a backend (see MosaicCore).
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from app.core import nhs_number as nhs
from app.core.model import PatientSummary
from app.core.policy_schema import ANY, TABLE_MODELS, TABLE_WORDS, PolicyFile
from app.core.schema_types import MOSAIC_ERROR, error_key_path, error_message, first_error, printable
from app.core.settings_schema import PolicyTable

Needs = Literal["allowed", "reason", "break-glass", "denied"]

#: letters or digits a break-glass reason needs: "x" or "..." is not a reason. The one rule for every face
#: (the window's break-glass dialog, `mosaic show --break-glass --reason`): `decide` refuses one that fails it.
MIN_BREAK_GLASS_CHARS = 10


def meaningful_length(text: str) -> int:
    """Letters and digits in `text`: what counts towards a written reason."""
    return sum(1 for ch in text if ch.isalnum())


def written_reason_problem(text: str) -> str | None:
    """Why `text` is not (yet) a usable break-glass reason, or None when it is."""
    count = meaningful_length(text)
    if count < MIN_BREAK_GLASS_CHARS:
        return f"Write at least {MIN_BREAK_GLASS_CHARS} letters or digits ({count} so far)."
    if len({ch.casefold() for ch in text if ch.isalnum()}) < 3:
        return "Write the reason in words."
    return None
FLAG_BREAK_GLASS = "break-glass"
FLAG_SELF_OR_FAMILY = "self-or-family"



class PolicyFileError(Exception):
    """The policy cannot be used (malformed, unreadable or writable by the user). The app must stop."""

    def __init__(self, file: Path | str, message: str, line: int | None = None) -> None:
        where = f"{file}, line {line}" if line else str(file)
        super().__init__(printable(f"access policy {where}: {message}"))
        self.file = str(file)
        self.line = line


@dataclass(frozen=True)
class PolicyDecision:
    """What the policy says about one access. `needs` is "allowed" or what is missing."""

    needs: Needs
    reasons: tuple[str, ...] = ()  # the reasons the policy offers, when one is needed
    why: str = ""
    flags: tuple[str, ...] = ()  # "break-glass", "self-or-family": the access is flagged for review
    sections: frozenset[str] | None = None  # sections the role may see (None: all)

    @property
    def allowed(self) -> bool:
        return self.needs == "allowed"

    @classmethod
    def allow(cls, **kwargs: Any) -> PolicyDecision:
        return cls("allowed", **kwargs)


ALLOW_ALL = PolicyDecision.allow()


class PolicyError(PermissionError):
    """An access the policy does not allow as asked: `.needs` says what is missing ("reason",
    "break-glass") or "denied"; `.reasons` are the reasons offered."""

    def __init__(self, decision: PolicyDecision) -> None:
        super().__init__(decision.why)
        self.decision = decision
        self.needs = decision.needs
        self.reasons = decision.reasons


@dataclass(frozen=True)
class Role:
    name: str
    practices: frozenset[str]  # contains ANY for every practice
    sections: frozenset[str]
    reason_required: bool = False
    reasons: tuple[str, ...] = ()
    research: bool = False
    study: str | None = None  # research roles: the study (its consent list and pseudonym key)
    #: a reason given for a patient covers that NHS number at every practice for the session (never
    #: break-glass or self/family: app/core/session_reasons.py); false asks at every access
    reason_covers_patient: bool = True
    #: may search for patients and open records (false: an insight-only role, e.g. a locality lead)
    records: bool = True
    #: may see locality insight: aggregate figures for the role's practices, never a patient (app/insight)
    insight: bool = False

    def covers_practice(self, practice_id: str) -> bool:
        return ANY in self.practices or practice_id in self.practices

    def visible_sections(self) -> frozenset[str] | None:
        return None if ANY in self.sections else self.sections


@dataclass(frozen=True)
class UserProfile:
    login: str
    role: str
    nhs_number: str | None = None
    family: str | None = None
    postcode: str | None = None


@dataclass(frozen=True)
class Study:
    """A research study: patients whose research consent the locality has recorded (by NHS number)."""

    id: str
    consented: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Policy:
    roles: dict[str, Role]
    users: dict[str, UserProfile]
    restricted: dict[str, frozenset[str]] = field(default_factory=dict)  # practice id -> NHS numbers
    source: str = ""
    studies: dict[str, Study] = field(default_factory=dict)
    notify_restricted: frozenset[str] = frozenset()  # practices whose restricted patients are told too

    def withholds_notice(self, number: str) -> bool:
        """Whether the patient with this NHS number must not be told who opened their record: restricted at
        a practice that has not said its restricted patients are told (the default)."""
        return any(number in numbers and pid not in self.notify_restricted for pid, numbers in self.restricted.items())

    def role_of(self, login: str) -> Role | None:
        profile = self.users.get(login)
        return self.roles.get(profile.role) if profile else None

    def study_of(self, login: str) -> Study | None:
        """The study `login` works for when their role is a research role (the research view applies).
        A research role whose study is not defined gets an empty one: the view fails closed, never open."""
        role = self.role_of(login)
        if role is None or not role.research:
            return None
        study = role.study or f"unnamed-{role.name}"
        return self.studies.get(study) or Study(study)

    def practice_decision(self, login: str, practice_id: str) -> PolicyDecision:
        """May `login` send anything at all to this practice (search, resolve, open)?"""
        role = self.role_of(login)
        if role is None:
            return PolicyDecision("denied", why=f"The access policy gives '{login}' no role, so no practice "
                                  "can be searched or opened. Ask your practice administrator.")
        if not role.records:
            return PolicyDecision("denied", why=records_refused(role.name))
        if not role.covers_practice(practice_id):
            return PolicyDecision("denied", why=f"Your role ({role.name}) does not include practice "
                                  f"'{practice_id}' under the access policy.")
        return PolicyDecision.allow(sections=role.visible_sections())

    def records_refusal(self, login: str) -> PolicyDecision | None:
        """The refusal of any search or record for a role without records (records = false), else None (a
        login with no role is refused practice by practice, as before)."""
        role = self.role_of(login)
        return PolicyDecision("denied", why=records_refused(role.name)) if role is not None and not role.records \
            else None

    def insight_decision(self, login: str, practice_id: str | None = None) -> PolicyDecision:
        """May `login` see locality insight (for `practice_id`, when given: a practice outside the role's
        practices is left out of every figure and every refresh)?"""
        role = self.role_of(login)
        if role is None:
            return PolicyDecision("denied", why=f"The access policy gives '{login}' no role, so locality insight "
                                  "is not available. Ask your practice administrator.")
        if not role.insight:
            return PolicyDecision("denied", why=f"Your role ({role.name}) does not include locality insight under "
                                  "the access policy (insight = true). Ask your practice administrator.")
        if practice_id is not None and not role.covers_practice(practice_id):
            return PolicyDecision("denied", why=f"Your role ({role.name}) does not include practice "
                                  f"'{practice_id}' under the access policy.")
        return ALLOW_ALL

    def decide(self, login: str, practice_id: str, patient: PatientSummary | str | None, *,
               purpose: str | None = None, break_glass: bool = False) -> PolicyDecision:
        """The decision for `login` opening `patient` (a summary, or an NHS number) at `practice_id`.
        An unknown patient (None) is denied: restriction and self/family cannot be checked."""
        base = self.practice_decision(login, practice_id)
        if not base.allowed:
            return base
        role = self.role_of(login)
        assert role is not None
        if patient is None:
            return PolicyDecision("denied", why="Under the access policy a record opens only for a patient "
                                  "found by search or NHS number first, so that restrictions can be checked.")
        summary = patient if isinstance(patient, PatientSummary) else None
        number = nhs.normalise((patient.nhs_number or "") if isinstance(patient, PatientSummary) else patient)
        reason = (purpose or "").strip()
        if reason and meaningful_length(reason) == 0:
            reason = ""  # "." or "-" is no reason, whichever face sent it
        flags: list[str] = []
        relative = self._self_or_family(login, number, summary)
        if number and number in self.restricted.get(practice_id, frozenset()):
            problem = written_reason_problem(reason) if reason else None
            if not break_glass or not reason or problem:
                return PolicyDecision("break-glass", reasons=role.reasons,
                                      flags=(FLAG_BREAK_GLASS, *((FLAG_SELF_OR_FAMILY,) if relative else ())),
                                      why="This patient's record is restricted: it opens only by break-glass "
                                          "with a written reason." + (f" {problem}" if problem else ""))
            flags.append(FLAG_BREAK_GLASS)
        if relative:
            if not reason:
                return PolicyDecision("reason", reasons=role.reasons, flags=(FLAG_SELF_OR_FAMILY,),
                                      why="This patient appears to be you or a family member: give a reason "
                                          "for access. The access will be flagged for review.")
            flags.append(FLAG_SELF_OR_FAMILY)
        if role.reason_required and not reason:
            offered = f" Reasons offered: {'; '.join(role.reasons)}." if role.reasons else ""
            return PolicyDecision("reason", reasons=role.reasons,
                                  why=f"Your role ({role.name}) must give a reason for access.{offered}")
        return PolicyDecision.allow(reasons=role.reasons, flags=tuple(flags), sections=role.visible_sections())

    def _self_or_family(self, login: str, number: str | None, summary: PatientSummary | None) -> bool:
        profile = self.users.get(login)
        if profile is None:
            return False
        if profile.nhs_number and number and profile.nhs_number == number:
            return True
        if profile.family and profile.postcode and summary is not None and summary.postcode:
            return (profile.family.casefold() == (summary.family or "").strip().casefold()
                    and _postcode(profile.postcode) == _postcode(summary.postcode))
        return False


def records_refused(role: str) -> str:
    """Why an insight-only role's search or record open is refused, in plain words."""
    return (f"Your role ({role}) gives locality insight only, without access to patient records, under the access "
            "policy: it cannot search for patients or open a record. Ask your practice administrator if you need "
            "records.")


def _postcode(value: str) -> str:
    return re.sub(r"\s+", "", value).upper()


# --- loading -----------------------------------------------------------------------------------------

def policy_file(config_file: Path | None = None) -> Path | None:
    """Where the policy is: `[policy] file` in the machine-wide practice directory, nowhere else (a per-user
    file, `config_file` from --config included, that holds [policy] is refused). None when none is configured."""
    from app.core.config import ConfigError, machine_table

    try:
        found = machine_table("policy", "the access policy setting", config_file)
    except ConfigError as exc:
        raise PolicyFileError(exc.file, str(exc)) from exc
    if found is None or not found[1]:
        return None
    machine, table = found
    try:
        named = PolicyTable.model_validate(table).file  # the schema's [policy] (app/core/settings_schema.py)
    except ValidationError:
        raise PolicyFileError(machine, '[policy] must hold exactly: file = "/path/to/policy.toml"') from None
    path = Path(named)
    return path if path.is_absolute() else machine.parent / path


def load_policy(path: Path | None = None, config_file: Path | None = None) -> Policy | None:
    """The policy in force, or None when none is configured. Raises PolicyFileError (stop the app)."""
    path = path or policy_file(config_file)
    if path is None:
        return None
    if not path.exists():
        raise PolicyFileError(path, "file not found (a configured policy that is missing never falls open)")
    check_not_user_writable(path)
    return parse_policy(_read_text(path), path)


def check_not_user_writable(path: Path) -> None:
    """Refuse a policy the user could change: the file or its folder group/other-writable, or owned by
    the current user when that user is not root (POSIX only)."""
    if sys.platform == "win32":
        return
    euid = os.geteuid()
    for target, what in ((path, "file"), (path.parent, "folder")):
        st = target.stat()
        problem = writable_problem(st.st_mode, st.st_uid, euid, is_dir=what == "folder")
        if problem:
            raise PolicyFileError(path, f"refused: the policy {what} {target} {problem}; the policy must be "
                                  "read-only to users (owned by root or IT, mode 0644)")


def writable_problem(mode: int, owner: int, euid: int, *, is_dir: bool = False) -> str | None:
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not (is_dir and mode & stat.S_ISVTX and owner == 0):
        return "is writable by group or others"
    if owner == euid and euid != 0:
        return "is owned by the current user"
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(path, f"cannot be read: {exc}") from exc


def _read(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(path, exc) from exc


def parse_policy(text: str, path: Path | str = "<policy>") -> Policy:
    """The policy in `text`, checked against its schema (app/core/policy_schema.py). Any fault, whatever kind, is
    a PolicyFileError naming the file and line: the policy never falls open."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(path, exc) from exc

    def fail(message: str, *key_path: str) -> PolicyFileError:
        return PolicyFileError(path, message, _line_of(text, key_path))

    try:
        checked = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(first_error(exc), fail) from None
    studies = {sid: Study(sid, _numbers(study.consented)) for sid, study in checked.studies.items()}
    roles = {name: Role(name, frozenset(role.practices), frozenset(role.sections), role.reason_required,
                        tuple(role.reasons), role.research, role.study, role.reason_covers_patient,
                        role.records, role.insight)
             for name, role in checked.roles.items()}
    users = {login: UserProfile(login, user.role, nhs.normalise(user.nhs_number) if user.nhs_number else None,
                                user.family, user.postcode)
             for login, user in checked.users.items()}
    restricted = {pid: _numbers(practice.restricted) for pid, practice in checked.practices.items()}
    told = frozenset(pid for pid, practice in checked.practices.items() if practice.notify_restricted)
    return Policy(roles, users, restricted, str(path), studies, told)


def _numbers(numbers: list[str]) -> frozenset[str]:
    return frozenset(nhs.normalise(n) for n in numbers)


def _schema_error(error: dict[str, Any], fail: Callable[..., PolicyFileError]) -> PolicyFileError:
    """The schema's first fault in the policy's own words, at its line."""
    where = error_key_path(error)
    kind = where[0] if where else ""
    if error["type"] == "extra_forbidden" and len(where) == 1:
        return fail("unknown top-level table (expected [roles.*], [users.*], [practices.*], [studies.*])", kind)
    if error["type"] == "extra_forbidden" and len(where) == 3 and kind in TABLE_MODELS:
        known = ", ".join(sorted(TABLE_MODELS[kind].model_fields))
        return fail(f"unknown key '{where[2]}' {TABLE_WORDS[kind]} '{where[1]}' (known: {known})", *where)
    if error["type"] == "missing" and kind == "users" and len(where) == 3:
        return fail(f"user '{where[1]}' has no {where[2]}", *where[:2])
    if error["type"] in ("dict_type", "model_type") and len(where) <= 2 and kind in TABLE_MODELS:
        return fail(f"'{kind}' must be written as [{kind}.<name>] tables", kind)
    message = error_message(error)
    if (error.get("ctx") or {}).get("quote_key") and where:
        message = f"'{where[-1]}' {message}"
    elif error["type"] != MOSAIC_ERROR:
        message = f"{'.'.join(where)}: {message}"
    return fail(message, *where)


def _toml_error(path: Path | str, exc: tomllib.TOMLDecodeError) -> PolicyFileError:
    """tomllib says "Invalid value (at line 5, column 2)"; the line goes into the message's place."""
    text = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", text)
    if found is None:
        return PolicyFileError(path, f"not valid TOML: {text}")
    message = text[:found.start()].strip()
    return PolicyFileError(path, f"not valid TOML: {message} (column {found.group(2)})", int(found.group(1)))


def _line_of(text: str, key_path: tuple[str, ...]) -> int | None:
    """The line where the deepest part of `key_path` we can find is written (tomllib keeps no positions)."""
    line: int | None = None
    start = 0
    lines = text.splitlines()
    for depth in range(len(key_path), 0, -1):
        header = ".".join(key_path[:2]) if depth >= 2 else key_path[0]
        for i, raw in enumerate(lines):
            stripped = raw.strip()
            name = stripped.strip("[] ").replace('"', "") if stripped.startswith("[") else ""
            if name == header or (depth == 1 and name.startswith(header + ".")):
                line, start = i + 1, i + 1
                break
        if line is not None:
            break
    if line is not None and len(key_path) >= 3:
        for i in range(start, len(lines)):
            stripped = lines[i].strip()
            if stripped.startswith("["):
                break
            if re.match(rf"{re.escape(key_path[2])}\s*=", stripped):
                return i + 1
    return line
