"""The research view: what a research role sees of a patient who has not consented to research.

A patient without a recorded research consent (the study's `consented` list in the access policy, or a
FHIR Consent from the practice read with the record) is pseudonymised in the core, before anything is
handed back, so every face of the app (window, CLI, exports) only ever holds the pseudonymised data: no
name, NHS number, postcode, contact details, practice-local id or free text; the date of birth reduced
to its year, a death to the fact (no date); a pseudonym instead, stable per patient per study.

The pseudonym is a keyed HMAC-SHA256 of the NHS number (or practice id and local id when there is
none) under the study's secret key. NHS numbers are a small space: an unkeyed hash would be reversed by
trying them all, so there is no unkeyed fallback. Without the key a research role sees no
non-consented patient at all.

Reducing by construction: every field of a summary or record not named here as safe is reset to its
default, so a field added to the model later is withheld until someone decides it may be shown.

No identity → pseudonym link. A research role finds patients by study criteria only (a coded condition, an
age band, the practices: `condition:44054006 age:40-60`), never by name, NHS number or date of birth, which
the core refuses (IDENTIFYING_SEARCH_REFUSED): otherwise anyone could type a name and read its pseudonym. It
opens only the patients its own searches handed out. A practice's own error text (which may quote a
patient) is replaced by a sentence naming the practice (`practice_error`).

The journal. The researcher owns their per-user journal file, so its entries for a research role hold no
direct identifier of a patient without consent (`journal_form`, applied to every entry as it is committed):
no NHS number, no name or date of birth in a search, no server text; the pseudonym instead (details
"pseudonym"), and the practice's own record id, which the practice's audit needs (it travels upstream in the
entry, to the practice as the AuditEvent's Patient reference and to the central store) and which identifies
nobody outside that practice's system. A record id that is itself an NHS number (GP Connect's) is not
written. Auditors re-identify through the practice (its id) or the study's data manager (the key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from app.core import nhs_number as nhs
from app.core.model import SECTION_TITLES, Entry, Measurement, PatientRecord, PatientSummary, Section
from app.core.policy import PolicyDecision, PolicyError, Study
from app.core.secrets import SecretError, env_name, resolve_secret
from app.core.trends import CONCEPTS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from app.core.audit.model import JournalEntry
    from app.core.search import PracticeResults

WITHHELD_TEXT = "[free text withheld — research view]"
WITHHELD = "[withheld]"
RESEARCH_MARKER = "Research view — pseudonymised"
PSEUDONYMISED_WARNING = ("Research view — pseudonymised: no research consent is recorded for this patient, so "
                         "name, NHS number, address, contact details, free text and the full date of birth are "
                         "withheld.")
MIN_KEY_LENGTH = 16
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PSEUDONYM = re.compile(r"^R-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
#: summary fields a pseudonymised summary keeps as they are (the rest are set here or reset to defaults)
_SUMMARY_KEEP = frozenset({"practice_id", "sex"})
#: record fields kept (the patient and sections are reduced; contact details and anything new are dropped)
_RECORD_KEEP = frozenset({"retrieved_at", "round_trips", "warnings", "research_consent", "access_flags",
                          "access_reason"})  # how it was opened: the user's own words and the policy's flags
#: a measured value's fields kept: the number, unit, range, flag and code identify nobody (trend charts show them);
#: its name is set from the code, and a value or range in words (`text`, `range_text`) goes: it may be free text
_MEASUREMENT_KEEP = frozenset({"value", "unit", "low", "high", "flag", "code"})
#: an entry's clinical group and an allergy's severity are kept only as these words (never the sender's own text);
#: the report title is the name of a test (kept on coded entries), the report's id is replaced per record. Withheld:
#: consultation notes and an allergy's reaction (both as written, possibly the clinician's own words); of the
#: patient, the address and registration (practice, GP, since) go, and a death is kept as the fact only, never
#: its date (a date of death is published, so with the year of birth it would point at one person)
_GROUPS = frozenset({"active", "past", "repeat", "acute"})
#: a status is kept only as FHIR status codes Mosaic knows ("active", "active (unconfirmed)"); a value's flag only as
#: a known interpretation code: a sender may put any text in either
_STATUS_CODES = frozenset({"active", "amended", "appended", "arrived", "cancelled", "completed", "confirmed",
                           "corrected", "differential", "draft", "ended", "entered-in-error", "final", "finished",
                           "in-progress", "inactive", "intended", "not-done", "not-taken", "on-hold", "onleave",
                           "partial", "planned", "preliminary", "provisional", "recurrence", "refuted", "registered",
                           "relapse", "remission", "resolved", "stopped", "suspended", "taken", "triaged",
                           "unconfirmed", "unknown"})
_FLAG_CODES = frozenset({"<", ">", "A", "AA", "B", "DET", "H", "HH", "HU", "I", "IE", "L", "LL", "LU", "N", "NEG",
                         "ND", "POS", "R", "S", "U", "W"})
_STATUS_SHAPE = re.compile(r"([a-z-]+)(?: \(([a-z-]+)\))?")


_UNIT_BASES = ("g", "L", "l", "mol", "m", "s", "min", "h", "d", "wk", "mo", "a", "U", "IU", "eq", "Eq", "Hg", "Pa",
               "kat", "Osm", "cal", "bar", "K")
#: a unit is kept when each run of letters in it is a unit's (mmol/L, mL/min/1.73m², ×10⁹/L, mm[Hg], {beats}/min):
#: a sender's unit is text, and a name or a note there would otherwise pass into the research view
_UNIT_WORDS = frozenset({p + b for b in _UNIT_BASES for p in ("", "k", "c", "d", "m", "u", "µ", "μ", "n", "p", "f")}
                        | {"mmHg", "Cel", "degC", "bpm", "beats", "breaths", "ratio", "score", "units", "unit", "cells",
                           "pH", "kPa", "mEq", "mOsm", "per", "year", "years", "index", "copies", "titre", "mIU",
                           "degF", "lb", "av", "oz", "ft", "in", "i", "count", "nominal", "log", "Log"})


def _known_unit(unit: str | None) -> str | None:
    if not unit or len(unit) > 24:
        return None
    letters = re.findall(r"[^\W\d_⁰¹²³⁴⁵⁶⁷⁸⁹]+", unit)  # superscript digits are powers, not letters
    return unit if all(run in _UNIT_WORDS for run in letters) else None


def _known_status(status: str | None) -> str | None:
    if status == "not given":  # GP Connect's immunisation notGiven, in words
        return status
    match = _STATUS_SHAPE.fullmatch(status or "")
    return status if match and all(c in _STATUS_CODES for c in match.groups() if c) else None
_SEVERITIES = frozenset({"mild", "moderate", "severe", "high risk", "low risk"})

T = TypeVar("T", bound="DataclassInstance")

IDENTIFYING_SEARCH_REFUSED = ("In the research view, find patients by study criteria, not by name, NHS number or date "
                              "of birth: for example condition:44054006 age:40-60 practice:<id>.")
#: journal details a research role's entries keep; any other detail (a record's identifiers sent back by a
#: practice, anything added later) is dropped until someone decides it identifies nobody
_JOURNAL_DETAILS_KEEP = frozenset({"results", "trace_id", "intent", "unreadable", "doing", "flags", "flagged", "flag",
                                   "denied", "sections_failed", "decided_on", "clinical_safety", "pseudonym",
                                   "search_id", "policy_role", "reviewed", "reviewed_seq"})
#: a search's fields that identify nobody (study criteria); the others are withheld in a research entry
CRITERIA_FIELDS = frozenset({"condition", "age", "practices"})


def practice_error(practice_name: str) -> str:
    """What a research role is told when a practice fails: the practice's own words may quote a patient."""
    return (f"{practice_name} could not answer. The practice's own error text is not shown in the research "
            "view; the failure is in the log (without it) and at the practice.")


