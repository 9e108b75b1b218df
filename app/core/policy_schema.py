"""The access policy file's schema: every table and key a locality's policy.toml may hold, and its rules.

app/core/policy.py validates through `PolicyFile` and turns the first fault into a PolicyFileError naming the
file and line (it never falls open); `mosaic config schema` writes it out as a JSON Schema for IT's editors.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.core import nhs_number as nhs
from app.core.model import SectionName
from app.core.schema_types import (
    NonEmptyStr,
    StringList,
    TrueOrFalse,
    control_character_problem,
    fault,
    string_list,
)

ANY = "*"
_STUDY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SECTION_NAMES = tuple(s.value for s in SectionName)


def _sections(value: Any) -> list[str]:
    value = string_list(value)
    if not value:  # never "all": an empty list must not widen what a role sees (["*"] says all)
        raise fault('must name at least one section, or ["*"] for all')
    known = set(SECTION_NAMES)
    for name in value:
        if name != ANY and name not in known:
            raise fault(f"unknown section '{name}' (known: {', '.join(sorted(known))})")
    return value


Sections = Annotated[list[str], Field(min_length=1, json_schema_extra={"items": {"enum": [ANY, *SECTION_NAMES]}}),
                     BeforeValidator(_sections)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleRules(_Table):
    """[roles.<name>]: what users with this role may open."""

    practices: StringList = Field([], description='Practice ids the role may search and open, or ["*"] for all.')
    sections: Sections = Field([ANY], description='Record sections the role sees, or ["*"] (the default) for all.')
    reason_required: TrueOrFalse = Field(False, description="A reason for access is asked for.")
    reasons: StringList = Field([], description="The reasons offered (the user may also write their own).")
    research: TrueOrFalse = Field(False, description="The pseudonymised research view (needs `study`).")
    study: NonEmptyStr | None = Field(None, description="Research roles: the study (a [studies.<id>] table).")
    reason_covers_patient: TrueOrFalse = Field(True, description=(
        "A reason given for a patient covers that NHS number at every practice for the session (false: asked at "
        "every access)."))
    records: TrueOrFalse = Field(True, description=(
        "The role may search for patients and open records (false: no search and no record, e.g. a locality "
        "lead who needs only the insight figures)."))
    insight: TrueOrFalse = Field(False, description=(
        "The role may see locality insight (aggregate activity, capacity and demand of its practices: no "
        "patient is shown) and run `mosaic insight`."))


class UserEntry(_Table):
    """[users.<login>]: a user, by the identity provider's login id (else the OS login)."""

    role: NonEmptyStr = Field(description="A role a [roles.<name>] table defines.")
    nhs_number: NonEmptyStr | None = Field(None, description="The user's own NHS number (self/family rule).")
    family: NonEmptyStr | None = Field(None, description="The user's surname: with postcode, family members.")
    postcode: NonEmptyStr | None = Field(None, description="The user's postcode: with family, family members.")


class PracticeRules(_Table):
    """[practices.<id>]: a practice's restricted patients."""

    restricted: StringList = Field([], description="NHS numbers opened only by break-glass.")
    notify_restricted: TrueOrFalse = Field(False, description=(
        "Tell these restricted patients who opened their record (default: never)."))


class StudyRules(_Table):
    """[studies.<id>]: a research study."""

    consented: StringList = Field([], description="NHS numbers with research consent recorded for this study.")


class PolicyFile(_Table):
    """A Mosaic locality access policy (policy.toml), named by [policy] file in the machine-wide practice
    directory. Read-only to users; a malformed policy stops Mosaic."""

    model_config = ConfigDict(extra="forbid", title="Mosaic access policy")

    studies: dict[str, StudyRules] = Field({}, description="Research studies, by id.")
    roles: dict[str, RoleRules] = Field({}, description="Roles, by name.")
    users: dict[str, UserEntry] = Field({}, description="Users, by login id.")
    practices: dict[str, PracticeRules] = Field({}, description="Per-practice rules, by practice id.")

    @model_validator(mode="after")
    def _references(self) -> PolicyFile:
        """What one table says about another, in the order the policy has always been checked."""
        for kind, tables in (("roles", self.roles), ("users", self.users), ("practices", self.practices)):
            for name in tables:
                problem = control_character_problem(name)
                if problem:  # names are shown by mosaic config show and in messages
                    raise fault(f"the name of [{kind}.*] {problem}", path=(kind, name))
        for sid, study in self.studies.items():
            if not _STUDY_ID.fullmatch(sid):
                raise fault(f"study id '{sid}' must be lower-case letters, digits, - and _", path=("studies", sid))
            _valid_numbers(study.consented, "studies", sid, "consented")
        for name, role in self.roles.items():
            _check_role_study(name, role, self.studies)
        for login, user in self.users.items():
            if user.role not in self.roles:
                raise fault(f"user '{login}' has role '{user.role}', which no [roles.*] table defines",
                            path=("users", login, "role"))
            if user.nhs_number is not None and not nhs.is_valid(nhs.normalise(user.nhs_number)):
                raise fault(f"nhs_number for '{login}' is not a valid NHS number",
                            path=("users", login, "nhs_number"))
        for pid, practice in self.practices.items():
            _valid_numbers(practice.restricted, "practices", pid, "restricted")
        return self


_SINGULAR = {"practices": "practice", "studies": "study"}


def _valid_numbers(numbers: list[str], kind: str, name: str, key: str) -> None:
    for n in numbers:
        if not nhs.is_valid(nhs.normalise(n)):
            raise fault(f"'{n}' in {_SINGULAR[kind]} '{name}' {key} is not a valid NHS number",
                        path=(kind, name, key))


def _check_role_study(name: str, role: RoleRules, studies: dict[str, StudyRules]) -> None:
    """A research role must name a study the policy defines; `study` means nothing without `research`; a research
    role searches and opens records, so it cannot be one without them."""
    if role.research and not role.records:
        raise fault(f"research role '{name}' searches and opens records: remove records = false or research = true",
                    path=("roles", name, "records"))
    if role.research:
        if role.study is None:
            raise fault(f"research role '{name}' must name its study (study = \"<id>\", with a [studies.<id>] "
                        "table)", path=("roles", name, "research"))
        if role.study not in studies:
            raise fault(f"role '{name}' names study '{role.study}', which no [studies.*] table defines",
                        path=("roles", name, "study"))
    elif role.study is not None:
        raise fault(f"'study' is only for research roles: add research = true to role '{name}' or remove it",
                    path=("roles", name, "study"))


#: how an unknown key's table is named in the message, per top-level table
TABLE_WORDS = {"roles": "in role", "users": "for user", "practices": "for practice", "studies": "for study"}
TABLE_MODELS: dict[str, type[BaseModel]] = {"roles": RoleRules, "users": UserEntry, "practices": PracticeRules,
                                            "studies": StudyRules}
