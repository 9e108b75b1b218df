"""The core's model: practices, patients and records, free of any protocol or UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Literal


class SectionName(StrEnum):
    """The record sections every adapter maps into, in display order."""

    PROBLEMS = "problems"
    MEDICATIONS = "medications"
    ALLERGIES = "allergies"
    ENCOUNTERS = "encounters"
    OBSERVATIONS = "observations"
    IMMUNISATIONS = "immunisations"


SECTION_TITLES: dict[SectionName, str] = {
    SectionName.PROBLEMS: "Problems",
    SectionName.MEDICATIONS: "Medications",
    SectionName.ALLERGIES: "Allergies and adverse reactions",
    SectionName.ENCOUNTERS: "Consultations and encounters",
    SectionName.OBSERVATIONS: "Observations and results",
    SectionName.IMMUNISATIONS: "Immunisations",
}

AuthKind = Literal["none", "basic", "bearer", "client-credentials", "private-key-jwt"]


@dataclass(frozen=True)
class Practice:
    """One practice backend as configured in the practice directory."""

    id: str
    name: str
    ods_code: str
    adapter: str
    base_url: str
    auth: AuthKind = "none"
    username: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    scope: str | None = None
    colour: str = "#505a5f"
    timeout_s: float = 15.0
    max_response_bytes: int = 16 * 1024 * 1024
    source: str = ""  # the config file this practice came from, for error messages
    # SMART Backend Services (auth = "private-key-jwt"): the key that signs the client assertion
    key_id: str | None = None
    key_alg: str | None = None  # RS384 | ES384
    key_file: str | None = None  # a PEM readable only by the user; else the key is in the keyring
    asid: str | None = None  # GP Connect: the practice's Spine ASID (12 digits)
    # GP Connect, from the machine-wide [gp_connect] table: Mosaic's own Spine ASID (Ssp-From) and the
    # ODS code of the organisation Mosaic's users work for (the JWT's requesting_organization)
    consumer_asid: str | None = None
    consumer_ods: str | None = None


@dataclass(frozen=True)
class Requester:
    """The person a GP Connect request is made for (the JWT's requesting_practitioner/organization).

    Built from the signed-in user; `sds_user_id` and `sds_role_profile_id` are None when unknown (sent
    as "UNK", as the GP Connect specification asks), never a shared or generic account.
    """

    user_id: str
    family: str
    given: tuple[str, ...] = ()
    sds_user_id: str | None = None
    sds_role_profile_id: str | None = None
    org_ods: str | None = None
    prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class Address:
    """The patient's home address as the practice holds it (FHIR Patient.address, use home)."""

    lines: tuple[str, ...] = ()
    city: str | None = None
    district: str | None = None
    postcode: str | None = None

    def one_line(self) -> str:
        return ", ".join(p for p in (*self.lines, self.city, self.district, self.postcode) if p)


#: NHS registration types (GP Connect's registration-type extension): what each code reads as
REGISTRATION_TYPES = {"R": "Regular", "T": "Temporary", "IN": "Immediately necessary", "E": "Emergency",
                      "P": "Private", "O": "Other"}


@dataclass(frozen=True)
class Registration:
    """Where and how the patient is registered, where the practice's system says."""

    practice_ods: str | None = None
    practice_name: str | None = None
    gp: str | None = None  # the usual / registered GP, "Dr A Smith"
    kind: str | None = None  # "Regular", "Temporary", "Emergency", ... (REGISTRATION_TYPES' words)
    since: date | None = None
    branch: str | None = None  # the preferred branch surgery, where the practice has several (GP Connect)


@dataclass(frozen=True)
class PatientSummary:
    """What a search returns: enough to pick the right person and open their record."""

    practice_id: str
    local_id: str
    nhs_number: str | None
    family: str
    given: tuple[str, ...]
    birth_date: date | None
    sex: str | None  # "male" | "female" | "other" | "unknown" | None
    postcode: str | None
    # The research view (app/core/research.py): a pseudonymised summary has no name, NHS number, postcode
    # or date of birth; `local_id` is then the pseudonym too, which the core maps back to the practice's id.
    pseudonym: str | None = None  # stable per patient per study, e.g. "R-7K3Q-M2XD-9FJA"
    birth_year: int | None = None  # the date of birth reduced to its year
    #: death: False (alive, or not recorded), True (deceased, date unknown) or the date of death
    deceased: bool | date = False
    address: Address | None = None
    registration: Registration | None = None

    @property
    def is_deceased(self) -> bool:
        return self.deceased is not False


@dataclass(frozen=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None


@dataclass(frozen=True)
class Measurement:
    """One value of an observation: a result, or one part of it (systolic / diastolic of a blood pressure).

    `flag` is the interpretation as the sender coded it (FHIR v3 ObservationInterpretation: "H", "L", "HH",
    "LL", "A", "AA", "N", ...), or worked out from the reference range when the sender gave none."""

    name: str
    value: float | None = None
    unit: str | None = None
    text: str | None = None  # a value that is not a number ("Positive", "<5")
    low: float | None = None
    high: float | None = None
    range_text: str | None = None  # the range as the sender wrote it, when it is not two numbers
    flag: str | None = None
    code: str | None = None  # the code of this value (a component's code), for trends


@dataclass(frozen=True)
class Entry:
    """One line of a record section, already reduced to what a clinician reads.

    `when` is the clinically relevant date (onset, authored, recorded, effective, occurrence),
    kept as the ISO text the server sent (FHIR dates may be partial, such as "1998" or "2001-04").
    """

    text: str
    when: str | None = None
    status: str | None = None
    detail: str | None = None
    coding: Coding | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    #: the clinical grouping within its section: problems "active" | "past"; medications "repeat" | "acute" |
    #: "past"; None where the sender does not say
    group: str | None = None
    measurements: tuple[Measurement, ...] = ()  # observations: the values, units, ranges and flags
    report: str | None = None  # observations: the report (DiagnosticReport) this result belongs to, by title
    report_id: str | None = None
    notes: str | None = None  # consultations: what the clinician wrote (never shown in the research view)
    reaction: str | None = None  # allergies: the reaction(s)
    severity: str | None = None  # allergies: "mild" | "moderate" | "severe"; or the criticality ("high risk")


SectionStatus = Literal["loaded", "failed", "unsupported", "withheld"]


@dataclass(frozen=True)
class Section:
    """A record section in exactly one state: loaded, failed (with why), or not provided by the backend.

    A failed section must never be presented as "none recorded"; `entries` is only meaningful when
    the status is "loaded".
    """

    name: SectionName
    status: SectionStatus
    entries: tuple[Entry, ...] = ()
    retrieved_at: datetime | None = None
    error: str | None = None

    @classmethod
    def loaded(cls, name: SectionName, entries: list[Entry] | tuple[Entry, ...],
               retrieved_at: datetime | None = None) -> Section:
        return cls(name, "loaded", tuple(entries), retrieved_at or datetime.now(UTC))

    @classmethod
    def failed(cls, name: SectionName, error: str) -> Section:
        return cls(name, "failed", (), None, error)

    @classmethod
    def unsupported(cls, name: SectionName) -> Section:
        return cls(name, "unsupported")

    @classmethod
    def withheld(cls, name: SectionName) -> Section:
        """Not shown under the access policy for the user's role (the research view, say): never a failure."""
        return cls(name, "withheld")


@dataclass(frozen=True)
class PatientContact:
    """How the practice's system says the patient can be reached, read with the record.

    Only the notifier uses it (to tell the patient who opened their record); the core strips it from
    the record it hands back, so no screen, export or log ever holds it. `do_not_notify` is the
    practice's safeguarding mark: never message this patient. True: marked; False: every place the
    practice's system keeps the mark was read and it is not there; None (the default): it could not be read
    (a Flag search failed or is not offered, part of the record did not arrive) — and then, as when marked,
    nobody is told (`may_notify`)."""

    phone: str | None = None
    email: str | None = None
    do_not_notify: bool | None = None

    @property
    def may_notify(self) -> bool:
        """The one rule: the patient may be told only when the mark was read and is absent (fail-safe)."""
        return self.do_not_notify is False


@dataclass(frozen=True)
class PatientRecord:
    patient: PatientSummary
    sections: dict[SectionName, Section]
    retrieved_at: datetime
    round_trips: int = 0
    warnings: tuple[str, ...] = ()
    contact: PatientContact | None = None  # None: the adapter could not tell (nobody is messaged)
    # How the access policy let this record open, when the access is flagged for review: "break-glass",
    # "self-or-family" (app.core.policy FLAG_*), and the reason the user gave. Set by the core only.
    access_flags: tuple[str, ...] = ()
    access_reason: str | None = None
    research_consent: bool | None = None  # a research Consent from the backend (None: none read / not told)
    #: the id the practice's own audit knows this request by (GP Connect's Ssp-TraceID), where the protocol has
    #: one: it travels with the record, so concurrent opens never journal one another's ids
    trace_id: str | None = None


@dataclass(frozen=True)
class ServerInfo:
    """What `connect` learns about a backend."""

    software: str | None
    fhir_version: str | None
    round_trip_ms: float
    supports_everything: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PatientQuery:
    """A parsed search. At least one field is set; an adapter matches all fields given.

    Two kinds, never mixed: by the patient's identity (NHS number, name, date of birth), or by study
    criteria (a SNOMED CT condition code, an age band, the practices to ask) for the research view, which
    never searches by identity (app/core/research.py)."""

    nhs_number: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: date | None = None
    condition: str | None = None  # a SNOMED CT concept id: patients with this condition coded
    age_min: int | None = None  # age band in whole years, inclusive (today's age)
    age_max: int | None = None
    practices: tuple[str, ...] = ()  # criteria search: only these practice ids (empty: every practice)

    def is_empty(self) -> bool:
        return not (self.identifies or self.is_criteria)

    @property
    def identifies(self) -> bool:
        """A search by who the patient is (NHS number, name or date of birth)."""
        return bool(self.nhs_number or self.family or self.given or self.birth_date)

    @property
    def is_criteria(self) -> bool:
        """A search by study criteria (condition, age band)."""
        return bool(self.condition or self.age_min is not None or self.age_max is not None)

    def birth_range(self, today: date) -> tuple[date | None, date | None]:
        """The age band as dates of birth: (born after, born on or before); None where the band is open."""
        latest = _years_before(today, self.age_min) if self.age_min is not None else None
        after = _years_before(today, self.age_max + 1) if self.age_max is not None else None
        return after, latest


def _years_before(day: date, years: int) -> date:
    """The same day `years` earlier (29 February becomes 28 February in a year without it)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)
