"""Pure functions from a GP Connect Access Record: Structured bundle (FHIR STU3) to the core's model.

The bundle is a `collection` of every resource the practice chose to send, organised by `List`
resources: one per clinical area (allergies, medications, problems...), each saying whether the area
is empty (`emptyReason`) and whether anything was held back (`ListWarningCode` extension). Entries
come from the resources themselves (a List may name items it did not send); the Lists say which
sections the practice answered, which allergies are resolved, how consultations are structured and
what warnings a clinician must see. No I/O, no logging of content.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from adapters.fhir_r4.mapping import (
    MalformedResource,
    _first,
    _join,
    _list,
    _obj,
    _str,
    choose_name,
    concept_text,
    dosage_text,
    full_date,
    map_patient,
    name_parts,
    nhs_number,
    observation_value,
    preferred_coding,
    sort_newest_first,
    status_code,
)
from adapters.gp_connect.consultations import consultation_notes, is_comment_note
from adapters.gp_connect.patient import deceased, home_address, registration
from adapters.gp_connect.results import ReportOf, is_test_group, measurements, members, report_membership
from adapters.patient_contact import patient_contact
from app.core.display import format_partial_date
from app.core.model import SECTION_TITLES, Entry, PatientContact, PatientSummary, SectionName

Json = dict[str, Any]

EXT = "https://fhir.nhs.uk/STU3/StructureDefinition/"
LIST_WARNING_URL = EXT + "Extension-CareConnect-GPC-ListWarningCode-1"
SPINE_CODES = "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"

# SNOMED CT codes of the GP Connect List resources
ACTIVE_ALLERGIES = "886921000000105"
ENDED_ALLERGIES = "1103671000000101"
MEDICATIONS_LIST = "933361000000108"
PROBLEMS_LIST = "717711000000103"
CONSULTATIONS_LIST = "1149501000000101"
CONSULTATION = "325851000000107"
TOPIC = "25851000000105"
CATEGORY = "24781000000107"
IMMUNISATIONS_LIST = "1102181000000102"
INVESTIGATIONS_LIST = "887191000000108"
UNCATEGORISED_LIST = "826501000000100"

LIST_SECTION: dict[str, SectionName] = {
    ACTIVE_ALLERGIES: SectionName.ALLERGIES,
    ENDED_ALLERGIES: SectionName.ALLERGIES,
    MEDICATIONS_LIST: SectionName.MEDICATIONS,
    PROBLEMS_LIST: SectionName.PROBLEMS,
    CONSULTATIONS_LIST: SectionName.ENCOUNTERS,
    IMMUNISATIONS_LIST: SectionName.IMMUNISATIONS,
    INVESTIGATIONS_LIST: SectionName.OBSERVATIONS,
    UNCATEGORISED_LIST: SectionName.OBSERVATIONS,
}

#: which request parameters fill which section (a section is unsupported when all of them are)
SECTION_PARAMETERS: dict[SectionName, tuple[str, ...]] = {
    SectionName.ALLERGIES: ("includeAllergies",),
    SectionName.MEDICATIONS: ("includeMedication",),
    SectionName.PROBLEMS: ("includeProblems",),
    SectionName.ENCOUNTERS: ("includeConsultations",),
    SectionName.IMMUNISATIONS: ("includeImmunisations",),
    SectionName.OBSERVATIONS: ("includeInvestigations", "includeUncategorisedData"),
}

#: what each List warning code means, as a sentence a clinician reads after the section's title
WARNING_TEXT: dict[str, str] = {
    "confidential-items": "items excluded due to confidentiality and/or patient preferences.",
    "data-in-transit": "the patient's record transfer from their previous GP practice is not yet complete; "
                       "information recorded before the transfer may be missing.",
    "data-awaiting-filing": "some data is awaiting filing at the practice (for example new results or "
                            "letters) and is not shown yet.",
}

_RESOURCE_SECTION = {
    "AllergyIntolerance": SectionName.ALLERGIES,
    "MedicationStatement": SectionName.MEDICATIONS,
    "MedicationRequest": SectionName.MEDICATIONS,
    "Condition": SectionName.PROBLEMS,
    "Encounter": SectionName.ENCOUNTERS,
    "Immunization": SectionName.IMMUNISATIONS,
    "Observation": SectionName.OBSERVATIONS,
    "DiagnosticReport": SectionName.OBSERVATIONS,
}
_SKIPPABLE = (MalformedResource, TypeError, ValueError, AttributeError, KeyError, IndexError)


# --- finding resources -----------------------------------------------------------------------------

class BundleIndex:
    """Resolves references the way GP Connect providers actually write them.

    'Type/id', a bare 'id', a fullUrl, and ids that carry their own type prefix
    ('MedicationRequest/Consultation1-...' as the id of a MedicationRequest) all resolve.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, Json] = {}

    def add(self, resource: Json, full_url: str | None = None) -> None:
        kind, rid = _str(resource.get("resourceType")), _str(resource.get("id"))
        if kind and rid:
            bare = rid[len(kind) + 1:] if rid.startswith(f"{kind}/") else rid
            for key in (f"{kind}/{bare}", f"{kind}/{rid}", bare, rid):
                self._by_key.setdefault(key, resource)
        if full_url:
            self._by_key.setdefault(full_url, resource)

    def __call__(self, reference: str, container: Json | None = None) -> Json | None:
        if reference.startswith("#") and container is not None:
            wanted = reference[1:]
            return next((c for c in _list(container.get("contained")) if isinstance(c, dict)
                         and c.get("id") == wanted), None)
        if reference in self._by_key:
            return self._by_key[reference]
        path = reference.split("/_history/", 1)[0].rstrip("/")
        segments = path.split("/")
        if len(segments) >= 2 and "/".join(segments[-2:]) in self._by_key:
            return self._by_key["/".join(segments[-2:])]
        return self._by_key.get(segments[-1])

    def ref(self, reference: Any, container: Json | None = None) -> Json | None:
        r = _obj(reference)
        target = _str(r.get("reference")) if r else None
        return self(target, container) if target else None