class ResearchKeyMissing(PolicyError):
    """The study's pseudonym key is not set (or not readable): no non-consented patient can be shown."""

    def __init__(self, study_id: str, detail: str | None = None) -> None:
        why = (f"The research view cannot show patients without research consent: the pseudonym key for study "
               f"'{study_id}' is not set. Set {env_name(key_name(study_id))} in the environment, or store it in "
               f"the OS keyring (service 'mosaic', user '{key_name(study_id)}'); ask your study's data manager.")
        if detail:
            why += f" ({detail})"
        super().__init__(PolicyDecision("denied", why=why))
        self.study_id = study_id


def key_name(study_id: str) -> str:
    """The secret's name: env MOSAIC_SECRET_STUDY_<ID>, keyring user `study-<id>`."""
    return f"study-{study_id}"


def study_key(study_id: str) -> bytes:
    """The study's HMAC key, or ResearchKeyMissing (never a default)."""
    try:
        secret = resolve_secret(key_name(study_id), f"study '{study_id}'")
    except SecretError as exc:
        raise ResearchKeyMissing(study_id, str(exc)) from None
    if not secret:
        raise ResearchKeyMissing(study_id)
    if len(secret) < MIN_KEY_LENGTH:
        raise ResearchKeyMissing(study_id, f"the key set is shorter than {MIN_KEY_LENGTH} characters, "
                                           "too short to keep pseudonyms from being reversed")
    return secret.encode("utf-8")


