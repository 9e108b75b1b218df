"""The practice directory's schema: one declaration of every table and key the machine-wide and per-user
practices.toml may hold, what each means, and the rules each value follows.

app/core/config.py validates through these models (its messages still name the file, the practice and the
key); `mosaic config schema` turns them into a JSON Schema for IT's editors and the Group Policy template
(app/core/schema_export.py). Which file may hold which table is config.py's to decide: the machine-only
tables are listed in MACHINE_ONLY_TABLES, and `[lock]` is the per-user file's only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.core.schema_types import (
    NonEmptyStr,
    WebUrl,
    control_character_problem,
    fault,
    number_between,
    one_of,
    positive_number,
    string_check,
    url_problem,
)
from app.core.secrets import reserved_secret_problem

AUTH_KINDS = ("none", "basic", "bearer", "client-credentials", "private-key-jwt")
KEY_ALGS = ("RS384", "ES384")
NOTIFY_RULES = ("every", "cross-practice", "never")
NOTIFY_DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"
ODS_CODE_EXPECTED = 'must be an ODS code such as "Y12345"'
DEFAULT_IDLE_LOCK_MINUTES = 10.0
DEFAULT_COLOUR = "#505a5f"

# matched with fullmatch (`$` alone would take "p1\n"); the ^...$ text is also the JSON Schema's pattern, where
# ECMAScript's `$` (no multiline flag) ends the string
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ODS_CODE = re.compile(r"[A-Za-z0-9]{3,10}")
_ASID = re.compile(r"\d{12}")


def _ods(value: str) -> str | None:
    return None if _ODS_CODE.fullmatch(value) else ODS_CODE_EXPECTED


def _pattern(regex: str) -> Any:
    """What editors check a string against (Mosaic's own check, with its words, is the validator)."""
    return Field(json_schema_extra={"pattern": regex})


def _practice_id(value: str) -> str | None:
    if not _ID.fullmatch(value):
        return "must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit"
    return reserved_secret_problem(value)


IdleLockMinutes = Annotated[float, Field(gt=0),
                            BeforeValidator(positive_number("must be a positive number of minutes"))]
#: a practice's bounds: a request is never waited on for ever (doctor's bound is timeout*2+1), a size never overflows
TIMEOUT_RANGE_S = (1.0, 300.0)
MAX_RESPONSE_RANGE_MB = (1.0, 1024.0)
TimeoutSeconds = Annotated[float, Field(ge=TIMEOUT_RANGE_S[0], le=TIMEOUT_RANGE_S[1]),
                           BeforeValidator(number_between(*TIMEOUT_RANGE_S, "seconds"))]
ResponseMegabytes = Annotated[float, Field(ge=MAX_RESPONSE_RANGE_MB[0], le=MAX_RESPONSE_RANGE_MB[1]),
                              BeforeValidator(number_between(*MAX_RESPONSE_RANGE_MB, "MB"))]
OdsCode = Annotated[str, _pattern(r"^[A-Za-z0-9]{3,10}$"), BeforeValidator(string_check(_ods))]
PracticeId = Annotated[str, _pattern(_ID.pattern), BeforeValidator(string_check(_practice_id))]
PracticeAsid = Annotated[str, _pattern(r"^\d{12}$"), BeforeValidator(string_check(
    lambda v: None if _ASID.fullmatch(v) else "must be the 12-digit Spine ASID of the practice's GP Connect "
    "endpoint"))]
MosaicAsid = Annotated[str, _pattern(r"^\d{12}$"), BeforeValidator(string_check(
    lambda v: None if _ASID.fullmatch(v) else "must be Mosaic's 12-digit Spine ASID"))]
Colour = Annotated[str, _pattern(_COLOUR.pattern), BeforeValidator(string_check(
    lambda v: None if _COLOUR.fullmatch(v) else 'must be a #rrggbb colour, e.g. "#1d70b8"'))]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PracticeEntry(_Table):
    """One [[practice]]: a GP practice's server and how Mosaic signs in to it. A per-user file may add
    practices of its own and, for a practice the machine-wide file defines, change only `name`, `colour` and
    `username`."""

    model_config = ConfigDict(extra="forbid", title="[[practice]]")

    id: PracticeId = Field(description=(
        "Short and unique: 1-32 lower-case letters, digits, - and _, starting with a letter or digit."))
    name: NonEmptyStr = Field(description="The practice's name as users see it.")
    ods_code: NonEmptyStr = Field(description="The practice's ODS code, e.g. Y01234.")
    adapter: NonEmptyStr = Field(description=(
        "fhir-r4, gp-connect, or another installed adapter (entry point group mosaic.adapters)."))
    base_url: WebUrl = Field(description=(
        "The practice's server. https, except to this machine (127.0.0.1, localhost)."))
    auth: Annotated[Literal["none", "basic", "bearer", "client-credentials", "private-key-jwt"],
                    BeforeValidator(one_of(AUTH_KINDS))] = Field("none", description=(
                        "How Mosaic signs in to the server. The secret is never in this file: MOSAIC_SECRET_<ID> "
                        "or the OS keyring (service mosaic, user = practice id)."))
    username: NonEmptyStr | None = Field(None, description="auth = basic: the user name.")
    token_url: WebUrl | None = Field(None, description="client-credentials, private-key-jwt: the token endpoint.")
    client_id: NonEmptyStr | None = Field(None, description="client-credentials, private-key-jwt: the client id.")
    scope: NonEmptyStr | None = Field(None, description="client-credentials: the scope asked for (optional).")
    key_id: NonEmptyStr | None = Field(None, description="private-key-jwt (SMART Backend Services): the key's kid.")
    key_alg: Annotated[Literal["RS384", "ES384"], BeforeValidator(one_of(KEY_ALGS))] | None = Field(
        None, description="private-key-jwt: RS384 (the default) or ES384.")
    key_file: NonEmptyStr | None = Field(None, description=(
        "private-key-jwt: a PEM key file only the user can read (a machine-wide practice's; else the keyring)."))
    asid: PracticeAsid | None = Field(
        None, description="gp-connect: the practice's Spine ASID (12 digits).")
    colour: Colour = Field(
        DEFAULT_COLOUR, description="The practice's colour in the window, #rrggbb.")
    timeout: TimeoutSeconds = Field(15.0, description="Seconds per request, 1 to 300.")
    max_response_mb: ResponseMegabytes = Field(16.0, description="A larger reply is refused (MB), 1 to 1024.")

    @model_validator(mode="after")
    def _auth_needs(self) -> PracticeEntry:
        needs = {"basic": ("username",), "client-credentials": ("token_url", "client_id"),
                 "private-key-jwt": ("token_url", "client_id", "key_id")}
        for key in needs.get(self.auth, ()):
            if getattr(self, key) is None:
                raise fault(f"needed when auth = \"{self.auth}\"", key=key)
        if self.auth != "private-key-jwt":
            for key in ("key_id", "key_alg", "key_file"):
                if getattr(self, key) is not None:
                    raise fault("only used when auth = \"private-key-jwt\"", key=key)
        return self


class IdentityTable(_Table):
    """[identity], machine-wide file only: the OpenID Connect provider users sign in with (NHS CIS2 in
    production), and the idle lock."""

    model_config = ConfigDict(extra="forbid", title="[identity]")

    issuer: WebUrl | None = Field(None, description="The provider's issuer URL (https). Goes with client_id.")
    client_id: NonEmptyStr | None = Field(None, description="Mosaic's client id at the provider. Goes with issuer.")
    scopes: Annotated[list[str], BeforeValidator(lambda v: _scopes(v))] = Field(
        ["openid", "profile"], description='Scopes asked for; must include "openid" (a list, or one string).')
    idle_lock_minutes: IdleLockMinutes = Field(
        DEFAULT_IDLE_LOCK_MINUTES, description=(
            "Minutes without input after which the window locks and hides every patient until the user signs "
            "in again. Group Policy (IdleLockMinutes) overrides it; a user's own file may only make it shorter."))

    @model_validator(mode="after")
    def _issuer_with_client(self) -> IdentityTable:
        if (self.issuer is None) != (self.client_id is None):
            raise fault("issuer and client_id go together", key="client_id" if self.issuer else "issuer")
        return self


def _scopes(value: object) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value) \
            or "openid" not in value:
        raise fault('must list scopes including "openid", e.g. "openid profile"')
    for scope in value:
        problem = control_character_problem(scope)
        if problem:
            raise fault(problem)
    return value