def bundle_resources(bundle: Any) -> Iterator[tuple[str | None, Json]]:
    """(fullUrl, resource) for each entry. Tolerates entries that are the resource itself (seen in the
    wild: a ProcedureRequest pasted straight into `entry`)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise MalformedResource("not a Bundle")
    for entry in _list(bundle.get("entry")):
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict):
            yield _str(entry.get("fullUrl")), resource
        elif isinstance(entry.get("resourceType"), str):
            yield None, entry


def list_code(resource: Json) -> str | None:
    codes = [c for c in (_obj(x) for x in _list((_obj(resource.get("code")) or {}).get("coding"))) if c]
    return next((_str(c.get("code")) for c in codes if _str(c.get("code"))), None)


def _extensions(resource: Json, url_suffix: str) -> list[Json]:
    return [e for e in (_obj(x) for x in _list(resource.get("extension")))
            if e and (_str(e.get("url")) or "").endswith(url_suffix)]


def _ext_value(resource: Json, url_suffix: str, key: str) -> Any:
    found = _extensions(resource, url_suffix)
    return found[0].get(key) if found else None


def _sub_ext(ext: Json, name: str, key: str) -> Any:
    for sub in (_obj(x) for x in _list(ext.get("extension"))):
        if sub and _str(sub.get("url")) == name:
            return sub.get(key)
    return None


def _date(text: str | None) -> str:
    return format_partial_date(text[:10] if text and text[:1].isdigit() and len(text) > 10 else text)


# --- the result ------------------------------------------------------------------------------------

@dataclass
class StructuredRecord:
    """What one structured bundle says, section by section.

    `entries[s]` is None when the bundle did not answer section `s` at all (no List and no resources);
    an empty list means the practice answered "nothing recorded". `not_implemented` holds request
    parameters the practice reported (OperationOutcome NOT_IMPLEMENTED) it cannot answer.
    """

    patient: PatientSummary | None
    entries: dict[SectionName, list[Entry] | None] = field(default_factory=dict)
    contact: PatientContact | None = None  # for telling the patient who looked; never shown
    warnings: list[str] = field(default_factory=list)
    skipped: dict[SectionName, int] = field(default_factory=lambda: defaultdict(int))
    not_implemented: set[str] = field(default_factory=set)
    #: a resource of the bundle names another patient as its subject (`about_someone_else`): nothing is shown
    about_someone_else: bool = False


# --- sections --------------------------------------------------------------------------------------

def _person_name(resource: Json | None) -> str | None:
    if not resource:
        return None
    if resource.get("resourceType") == "PractitionerRole":
        return None
    name = choose_name(_list(resource.get("name")))
    if not name:
        return _str(resource.get("name"))
    family, given = name_parts(name)
    prefix = [p for p in (_str(x) for x in _list(name.get("prefix"))) if p]
    return _join([*prefix, *given, family], " ")


def _who(reference: Any, index: BundleIndex, container: Json) -> str | None:
    r = _obj(reference)
    if not r:
        return None
    if _str(r.get("display")):
        return _str(r.get("display"))
    target = index.ref(r, container)
    if target and target.get("resourceType") == "PractitionerRole":
        target = index.ref(target.get("practitioner"), target)
    return _person_name(target)


def map_allergy(r: Json, index: BundleIndex, resolved_list: bool = False) -> Entry:
    end_ext = next(iter(_extensions(r, "Extension-CareConnect-GPC-AllergyIntoleranceEnd-1")), None)
    end_date = _str(_sub_ext(end_ext, "endDate", "valueDateTime")) if end_ext else None
    end_reason = _str(_sub_ext(end_ext, "reasonEnded", "valueString")) if end_ext else None
    clinical = status_code(r.get("clinicalStatus"))
    resolved = resolved_list or clinical == "resolved" or end_ext is not None
    reactions = [x for x in (_obj(y) for y in _list(r.get("reaction"))) if x]
    manifestations = [concept_text(m) for x in reactions for m in _list(x.get("manifestation"))]
    severity = next((_str(x.get("severity")) for x in reactions if _str(x.get("severity"))), None)
    criticality = _str(r.get("criticality"))
    reaction = _join(dict.fromkeys(m for m in manifestations if m), ", ")
    ended = None
    if resolved:
        ended = _join((f"Ended {_date(end_date)}" if end_date else "Resolved", end_reason), ": ")
    detail = _join((_join([m for m in manifestations if m], ", "),
                    f"severity {severity}" if severity else None,
                    f"criticality {criticality}" if criticality else None, ended))
    code = r.get("code")
    substance = next((concept_text(x.get("substance")) for x in reactions if x.get("substance")), None)
    return Entry(text=concept_text(code) or substance or "Allergy (substance not named)",
                 when=_first(r, "onsetDateTime", "assertedDate"),
                 status="resolved" if resolved else (clinical or "active"), detail=detail,
                 coding=preferred_coding(code), resource_type="AllergyIntolerance", resource_id=_str(r.get("id")),
                 reaction=reaction, severity=severity or criticality)


def _medication_name(r: Json, index: BundleIndex) -> tuple[str | None, Any]:
    if r.get("medicationCodeableConcept") is not None:
        return concept_text(r["medicationCodeableConcept"]), r["medicationCodeableConcept"]
    ref = _obj(r.get("medicationReference"))
    if ref is None:
        return None, None
    target = index.ref(ref, r)
    concept = target.get("code") if target and target.get("resourceType") == "Medication" else None
    return concept_text(concept) or _str(ref.get("display")), concept


def _key(resource: Json | None) -> str | None:
    if not resource:
        return None
    kind, rid = _str(resource.get("resourceType")), _str(resource.get("id"))
    if not kind or not rid:
        return None
    return f"{kind}/{rid[len(kind) + 1:] if rid.startswith(kind + '/') else rid}"


def _prescription_type(plan: Json | None) -> str | None:
    if not plan:
        return None
    value = _ext_value(plan, "Extension-CareConnect-GPC-PrescriptionType-1", "valueCodeableConcept")
    return concept_text(value) if value is not None else None


_PAST_MEDICATION = {"completed", "stopped", "entered-in-error", "cancelled", "not-taken"}


def medication_group(status: str | None, plan: Json | None, ends: str | None, today: date) -> str | None:
    """repeat | acute while current; past once completed, stopped or ended (the effective period's end, or the
    plan's validity, before today). The kind is the plan's prescription type (acute; repeat and repeat
    dispensing are repeats); None when the practice does not say."""
    end = full_date(ends)
    if (status or "").lower() in _PAST_MEDICATION or (end is not None and end < today):
        return "past"
    value = _ext_value(plan, "Extension-CareConnect-GPC-PrescriptionType-1", "valueCodeableConcept") if plan else None
    codes = [(_str(c.get("code")) or _str(c.get("display")) or "").lower()
             for c in (_obj(x) for x in _list((_obj(value) or {}).get("coding"))) if c]
    codes.append((_str((_obj(value) or {}).get("text")) or "").lower())
    if any(c.startswith("repeat") for c in codes) or (plan and _extensions(plan, "MedicationRepeatInformation-1")):
        return "repeat"
    if any(c.startswith("acute") or c.startswith("delayed") for c in codes):
        return "acute"
    return None


def _status_change(plan: Json | None, status: str | None) -> str | None:
    """'Stopped 16-May-2024: Side effects', from the plan's MedicationStatusReason extension."""
    found = next(iter(_extensions(plan, "Extension-CareConnect-GPC-MedicationStatusReason-1")), None) if plan else None
    if found is None:
        return None
    when = _str(_sub_ext(found, "statusChangeDate", "valueDateTime"))
    reason = _sub_ext(found, "statusReason", "valueCodeableConcept")
    what = (status or "changed").replace("-", " ").capitalize()
    return _join((_join((what, _date(when) if when else None), " "), concept_text(reason) if reason else None), ": ")


def _issue_summary(issues: list[Json], last_issue_ext: str | None) -> str | None:
    dates = sorted(d for d in (_first(i, "authoredOn", "dispenseRequest.validityPeriod.start") for i in issues) if d)
    last = dates[-1] if dates else last_issue_ext
    if not issues and not last:
        return None
    count = f"{len(issues)} issue{'' if len(issues) == 1 else 's'}" if issues else None
    return _join((f"last issued {_date(last)}" if last else None, count), ", ")


def map_medications(statements: list[Json], requests: list[Json], index: BundleIndex,
                    today: date | None = None) -> tuple[list[Entry], int]:
    """One line per MedicationStatement (with its plan's type and its issues summarised); a plan that no
    statement is based on gets a line of its own. Issues (intent 'order') are never lines. Each line's group
    says whether it is a current repeat, a current acute or past (`medication_group`)."""
    today = today or date.today()
    orders_by_plan: dict[str, list[Json]] = defaultdict(list)
    plans = [r for r in requests if _str(r.get("intent")) != "order"]
    for order in (r for r in requests if _str(r.get("intent")) == "order"):
        for based in _list(order.get("basedOn")):
            plan_key = _key(index.ref(based, order))
            if plan_key:
                orders_by_plan[plan_key].append(order)
    entries: list[Entry] = []
    skipped = 0
    covered: set[str] = set()
    for st in statements:
        try:
            plan = next((p for p in (index.ref(b, st) for b in _list(st.get("basedOn")))
                         if p and p.get("resourceType") == "MedicationRequest"), None)
            plan_key = _key(plan)
            if plan_key:
                covered.add(plan_key)
            name, concept = _medication_name(st, index)
            last_ext = _str(_ext_value(st, "MedicationStatementLastIssueDate-1", "valueDateTime"))
            end = _first(st, "effectivePeriod.end")
            status = _str(st.get("status"))
            changed = _status_change(plan, status)
            detail = _join((dosage_text(_list(st.get("dosage"))), _prescription_type(plan),
                            _issue_summary(orders_by_plan.get(plan_key or "", []), last_ext),
                            changed or (f"ends {_date(end)}" if end else None)))
            ends = end or (_first(plan, "dispenseRequest.validityPeriod.end") if plan else None)
            entries.append(Entry(text=name or "Medication (not named)",
                                 when=_first(st, "effectivePeriod.start", "effectiveDateTime", "dateAsserted"),
                                 status=status, detail=detail, coding=preferred_coding(concept),
                                 resource_type="MedicationStatement", resource_id=_str(st.get("id")),
                                 group=medication_group(status, plan, ends, today)))
        except _SKIPPABLE:
            skipped += 1
    for plan in plans:
        if _key(plan) in covered:
            continue
        try:
            name, concept = _medication_name(plan, index)
            detail = _join((dosage_text(_list(plan.get("dosageInstruction"))), _prescription_type(plan),
                            _issue_summary(orders_by_plan.get(_key(plan) or "", []), None)))
            status = _str(plan.get("status"))
            entries.append(Entry(text=name or "Medication (not named)", when=_first(plan, "authoredOn"),
                                 status=status, detail=detail, coding=preferred_coding(concept),
                                 resource_type="MedicationRequest", resource_id=_str(plan.get("id")),
                                 group=medication_group(status, plan,
                                                        _first(plan, "dispenseRequest.validityPeriod.end"), today)))
        except _SKIPPABLE:
            skipped += 1
    return entries, skipped


def _significance(r: Json) -> str | None:
    value = _ext_value(r, "ProblemSignificance-1", "valueCode")  # with or without "GPC-"
    if isinstance(value, list):  # seen in the wild: a list of codings where a code belongs
        value = next((v.get("code") for v in value if isinstance(v, dict)), None)
    code = _str(value)
    return f"{code.capitalize()} significance" if code else None


def map_problem(r: Json, index: BundleIndex) -> Entry:
    """A problem header: active while its clinicalStatus is active and it has not ended; past otherwise."""
    ended = _first(r, "abatementDateTime", "abatementPeriod.start", "abatementPeriod.end")
    detail = _join((_significance(r), f"Ended {_date(ended)}" if ended else None))
    code = r.get("code")
    status = status_code(r.get("clinicalStatus"))
    active = (status or "active").lower() in ("active", "recurrence", "relapse") and not ended
    return Entry(text=concept_text(code) or "Problem (not named)",
                 when=_first(r, "onsetDateTime", "onsetPeriod.start", "assertedDate"),
                 status=status, detail=detail, coding=preferred_coding(code),
                 resource_type="Condition", resource_id=_str(r.get("id")), group="active" if active else "past")


def map_encounter(r: Json, index: BundleIndex, topics: list[str], notes: str | None = None) -> Entry:
    types = _list(r.get("type"))
    text = next((t for t in (concept_text(x) for x in types) if t), None)
    people: list[str] = []
    for participant in (_obj(p) for p in _list(r.get("participant"))):
        name = _who((participant or {}).get("individual"), index, r)
        if name and name not in people:
            people.append(name)
    location = _who((_obj((_list(r.get("location")) or [None])[0]) or {}).get("location")
                    if r.get("location") else None, index, r)
    detail = _join((_join(people, ", "), location, f"Topics: {', '.join(topics)}" if topics else None))
    return Entry(text=text or "Consultation", when=_first(r, "period.start"), status=_str(r.get("status")),
                 detail=detail, coding=preferred_coding(types[0]) if types else None, resource_type="Encounter",
                 resource_id=_str(r.get("id")), notes=notes)


def _topic_title(topic: Json, index: BundleIndex) -> str | None:
    """A topic's title, else the name of the problem it is about."""
    title = _str(topic.get("title"))
    if not title:
        problem = index.ref(_ext_value(topic, "Extension-CareConnect-RelatedProblemHeader-1", "valueReference"),
                            topic)
        title = concept_text(problem.get("code")) if problem else None
    return title


def _consultation_notes(lists: list[Json], index: BundleIndex) -> tuple[dict[str, str], set[str]]:
    """(encounter key -> its consultation's notes, keys of the comment notes the notes hold)."""
    notes: dict[str, str] = {}
    carried: set[str] = set()
    for consultation in (x for x in lists if list_code(x) == CONSULTATION):
        encounter_key = _key(index.ref(consultation.get("encounter"), consultation))
        if not encounter_key:
            continue
        text = consultation_notes(consultation, index.ref, lambda topic: _topic_title(topic, index))
        if text:
            notes[encounter_key] = "\n".join(filter(None, (notes.get(encounter_key), text)))
        stack = [consultation]
        while stack:
            lst = stack.pop()
            for item in _list(lst.get("entry")):
                target = index.ref((_obj(item) or {}).get("item"), lst)
                if target and target.get("resourceType") == "List" and target is not lst:
                    stack.append(target)
                elif target and is_comment_note(target) and _key(target):
                    carried.add(_key(target) or "")
    return notes, carried


def _consultation_topics(lists: list[Json], index: BundleIndex) -> dict[str, list[str]]:
    """Encounter key -> topic headings, e.g. 'Anxiety with Depression (History, Examination, Plan)'."""
    topics: dict[str, list[str]] = {}
    for consultation in (x for x in lists if list_code(x) == CONSULTATION):
        encounter_key = _key(index.ref(consultation.get("encounter"), consultation))
        if not encounter_key:
            continue
        headings: list[str] = []
        for item in _list(consultation.get("entry")):
            topic = index.ref((_obj(item) or {}).get("item"), consultation)
            if not topic or topic.get("resourceType") != "List":
                continue
            title = _topic_title(topic, index)
            categories = [_str(c.get("title")) for c in (index.ref((_obj(i) or {}).get("item"), topic)
                                                         for i in _list(topic.get("entry")))
                          if c and c.get("resourceType") == "List" and list_code(c) == CATEGORY]
            cats = _join([c for c in categories if c], ", ")
            headings.append(f"{title or 'Untitled topic'} ({cats})" if cats else (title or "Untitled topic"))
        topics[encounter_key] = headings
    return topics


_UNKNOWN_VACCINE = {"UNK", "unknown", "Unknown"}


def map_immunization(r: Json, index: BundleIndex) -> Entry:
    vaccine = r.get("vaccineCode")
    procedure = _ext_value(r, "Extension-CareConnect-VaccinationProcedure-1", "valueCodeableConcept")
    vaccine_text = concept_text(vaccine)
    if not vaccine_text or vaccine_text in _UNKNOWN_VACCINE or vaccine_text == "Code UNK":
        vaccine_text = None
    text = vaccine_text or concept_text(procedure) or "Vaccine (not named)"
    not_given = r.get("notGiven") is True or _str(r.get("status")) == "not-done"
    explanation = _obj(r.get("explanation")) or {}
    if not_given:
        reasons = _join([concept_text(x) for x in _list(explanation.get("reasonNotGiven"))], ", ")
        detail: str | None = f"Not given: {reasons}" if reasons else "Not given"
    else:
        protocols = [_obj(p) or {} for p in _list(r.get("vaccinationProtocol"))]
        dose = next((p.get("doseSequence") for p in protocols if p.get("doseSequence")), None)
        detail = _join((f"Dose {dose}" if dose else None,
                        concept_text(procedure) if vaccine_text and procedure else None,
                        _str(r.get("lotNumber")) and f"batch {_str(r.get('lotNumber'))}"))
    return Entry(text=text, when=_first(r, "date", "occurrenceDateTime"),
                 status="not given" if not_given else _str(r.get("status")), detail=detail,
                 coding=preferred_coding(vaccine if vaccine_text else procedure), resource_type="Immunization",
                 resource_id=_str(r.get("id")))


def map_observation(r: Json, index: BundleIndex, report: ReportOf | None = None) -> Entry:
    """A result or observation with its values (`measurements`), and the report it belongs to, whose date it
    takes when it has none of its own (a pathology result is dated by its report)."""
    value = observation_value(r)
    if not value and r.get("related"):
        members = sum(1 for x in _list(r.get("related")) if _str((_obj(x) or {}).get("type")) == "has-member")
        value = f"{members} result{'' if members == 1 else 's'}" if members else None
    comment = _str(r.get("comment"))
    code = r.get("code")
    when = _first(r, "effectiveDateTime", "effectivePeriod.start", "issued") or (report.when if report else None)
    return Entry(text=concept_text(code) or "Observation (not named)", when=when,
                 status=_str(r.get("status")), detail=_join((value, comment)), coding=preferred_coding(code),
                 resource_type="Observation", resource_id=_str(r.get("id")), measurements=measurements(r),
                 report=report.title if report else None, report_id=report.report_id if report else None)


def map_report(r: Json, index: BundleIndex, title: str | None = None, values: int | None = None) -> Entry:
    """The report itself, heading its results (same `report_id`): who reported and what they concluded."""
    results = values if values is not None else len(_list(r.get("result")))
    code = r.get("code")
    performer = next((_who((_obj(p) or {}).get("actor"), index, r) for p in _list(r.get("performer"))), None)
    detail = _join((f"{results} result{'' if results == 1 else 's'}" if results else None,
                    _str(r.get("conclusion")), performer))
    text = title or concept_text(code) or "Investigation report"
    return Entry(text=text, when=_first(r, "effectiveDateTime", "effectivePeriod.start", "issued"),
                 status=_str(r.get("status")), detail=detail, coding=preferred_coding(code),
                 resource_type="DiagnosticReport", resource_id=_str(r.get("id")), report=text,
                 report_id=_str(r.get("id")))


# --- the whole bundle ------------------------------------------------------------------------------

def _warning_codes(resource: Json) -> list[str]:
    return [c for c in (_str(e.get("valueCode")) for e in _extensions(resource, "ListWarningCode-1")) if c]


def _outcome_issues(resource: Json) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(Spine code, text, diagnostics) of each issue of an OperationOutcome."""
    for issue in (_obj(x) for x in _list(resource.get("issue"))):
        if not issue:
            continue
        details = _obj(issue.get("details")) or {}
        codings = [c for c in (_obj(x) for x in _list(details.get("coding"))) if c]
        code = next((_str(c.get("code")) for c in codings if _str(c.get("code"))), None)
        yield code, _str(details.get("text")), _str(issue.get("diagnostics"))


def map_structured_bundle(bundle: Any, practice_id: str, requested: Iterable[SectionName] = tuple(SectionName),
                          nhs_number_asked: str | None = None, today: date | None = None) -> StructuredRecord:
    """Map a getstructuredrecord reply. `requested` are the sections the request asked for; the others
    stay None in `entries` whatever the bundle holds. `today` (default: the local date) decides which
    medications have ended."""
    requested = set(requested)
    index = BundleIndex()
    resources: list[Json] = []
    for full_url, resource in bundle_resources(bundle):
        index.add(resource, full_url)
        resources.append(resource)
    by_type: dict[str, list[Json]] = defaultdict(list)
    for resource in resources:
        by_type[_str(resource.get("resourceType")) or ""].append(resource)

    patients = by_type.get("Patient", [])
    if nhs_number_asked:
        patients = sorted(patients, key=lambda p: nhs_number(_list(p.get("identifier"))) != nhs_number_asked)
    patient = None
    if patients:
        # the search row's facts; death, address and registration are read below, where each may fail alone
        summary = map_patient({k: v for k, v in patients[0].items() if k not in _READ_HERE}, practice_id)
        local = summary.nhs_number or nhs_number_asked or summary.local_id
        # what the banner adds (death, address, registration) never sinks the record: unreadable, it is unknown
        patient = replace(summary, local_id=local, deceased=_or(lambda: deceased(patients[0]), False),
                          address=_or(lambda: home_address(patients[0]), None),
                          registration=_or(lambda: registration(patients[0], index.ref), None))
    record = StructuredRecord(patient=patient,
                              contact=patient_contact(patients[0], by_type.get("Flag", [])) if patients else None)
    if patients and any(about_someone_else(r, patients[0], index) for r in resources):
        record.about_someone_else = True

    lists = by_type.get("List", [])
    answered: set[SectionName] = set()
    resolved_allergies: list[Json] = []
    resolved_keys: set[str] = set()
    immunisation_items: set[str] = set()
    for lst in lists:
        code = list_code(lst)
        section = LIST_SECTION.get(code or "")
        title = (_str(lst.get("title")) or "").lower()
        if section is None and "allerg" in title:
            section = SectionName.ALLERGIES
        if section is None:
            continue
        answered.add(section)
        if section is SectionName.ALLERGIES and (code == ENDED_ALLERGIES or "resolved" in title or "ended" in title):
            for contained in _list(lst.get("contained")):
                if isinstance(contained, dict) and contained.get("resourceType") == "AllergyIntolerance":
                    resolved_allergies.append(contained)
            for item in _list(lst.get("entry")):
                target = index.ref((_obj(item) or {}).get("item"), lst)
                if target and _key(target):
                    resolved_keys.add(_key(target) or "")
        if section is SectionName.IMMUNISATIONS:
            for item in _list(lst.get("entry")):
                target = index.ref((_obj(item) or {}).get("item"), lst)
                if target and _key(target):
                    immunisation_items.add(_key(target) or "")
        if section in requested:
            for warning in _warning_codes(lst):
                sentence = WARNING_TEXT.get(warning, f"the practice flagged this section ({warning}).")
                flagged = f"{SECTION_TITLES[section]}: {sentence}"
                if flagged not in record.warnings:
                    record.warnings.append(flagged)
            if lst.get("entry") and not lst.get("emptyReason"):
                for note in (_obj(n) for n in _list(lst.get("note"))):
                    note_text = _str((note or {}).get("text"))
                    text = f"{SECTION_TITLES[section]}: {note_text}" if note_text else None
                    # a provider often words its warning code as a note too: say it once
                    if text and text.casefold() not in {w.casefold() for w in record.warnings}:
                        record.warnings.append(text)

    for outcome in by_type.get("OperationOutcome", []):
        for code, text, diagnostics in _outcome_issues(outcome):
            if code == "NOT_IMPLEMENTED" and diagnostics:
                record.not_implemented.add(diagnostics)
            elif text or diagnostics:
                record.warnings.append(f"The practice noted: {text or diagnostics}")

    entries: dict[SectionName, list[Entry]] = defaultdict(list)

    def add(section: SectionName, build: Any, *args: Any) -> None:
        try:
            entries[section].append(build(*args))
        except _SKIPPABLE:
            record.skipped[section] += 1

    for r in by_type.get("AllergyIntolerance", []):
        add(SectionName.ALLERGIES, map_allergy, r, index, _key(r) in resolved_keys)
    for r in resolved_allergies:
        add(SectionName.ALLERGIES, map_allergy, r, index, True)
    meds, skipped = map_medications(by_type.get("MedicationStatement", []), by_type.get("MedicationRequest", []),
                                    index, today)
    entries[SectionName.MEDICATIONS].extend(meds)
    record.skipped[SectionName.MEDICATIONS] += skipped
    for r in by_type.get("Condition", []):
        add(SectionName.PROBLEMS, map_problem, r, index)
    topics: dict[str, list[str]] = _or(lambda: _consultation_topics(lists, index), {})
    notes: dict[str, str] = {}
    carried: set[str] = set()
    if SectionName.ENCOUNTERS in requested:
        try:
            notes, carried = _consultation_notes(lists, index)
        except _SKIPPABLE:  # the consultations are still listed; their notes are said to be missing
            record.warnings.append(f"{SECTION_TITLES[SectionName.ENCOUNTERS]}: the notes could not be read and "
                                   "are not shown.")
    for r in by_type.get("Encounter", []):
        add(SectionName.ENCOUNTERS, map_encounter, r, index, topics.get(_key(r) or "", []), notes.get(_key(r) or ""))
    for r in by_type.get("Immunization", []):
        add(SectionName.IMMUNISATIONS, map_immunization, r, index)
    reports = by_type.get("DiagnosticReport", [])
    try:
        report_of, report_values = report_membership(reports, index.ref, _key)
    except _SKIPPABLE:  # every result is still listed, each on its own
        report_of, report_values = {}, {}
    for r in by_type.get("Observation", []):
        key = _key(r) or ""
        if key in carried:  # a consultation's free text: read in its notes, not as a result
            continue
        if key in report_of and _or(lambda r=r: _is_grouped(r, index), False):  # a test group: its members
            continue  # carry its name as their report
        section = SectionName.IMMUNISATIONS if key in immunisation_items else SectionName.OBSERVATIONS
        add(section, map_observation, r, index, report_of.get(key))
    titles = {of.report_id: of.title for of in report_of.values()}
    for r in reports:
        add(SectionName.OBSERVATIONS, map_report, r, index, titles.get(_str(r.get("id"))),
            report_values.get(_key(r) or ""))

    present = {s for s, t in ((_RESOURCE_SECTION.get(k), v) for k, v in by_type.items()) if s and t}
    for section in SectionName:
        if section not in requested:
            record.entries[section] = None
        elif section in answered or section in present or entries.get(section):
            record.entries[section] = sort_newest_first(entries.get(section, []))
        else:
            record.entries[section] = None
    return record


def about_someone_else(resource: Json, patient: Json, index: BundleIndex) -> bool:
    """Whether `resource` names another patient than `patient` (the bundle's patient) as its subject or patient:
    a reference that resolves to another Patient of the bundle (or a contained one) with another NHS number, or
    a logical reference by a valid NHS number that is not the patient's. A reference that resolves to nothing
    passes (the specification's own examples carry dangling ones)."""
    if resource is patient or resource.get("resourceType") == "Patient":
        return False
    own = nhs_number(_list(patient.get("identifier")))
    for key in ("subject", "patient"):
        ref = _obj(resource.get(key))
        if not ref:
            continue
        target = index.ref(ref, resource)
        if target is not None and target is not patient and target.get("resourceType") == "Patient" \
                and nhs_number(_list(target.get("identifier"))) != own:
            return True
        named = nhs_number([ref.get("identifier")])
        if named is not None and named != own:
            return True
    return False


_READ_HERE = {"extension", "deceasedBoolean", "deceasedDateTime", "generalPractitioner", "managingOrganization"}


def _or(read: Any, fallback: Any) -> Any:
    """read(), or `fallback` when what it reads is malformed."""
    try:
        return read()
    except _SKIPPABLE:
        return fallback


def _is_grouped(observation: Json, index: BundleIndex) -> bool:
    """A test group whose members came too (a group whose members are missing stays a line of its own)."""
    if not is_test_group(observation):
        return False
    return any(index.ref(m, observation) is not None for m in members(observation))


def spine_issues(outcome: Any) -> list[tuple[str | None, str | None, str | None]]:
    """The (code, text, diagnostics) of an OperationOutcome's issues; [] for anything else."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return []
    return list(_outcome_issues(outcome))


__all__ = ["BundleIndex", "StructuredRecord", "map_structured_bundle", "spine_issues", "WARNING_TEXT",
           "SECTION_PARAMETERS", "LIST_WARNING_URL", "SPINE_CODES"]