def pseudonym(key: bytes, study_id: str, *, nhs_number: str | None = None, practice_id: str | None = None,
              local_id: str | None = None) -> str:
    """"R-7K3Q-M2XD-9FJA": 60 bits of HMAC-SHA256 in Crockford base32 (no I, L, O, U to misread)."""
    number = nhs.normalise(nhs_number) if nhs_number else None
    if number:
        subject = f"nhs:{number}"
    elif practice_id and local_id:
        subject = f"local:{practice_id}:{local_id}"
    else:
        raise ValueError("a pseudonym needs an NHS number, or a practice id and local id")
    mac = hmac.new(key, f"mosaic-research-v1\x00{study_id}\x00{subject}".encode(), hashlib.sha256).digest()
    bits = int.from_bytes(mac[:8], "big") >> 4
    chars = "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in reversed(range(12)))
    return f"R-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def looks_like_pseudonym(text: str) -> bool:
    return bool(PSEUDONYM.match(text.strip().upper()))


def _reduced(instance: T, keep: frozenset[str], **values: Any) -> T:
    """A copy with `values` set, `keep` fields as they were and every other field at its default."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(instance):
        if f.name in values:
            kwargs[f.name] = values[f.name]
        elif f.name in keep:
            kwargs[f.name] = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            kwargs[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs[f.name] = f.default_factory()
        else:
            raise TypeError(f"{type(instance).__name__}.{f.name} has no default: decide in app/core/research.py "
                            "whether the research view may show it")
    return type(instance)(**kwargs)


def pseudonymise_summary(patient: PatientSummary, name: str) -> PatientSummary:
    """The summary a research role sees: sex, year of birth, practice, and the pseudonym as its id."""
    return _reduced(patient, _SUMMARY_KEEP, local_id=name, nhs_number=None, family="", given=(), birth_date=None,
                    postcode=None, pseudonym=name,
                    birth_year=patient.birth_date.year if patient.birth_date else patient.birth_year,
                    deceased=patient.is_deceased)


def pseudonymise_entry(entry: Entry) -> Entry:
    """Coded entries keep the code's own term, date and status; uncoded free text, detail and ids go.
    The code's display is used rather than the entry's text, which may be the clinician's own words."""
    coding = entry.coding
    if coding is not None and (coding.display or coding.code):
        text = coding.display or f"Code {coding.code}"
    else:
        text, coding = WITHHELD_TEXT, None
    measurements = tuple(pseudonymise_measurement(m) for m in entry.measurements) if coding is not None else ()
    return Entry(text=text, when=entry.when, status=_known_status(entry.status), coding=coding,
                 resource_type=entry.resource_type,
                 measurements=measurements, group=entry.group if entry.group in _GROUPS else None,
                 severity=entry.severity if entry.severity in _SEVERITIES else None,
                 report=entry.report if coding is not None else None, report_id=entry.report_id)


def pseudonymise_measurement(measurement: Measurement) -> Measurement:
    """A coded entry's value keeps its number, unit, range, flag and code; its name is the clinical name of the
    code where it is a known measure (app.core.trends.CONCEPTS), else none (the sender's name may be free text)."""
    concept = CONCEPTS.get(measurement.code or "")
    return _reduced(measurement, _MEASUREMENT_KEEP, name=concept.line if concept is not None else "",
                    flag=measurement.flag if measurement.flag in _FLAG_CODES else None,
                    unit=_known_unit(measurement.unit))


#: a record's warning kept in the research view only when it is one of Mosaic's own sentences (a section's title,
#: counts, the practice's name); any other (a practice's note or OperationOutcome text, a sender's warning code,
#: a sentence added later) is replaced by PRACTICE_NOTE_WITHHELD
_TITLES = "|".join(re.escape(t) for t in SECTION_TITLES.values())
_OWN_WARNINGS = (
    rf"(?:{_TITLES}): \d+ (?:entry|entries) could not be read and are not shown\.",
    rf"(?:{_TITLES}): the practice holds more entries than Mosaic fetches at once \(\d+ shown\)\.",
    rf"(?:{_TITLES}): the notes could not be read and are not shown\.",
    r"\d+ (?:entry|entries) from [^:\d]{1,80} could not be read and are not shown\.",
    r"Not shown under the access policy for your role: [a-z ,]+\.",
)
PRACTICE_NOTE_WITHHELD = ("A note from the practice about this record is not shown in the research view (it may be "
                          "in the practice's own words).")