#: query keys a libpq URL could carry a password in, or name a file of passwords with (sslkey, sslcert and
#: sslrootcert name certificate files, which a mutual-TLS store needs; their keys are the OS's to protect)
CENTRAL_URL_SECRET_KEYS = ("password", "sslpassword", "passfile")


def _central_url_problem(value: str, secret: str = "central") -> str | None:
    """The workstation's login may be named (postgresql+psycopg://mosaic_ws@host/db); its password never: the
    machine-wide file is readable by every user. `secret`: the Mosaic secret that holds the password."""
    password_words = (f"must not contain a password; set MOSAIC_SECRET_{secret.upper()} or use "
                      f"`mosaic credentials set {secret}`")
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be a database URL such as \"postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit\""
    if "@" in parts.netloc and ":" in parts.netloc.rsplit("@", 1)[0]:
        return password_words
    keys = {key.strip().lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    found = sorted(keys & set(CENTRAL_URL_SECRET_KEYS))
    if found:
        return f"{password_words} (not as ?{found[0]}=)"
    return None


def _checked_database_url(value: object, example: str, secret: str, schemes: tuple[str, ...] = ()) -> str:
    """A database URL with no control character and no password (the one held in Mosaic secret `secret`)."""
    if not isinstance(value, str) or not value.strip() or (schemes and not value.lower().startswith(schemes)):
        raise fault(example)
    problem = control_character_problem(value) or _central_url_problem(value, secret)
    if problem:
        raise fault(problem)
    return value


def _database_url(value: object) -> str:
    return _checked_database_url(
        value, "must be a database URL such as \"postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit\"",
        "central")


class AuditTable(_Table):
    """[audit], machine-wide file only: where every look at patient data is also recorded."""

    model_config = ConfigDict(extra="forbid", title="[audit]")

    central_url: Annotated[str, BeforeValidator(_database_url)] | None = Field(None, description=(
        "The locality-wide PostgreSQL audit store, without a password (MOSAIC_SECRET_CENTRAL or "
        "`mosaic credentials set central`)."))


def _insight_url(value: object) -> str:
    return _checked_database_url(
        value, "must be a PostgreSQL URL such as \"postgresql://mosaic_ws@insight.example.nhs.uk/insight\"", "insight",
        ("postgresql://", "postgresql+psycopg://", "postgres://"))


class InsightTable(_Table):
    """[insight], machine-wide file only: where the locality insight figures are kept when PCs share them."""

    model_config = ConfigDict(extra="forbid", title="[insight]")

    store_url: Annotated[str, BeforeValidator(_insight_url)] | None = Field(None, description=(
        "The locality's PostgreSQL insight store, without a password (MOSAIC_SECRET_INSIGHT or `mosaic credentials "
        "set insight`); without it, each user's own DuckDB file in their data folder."))


def _notify_url(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fault("must be a non-empty string")
    problem = control_character_problem(value) or url_problem(value)
    if problem:
        raise fault(problem)
    if any(s in value.lower() for s in ("api_key", "secret")):
        raise fault("must not contain the API key; set MOSAIC_SECRET_NOTIFY or use `mosaic credentials set notify`")
    return value


def _whole_hour(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise fault("must be a whole hour from 0 to 23")
    return value


class NotifyTable(_Table):
    """[notify], machine-wide file only: when patients are told who opened their record (GOV.UK Notify).
    The API key is never here: MOSAIC_SECRET_NOTIFY or `mosaic credentials set notify`."""

    model_config = ConfigDict(extra="forbid", title="[notify]")

    rule: Annotated[Literal["every", "cross-practice", "never"], BeforeValidator(one_of(NOTIFY_RULES))] = Field(
        "never", description="every access, cross-practice (the user's organisation is not the patient's "
                             "practice), or never.")
    sms_template_id: NonEmptyStr | None = Field(None, description="Notify SMS template id.")
    email_template_id: NonEmptyStr | None = Field(None, description="Notify email template id.")
    base_url: Annotated[str, BeforeValidator(_notify_url)] = Field(
        NOTIFY_DEFAULT_BASE_URL, description="GOV.UK Notify's API.")
    digest_hour: Annotated[int, Field(ge=0, le=23), BeforeValidator(_whole_hour)] = Field(
        18, description="Local hour the daily digest goes out.")
    ods_code: OdsCode | None = Field(None, description=(
        "This workstation's organisation, when sign-in does not say."))
    organisation: NonEmptyStr | None = Field(None, description="The organisation's name as patients are told it.")

    @model_validator(mode="after")
    def _template_when_telling(self) -> NotifyTable:
        if self.rule != "never" and not (self.sms_template_id or self.email_template_id):
            raise fault("needs sms_template_id or email_template_id when rule is not \"never\"", key="rule")
        return self


class GpConnectTable(_Table):
    """[gp_connect]: Mosaic's own Spine identity, sent on every GP Connect request. Machine-wide file; a
    per-user file may supply it only while the machine-wide file has none."""

    model_config = ConfigDict(extra="forbid", title="[gp_connect]")

    asid: MosaicAsid | None = Field(
        None, description="Mosaic's Spine ASID (Ssp-From).")
    ods_code: OdsCode | None = Field(None, description=(
        "The users' organisation (requesting_organization)."))


class PolicyTable(_Table):
    """[policy], machine-wide file only: the locality access policy file."""

    model_config = ConfigDict(extra="forbid", title="[policy]")

    file: NonEmptyStr = Field(description=(
        "The access policy (TOML), read-only to users; relative to the machine files folder."))


class LockTable(_Table):
    """[lock], per-user file only: a user may lock their own window sooner than the machine says."""

    model_config = ConfigDict(extra="forbid", title="[lock]")

    idle_lock_minutes: IdleLockMinutes = Field(description=(
        "A shorter idle lock for this user; longer than the machine's (Group Policy, else [identity]) is not "
        "applied."))


class PracticeDirectory(_Table):
    """A Mosaic practice directory (practices.toml): the machine-wide file IT deploys
    (/etc/mosaic/practices.toml, %PROGRAMDATA%\\Mosaic\\practices.toml) or a user's own. [identity], [audit],
    [notify], [policy] and [insight] belong in the machine-wide file only; [lock] in a user's own only."""

    model_config = ConfigDict(extra="forbid", title="Mosaic practice directory")

    practice: list[PracticeEntry] = Field([], description="The practices.")
    identity: IdentityTable | None = None
    gp_connect: GpConnectTable | None = None
    audit: AuditTable | None = None
    notify: NotifyTable | None = None
    policy: PolicyTable | None = None
    insight: InsightTable | None = None
    lock: LockTable | None = None


#: the tables a practice directory may hold, besides [[practice]]
TABLES: dict[str, type[BaseModel]] = {
    "identity": IdentityTable, "gp_connect": GpConnectTable, "audit": AuditTable, "notify": NotifyTable,
    "policy": PolicyTable, "insight": InsightTable, "lock": LockTable,
}