SECTION_ERROR_WITHHELD = ("The practice could not send this section. Its own error text is not shown in the research "
                          "view.")


def _own_warning(text: str) -> bool:
    from adapters.gp_connect.mapping import WARNING_TEXT  # GP Connect's warning codes, in Mosaic's words

    known = "|".join(re.escape(t) for t in WARNING_TEXT.values())
    return any(re.fullmatch(pattern, text) for pattern in (*_OWN_WARNINGS, rf"(?:{_TITLES}): (?:{known})"))


def _research_warnings(warnings: Iterable[str]) -> tuple[str, ...]:
    kept = [w if _own_warning(w) else PRACTICE_NOTE_WITHHELD for w in warnings]
    return tuple(dict.fromkeys(kept))


def _research_section(section: Section, entries: tuple[Entry, ...]) -> Section:
    """A section's entries reduced; a failed one keeps its state, with Mosaic's words for why (a practice's
    error text may quote a patient)."""
    error = SECTION_ERROR_WITHHELD if section.error is not None else None
    return dataclasses.replace(section, entries=entries, error=error)


def pseudonymise_record(record: PatientRecord, name: str) -> PatientRecord:
    reports: dict[str, str] = {}  # the practice's own report ids -> "report-1", ...: results still group by report
    titles: dict[str, str] = {}  # a report's id -> its title as the coded report entry reads (the code's display)
    for section in record.sections.values():
        for entry in section.entries:
            if entry.resource_type == "DiagnosticReport" and entry.report_id:
                titles.setdefault(entry.report_id, pseudonymise_entry(entry).text)

    def reduced(entry: Entry) -> Entry:
        kept = pseudonymise_entry(entry)
        if kept.report_id is None:
            return dataclasses.replace(kept, report=None)
        title = titles.get(kept.report_id, WITHHELD_TEXT)  # a report's own title may be free text: the code's words
        title = "Test report" if title == WITHHELD_TEXT else title
        return dataclasses.replace(kept, report=title if kept.report is not None else None,
                                   report_id=reports.setdefault(kept.report_id, f"report-{len(reports) + 1}"))

    sections = {key: _research_section(section, tuple(reduced(e) for e in section.entries))
                for key, section in record.sections.items()}
    return _reduced(record, _RECORD_KEEP, patient=pseudonymise_summary(record.patient, name), sections=sections,
                    warnings=(PSEUDONYMISED_WARNING, *_research_warnings(record.warnings)))


class ResearchView:
    """One core's research view for a research role: consent, pseudonyms, and pseudonym → local id."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self._key: bytes | None = None
        self._ids: dict[tuple[str, str], str] = {}  # (practice id, pseudonym) -> the practice's own id
        self._identified: set[tuple[str, str]] = set()  # (practice id, local id) handed out identified (consent)

    def key(self) -> bytes:
        if self._key is None:
            self._key = study_key(self.study.id)
        return self._key

    def has_key(self) -> bool:
        try:
            self.key()
        except ResearchKeyMissing:
            return False
        return True

    def consented(self, number: str | None) -> bool:
        """Consent recorded in the policy's study list."""
        return bool(number) and nhs.normalise(number or "") in self.study.consented

    def pseudonym_of(self, patient: PatientSummary) -> str:
        name = pseudonym(self.key(), self.study.id, nhs_number=patient.nhs_number,
                         practice_id=patient.practice_id, local_id=patient.local_id)
        self._ids[(patient.practice_id, name)] = patient.local_id
        return name

    def summary(self, patient: PatientSummary) -> PatientSummary:
        """Identified when consented by the policy list; else pseudonymised (ResearchKeyMissing without key)."""
        if self.consented(patient.nhs_number):
            self._identified.add((patient.practice_id, patient.local_id))
            return patient
        return pseudonymise_summary(patient, self.pseudonym_of(patient))

    def results(self, result: PracticeResults) -> PracticeResults:
        """A practice's search answer as the research role sees it; without the key, non-consented
        patients are left out and a note says why."""
        shown: list[PatientSummary] = []
        missing: ResearchKeyMissing | None = None
        for patient in result.patients:
            try:
                shown.append(self.summary(patient))
            except ResearchKeyMissing as exc:
                missing = exc
        if missing is None:
            return dataclasses.replace(result, patients=tuple(shown))
        left_out = len(result.patients) - len(shown)
        note = f"{left_out} patient{'s' if left_out != 1 else ''} without research consent not shown: {missing}"
        return dataclasses.replace(result, patients=tuple(shown), note=note)

    def local_id(self, practice_id: str, given: str) -> str | None:
        """The practice's own id for what the user gave: a pseudonym this view handed out, or the id of a
        consented patient it handed out identified. None for anything else (a pseudonym it does not know, a
        record id or NHS number typed in): never sent to the practice, so no id is turned into a pseudonym."""
        known = self._ids.get((practice_id, given.strip().upper()))
        if known is not None:
            return known
        return given if (practice_id, given) in self._identified else None

    def record(self, record: PatientRecord) -> PatientRecord:
        """The record as the research role sees it: identified with consent (list or backend Consent)."""
        if self.consented(record.patient.nhs_number) or record.research_consent is True:
            note = f"Research consent recorded for study '{self.study.id}': shown identified."
            return dataclasses.replace(record, warnings=(note, *record.warnings))
        return pseudonymise_record(record, self.pseudonym_of(record.patient))

    def journal_form(self, entry: JournalEntry, practice_name: str) -> JournalEntry:
        """`entry` as a research role's journal may hold it (see the module's note): a consented patient's
        entry keeps its identifiers; otherwise no NHS number, a record id only when it is not an NHS number,
        the pseudonym in details, only study criteria of a search, and a practice's error text replaced."""
        from app.core.audit.model import Outcome

        detail = practice_error(practice_name) if entry.outcome is Outcome.FAILURE else entry.outcome_detail
        number = nhs.normalise(entry.patient_nhs_number or "") or None
        if number and self.consented(number):
            return dataclasses.replace(entry, outcome_detail=detail)
        local = entry.patient_local_id
        local_is_number = bool(local) and nhs.is_valid(nhs.normalise(local or ""))
        subject = number or (nhs.normalise(local or "") if local_is_number else None)
        name: str | None = None
        if subject or (local and entry.practice_id):
            try:
                name = pseudonym(self.key(), self.study.id, nhs_number=subject, practice_id=entry.practice_id,
                                 local_id=local)
            except ResearchKeyMissing:
                name = None  # without the key: no pseudonym, and still no identifier
        details = {k: v for k, v in entry.details.items() if k in _JOURNAL_DETAILS_KEEP}
        query = entry.details.get("query")
        if isinstance(query, dict):
            details["query"] = {k: (v if k in CRITERIA_FIELDS else WITHHELD) for k, v in query.items()}
        elif query is not None:
            details["query"] = WITHHELD
        if name:
            details["pseudonym"] = name
        return dataclasses.replace(entry, patient_nhs_number=None, patient_local_id=None if local_is_number else local,
                                   outcome_detail=detail, details=details)

    def journal_entries(self, entries: Iterable[JournalEntry]) -> list[JournalEntry]:
        """Journal entries with every patient field replaced by the pseudonym ("[withheld]" without the
        key). The journal itself keeps the real identifiers, for auditors."""
        key = self.key() if self.has_key() else None
        return [pseudonymise_journal_entry(e, key, self.study.id) for e in entries]


def pseudonymise_journal_entry(entry: JournalEntry, key: bytes | None, study_id: str) -> JournalEntry:
    name: str | None = None
    kept = entry.details.get("pseudonym")  # a research entry, journaled with its pseudonym (journal_form)
    if isinstance(kept, str) and looks_like_pseudonym(kept):
        name = kept
    elif entry.patient_nhs_number or (entry.patient_local_id and entry.practice_id):
        name = WITHHELD if key is None else pseudonym(key, study_id, nhs_number=entry.patient_nhs_number,
                                                      practice_id=entry.practice_id, local_id=entry.patient_local_id)
    from app.core.audit.model import Outcome

    details = {k: v for k, v in entry.details.items() if k in _JOURNAL_DETAILS_KEEP}  # "received": another patient
    query = entry.details.get("query")
    if isinstance(query, dict):
        details["query"] = {k: _query_value(k, v, key, study_id) for k, v in query.items()}
    elif query is not None:
        details["query"] = WITHHELD
    if name and name != WITHHELD:
        details["pseudonym"] = name
    detail = practice_error(entry.practice_id or "The practice") if entry.outcome is Outcome.FAILURE \
        else entry.outcome_detail  # a practice's error text may quote a patient
    return dataclasses.replace(entry, patient_nhs_number=None, patient_local_id=name, details=details,
                               outcome_detail=detail)


def _query_value(field_name: str, value: Any, key: bytes | None, study_id: str) -> Any:
    if field_name in CRITERIA_FIELDS:
        return value
    if field_name == "nhs_number" and key is not None and isinstance(value, str) and value:
        return pseudonym(key, study_id, nhs_number=value)
    if field_name == "birth_date" and isinstance(value, str) and re.match(r"^\d{4}", value):
        return value[:4]
    return WITHHELD
