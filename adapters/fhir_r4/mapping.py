"""Pure functions from FHIR R4 JSON to the core's model. No I/O, no logging of content.

Real servers send odd things: names with only `text`, codes without a display, partial dates,
contained or referenced Medications, STU3 habits (a plain-string clinicalStatus). Optional data
that is missing is tolerated; a resource whose *shape* is wrong (an object where a list belongs,
say) raises, and `map_resources` skips it and counts it so one bad row never sinks a section.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from html.parser import HTMLParser
from typing import Any

from app.core.display import format_partial_date
from app.core.display import measurement_flag as worked_out_flag  # the flag as sent, else from the range
from app.core.model import (
    REGISTRATION_TYPES,
    Address,
    Coding,
    Entry,
    Measurement,
    PatientSummary,
    Registration,
    SectionName,
)
from app.core.nhs_number import NHS_NUMBER_SYSTEM, is_valid, normalise

NHS_NUMBER_SYSTEMS = (NHS_NUMBER_SYSTEM, "http://fhir.nhs.net/Id/nhs-number")
SNOMED = "http://snomed.info/sct"

SECTION_OF: dict[str, SectionName] = {
    "Condition": SectionName.PROBLEMS,
    "MedicationRequest": SectionName.MEDICATIONS,
    "MedicationStatement": SectionName.MEDICATIONS,
    "AllergyIntolerance": SectionName.ALLERGIES,
    "Encounter": SectionName.ENCOUNTERS,
    "Observation": SectionName.OBSERVATIONS,
    "Immunization": SectionName.IMMUNISATIONS,
}

Json = dict[str, Any]
#: resolve(reference, container) -> the referenced resource, or None when it is not at hand
Resolver = Callable[[str, Json], "Json | None"]


class MalformedResource(ValueError):
    """A resource whose structure is not FHIR (wrong JSON types where the spec fixes them)."""


# --- small, strict accessors ---------------------------------------------------------------------

def _list(value: Any) -> list[Any]:
    """A FHIR array. A lone object is accepted as a one-item list; a string or number is malformed."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    raise MalformedResource(f"expected a list, got {type(value).__name__}")


def _obj(value: Any) -> Json | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    raise MalformedResource(f"expected an object, got {type(value).__name__}")


def _str(value: Any) -> str | None:
    """A non-blank string, trimmed; anything else is None (numbers where strings belong are tolerated)."""
    if type(value) is str:  # the common case first: ~40 calls a search result
        return value.strip() or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _path(resource: Json, dotted: str) -> str | None:
    """`_path(r, "onsetPeriod.start")`: a string at the end of a chain of objects, or None."""
    node: Any = resource
    for key in _keys(dotted):
        node = _obj(node)
        if node is None:
            return None
        node = node.get(key)
    return _str(node)


@functools.cache
def _keys(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def _first(resource: Json, *paths: str) -> str | None:
    for dotted in paths:
        value = _path(resource, dotted)
        if value:
            return value
    return None


def _join(parts: Iterable[str | None], sep: str = "; ") -> str | None:
    kept = [p for p in parts if p]
    return sep.join(kept) if kept else None


# --- datatypes -----------------------------------------------------------------------------------

def preferred_coding(concept: Any) -> Coding | None:
    """SNOMED CT first, else the first coding with a display, else the first coding."""
    codings = [c for c in (_obj(x) for x in _list((_obj(concept) or {}).get("coding"))) if c]
    if not codings:
        return None
    chosen = next((c for c in codings if c.get("system") == SNOMED and _str(c.get("code"))),
                  next((c for c in codings if _str(c.get("display"))), codings[0]))
    return Coding(_str(chosen.get("system")), _str(chosen.get("code")), _str(chosen.get("display")))


def concept_text(concept: Any) -> str | None:
    """CodeableConcept.text, else the first coding display, else 'Code <code>'."""
    cc = _obj(concept)
    if cc is None:
        return None
    if _str(cc.get("text")):
        return _str(cc.get("text"))
    codings = [c for c in (_obj(x) for x in _list(cc.get("coding"))) if c]
    for coding in codings:
        if _str(coding.get("display")):
            return _str(coding.get("display"))
    for coding in codings:
        if _str(coding.get("code")):
            return f"Code {_str(coding.get('code'))}"
    return None


def status_code(value: Any) -> str | None:
    """A status that R4 gives as a CodeableConcept and STU3 as a plain code."""
    if isinstance(value, str):
        return _str(value)
    coding = preferred_coding(value)
    if coding and coding.code:
        return coding.code
    return concept_text(value)


_UNITS = {"mm[Hg]": "mmHg", "Cel": "°C", "[degF]": "°F", "[lb_av]": "lb", "[in_i]": "in", "kg/m2": "kg/m²"}


def _unit(text: str | None) -> str:
    if not text:
        return ""
    text = _UNITS.get(text, text)
    return re.sub(r"\{[^}]*\}", "", text).strip()


def format_number(value: Any, decimals: int | None = None) -> str:
    """Numbers as a clinician reads them: 155.1, 72.25, 0.0123, never 155.11789096477264."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResource(f"expected a number, got {type(value).__name__}")
    if decimals is None:
        magnitude = abs(value)
        decimals = 1 if magnitude >= 100 else 2 if magnitude >= 1 else 4
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_quantity(quantity: Any, decimals: int | None = None) -> str | None:
    q = _obj(quantity)
    if not q or q.get("value") is None:
        return None
    comparator = _str(q.get("comparator")) or ""
    unit = _unit(_str(q.get("unit")) or _str(q.get("code")))
    number = format_number(q["value"], decimals)
    return f"{comparator}{number} {unit}".strip()


# Blood pressure components (LOINC and SNOMED CT codes), shown as "120/80 mmHg".
_SYSTOLIC = {"8480-6", "271649006", "72313002"}
_DIASTOLIC = {"8462-4", "271650006", "1091811000000102"}


def _codes(concept: Any) -> set[str]:
    return {c for c in (_str((_obj(x) or {}).get("code")) for x in _list((_obj(concept) or {}).get("coding")))
            if c}


def _value(holder: Json, resolve: Resolver | None = None) -> str | None:
    """An Observation's (or component's) value[x] as text."""
    if holder.get("valueQuantity") is not None:
        return format_quantity(holder["valueQuantity"])
    if holder.get("valueCodeableConcept") is not None:
        return concept_text(holder["valueCodeableConcept"])
    if isinstance(holder.get("valueBoolean"), bool):
        return "Yes" if holder["valueBoolean"] else "No"
    if holder.get("valueInteger") is not None:
        return format_number(holder["valueInteger"])
    for key in ("valueString", "valueDateTime", "valueTime"):
        if _str(holder.get(key)):
            return _str(holder.get(key))
    if holder.get("valueRange") is not None:
        rng = _obj(holder["valueRange"]) or {}
        return _join((format_quantity(rng.get("low")), format_quantity(rng.get("high"))), " to ")
    if holder.get("valueRatio") is not None:
        ratio = _obj(holder["valueRatio"]) or {}
        return _join((format_quantity(ratio.get("numerator")), format_quantity(ratio.get("denominator"))), "/")
    if holder.get("valuePeriod") is not None:
        period = _obj(holder["valuePeriod"]) or {}
        return _join((_str(period.get("start")), _str(period.get("end"))), " to ")
    if holder.get("valueSampledData") is not None:
        return "(sampled data)"
    if holder.get("dataAbsentReason") is not None:
        reason = concept_text(holder["dataAbsentReason"])
        return f"No value ({reason})" if reason else "No value"
    return None


def _components(observation: Json) -> str | None:
    parts = [c for c in (_obj(x) for x in _list(observation.get("component"))) if c]
    if not parts:
        return None
    systolic = next((c for c in parts if _codes(c.get("code")) & _SYSTOLIC), None)
    diastolic = next((c for c in parts if _codes(c.get("code")) & _DIASTOLIC), None)
    if systolic and diastolic and systolic.get("valueQuantity") and diastolic.get("valueQuantity"):
        sys_q, dia_q = _obj(systolic["valueQuantity"]) or {}, _obj(diastolic["valueQuantity"]) or {}
        if sys_q.get("value") is not None and dia_q.get("value") is not None:
            unit = _unit(_str(sys_q.get("unit")) or _str(sys_q.get("code"))) or "mmHg"
            return f"{format_number(sys_q['value'], 0)}/{format_number(dia_q['value'], 0)} {unit}"
    rendered = []
    for comp in parts:
        name, value = concept_text(comp.get("code")), _value(comp)
        if value:
            rendered.append(f"{name}: {value}" if name else value)
    return _join(rendered)


def reference_display(ref: Any, container: Json, resolve: Resolver | None) -> str | None:
    """What a Reference names: its display, else the name of the resource it points to."""
    r = _obj(ref)
    if r is None:
        return None
    if _str(r.get("display")):
        return _str(r.get("display"))
    target = _resolve(r, container, resolve)
    if target is None:
        return None
    kind = target.get("resourceType")
    if kind == "Medication":
        return concept_text(target.get("code"))
    if kind in ("Practitioner", "Patient", "RelatedPerson"):
        name = choose_name(_list(target.get("name")))
        if name:
            family, given = name_parts(name)
            return _join([*_list_str(_list(name.get("prefix"))), *given, family], " ")
        return None
    return _str(target.get("name"))


def _list_str(values: list[Any]) -> list[str]:
    return [s for s in (_str(v) for v in values) if s]


def _resolve(ref: Json, container: Json, resolve: Resolver | None) -> Json | None:
    reference = _str(ref.get("reference"))
    if not reference:
        return None
    if reference.startswith("#"):
        wanted = reference[1:]
        for contained in _list(container.get("contained")):
            if isinstance(contained, dict) and contained.get("id") == wanted:
                return contained
        return None
    return resolve(reference, container) if resolve else None


class ResourceIndex:
    """Finds resources by reference ('Type/id', an absolute URL, a urn:uuid fullUrl, or '#contained').

    Built from the resources of a Bundle so that, say, a MedicationRequest's medicationReference can
    be named from the Medication that came in the same reply.
    """

    def __init__(self, entries: Iterable[tuple[str | None, Any]] = ()) -> None:
        self._by_key: dict[str, Json] = {}
        for full_url, resource in entries:
            self.add(resource, full_url)

    def add(self, resource: Any, full_url: str | None = None) -> None:
        if not isinstance(resource, dict):
            return
        kind, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(rid, str):
            self._by_key.setdefault(f"{kind}/{rid}", resource)
        if isinstance(full_url, str) and full_url:
            self._by_key.setdefault(full_url, resource)

    def update(self, other: ResourceIndex) -> None:
        for key, resource in other._by_key.items():
            self._by_key.setdefault(key, resource)

    def __call__(self, reference: str, container: Json) -> Json | None:
        if reference in self._by_key:
            return self._by_key[reference]
        path = reference.split("/_history/", 1)[0]
        segments = path.rstrip("/").split("/")
        return self._by_key.get("/".join(segments[-2:])) if len(segments) >= 2 else None


# --- Patient --------------------------------------------------------------------------------------

_NAME_RANK = {"official": 0, "usual": 1, None: 2, "temp": 3, "nickname": 4, "anonymous": 5,
              "old": 8, "maiden": 9}


def _ended(element: Json) -> bool:
    if "period" not in element:  # most names, addresses and identifiers: no period at all
        return False
    end = _path(element, "period.end")
    return end[:10] < date.today().isoformat() if end else False


def choose_name(names: list[Any]) -> Json | None:
    """The name to show: official, then usual, then any other current name; old and maiden last."""
    candidates = [n for n in (_obj(x) for x in names) if n]
    if len(candidates) < 2:
        return candidates[0] if candidates else None
    return min(candidates, key=lambda n: (_ended(n), _NAME_RANK.get(_str(n.get("use")), 2)))


def name_parts(name: Json) -> tuple[str, tuple[str, ...]]:
    """(family, given) from a HumanName; from its `text` when it has no parts ('SMITH, Jane' or 'Jane Smith')."""
    family_raw = name.get("family")
    # DSTU2 sent family as a list; join rather than lose it.
    family = _join(_list_str(family_raw), " ") if isinstance(family_raw, list) else _str(family_raw)
    given_raw = name.get("given")
    given = tuple(_list_str(given_raw if isinstance(given_raw, list) else [given_raw]))
    if family or given:
        return family or "", given
    text = _str(name.get("text"))
    if not text:
        return "", ()
    text = re.sub(r"\([^)]*\)", "", text).strip()
    if "," in text:
        fam, _, rest = text.partition(",")
        return fam.strip(), tuple(rest.split())
    words = text.split()
    return (words[-1], tuple(words[:-1])) if words else ("", ())


def full_date(text: str | None) -> date | None:
    """A date from a FHIR date or dateTime; None when only a year or a month is known."""
    if not text or not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def nhs_number(identifiers: list[Any]) -> str | None:
    """The patient's NHS number (current, Modulus 11 valid), or None when there is none."""
    for ident in (_obj(x) for x in identifiers):
        if not ident or _str(ident.get("system")) not in NHS_NUMBER_SYSTEMS or _ended(ident):
            continue
        value = _str(ident.get("value"))
        if value and is_valid(value):
            return normalise(value)
    return None


_ADDRESS_RANK = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4, "old": 9}


def postcode(addresses: list[Any]) -> str | None:
    """The postcode of the home (or otherwise current) address."""
    candidates = [a for a in (_obj(x) for x in addresses) if a and _str(a.get("postalCode"))]
    if not candidates:
        return None
    best = min(candidates, key=lambda a: (_ended(a), _ADDRESS_RANK.get(_str(a.get("use")), 1)))
    return " ".join((_str(best.get("postalCode")) or "").upper().split())


def home_address(addresses: list[Any]) -> Address | None:
    """The home address (else the first current one): lines, city, district and postcode."""
    candidates = [a for a in (_obj(x) for x in addresses) if a]
    if not candidates:
        return None
    best = min(candidates, key=lambda a: (_ended(a), _ADDRESS_RANK.get(_str(a.get("use")), 1)))
    lines = tuple(_list_str(_list_or_str(best.get("line"))))
    code = _str(best.get("postalCode"))
    address = Address(lines=lines, city=_str(best.get("city")), district=_str(best.get("district")),
                      postcode=" ".join(code.upper().split()) if code else None)
    if not address.one_line():
        text = _str(best.get("text"))
        return Address(lines=tuple(p.strip() for p in text.split(",") if p.strip())) if text else None
    return address


def _list_or_str(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else _list(value)


def deceased(patient: Json) -> bool | date:
    """Patient.deceased[x]: the date of death when given (a year or month alone reads as "deceased", date
    unknown), True for deceasedBoolean true, False when absent or false."""
    when = _str(patient.get("deceasedDateTime"))
    if when:
        return full_date(when) or True
    return patient.get("deceasedBoolean") is True


#: the registration details extension: GP Connect's CareConnect-GPC-RegistrationDetails-1 (STU3 namespace,
#: which UK R4 servers reuse) and any NHS England / UK Core extension of that name, matched by its last part
_REGISTRATION_DETAILS = re.compile(r"RegistrationDetails(-\d+)?$", re.IGNORECASE)
_ODS_SYSTEMS = ("https://fhir.nhs.uk/Id/ods-organization-code", "https://fhir.nhs.uk/Id/ods-site-code")


def registration(patient: Json, resolve: Resolver | None = None) -> Registration | None:
    """Where the patient is registered: the practice (Patient.generalPractitioner's Organization, else
    managingOrganization), the usual GP (its Practitioner or PractitionerRole), and the registration type and
    start from the registration details extension. Names come from the reference's display, else from the
    referenced resource when it came in the same reply; nothing is fetched for them."""
    practice_name = practice_ods = gp = None
    refs = [r for r in (_obj(x) for x in _list(patient.get("generalPractitioner"))) if r]
    managing = _obj(patient.get("managingOrganization"))
    for ref in [*refs, *([managing] if managing else [])]:
        target = _resolve(ref, patient, resolve)
        kind = _str(ref.get("type")) or (target or {}).get("resourceType") or \
            (_str(ref.get("reference")) or "").rpartition("/")[0].rpartition("/")[2] or None
        if kind is None and _str(_path(ref, "identifier.system")) in _ODS_SYSTEMS:
            kind = "Organization"
        if kind == "Organization" and practice_name is None and practice_ods is None:
            practice_name = _str(ref.get("display")) or _str((target or {}).get("name"))
            practice_ods = _ods(ref, target)
        elif kind in ("Practitioner", "PractitionerRole") and gp is None:
            gp = reference_display(ref, patient, resolve)
    kind_text = since = None
    for ext in (_obj(x) for x in _list(patient.get("extension"))):
        if not ext or not _REGISTRATION_DETAILS.search(_str(ext.get("url")) or ""):
            continue
        for part in (_obj(x) for x in _list(ext.get("extension"))):
            url = _str((part or {}).get("url")) or ""
            if part and url.endswith("registrationType"):
                coding = preferred_coding(part.get("valueCodeableConcept"))
                code = coding.code if coding else None
                kind_text = REGISTRATION_TYPES.get(code or "") or concept_text(part.get("valueCodeableConcept"))
            elif part and url.endswith("registrationPeriod"):
                since = full_date(_path(part, "valuePeriod.start"))
    if not any((practice_name, practice_ods, gp, kind_text, since)):
        return None
    return Registration(practice_ods=practice_ods, practice_name=practice_name, gp=gp, kind=kind_text, since=since)


def _ods(ref: Json, target: Json | None) -> str | None:
    ident = _obj(ref.get("identifier"))
    if ident and _str(ident.get("system")) in _ODS_SYSTEMS:
        return _str(ident.get("value"))
    for ident in (_obj(x) for x in _list((target or {}).get("identifier"))):
        if ident and _str(ident.get("system")) in _ODS_SYSTEMS:
            return _str(ident.get("value"))
    return None


def map_patient(resource: Any, practice_id: str, resolve: Resolver | None = None) -> PatientSummary:
    """A Patient resource as a search result row (and a record's patient: death, address, registration)."""
    patient = _obj(resource)
    if patient is None or patient.get("resourceType") != "Patient" or not _str(patient.get("id")):
        raise MalformedResource("not a Patient with an id")
    name = choose_name(_list(patient.get("name")))
    family, given = name_parts(name) if name else ("", ())
    gender = _str(patient.get("gender"))
    return PatientSummary(
        practice_id=practice_id,
        local_id=_str(patient["id"]) or "",
        nhs_number=nhs_number(_list(patient.get("identifier"))),
        family=family,
        given=given,
        birth_date=full_date(_str(patient.get("birthDate"))),
        sex=gender if gender in ("male", "female", "other", "unknown") else None,
        postcode=postcode(_list(patient.get("address"))),
        deceased=deceased(patient),
        address=home_address(_list(patient.get("address"))),
        registration=registration(patient, resolve),
    )


# --- the six sections -------------------------------------------------------------------------------

def _entry(resource: Json, text: str | None, fallback: str, *, when: str | None, status: str | None,
           detail: str | None, concept: Any) -> Entry:
    return Entry(text=text or fallback, when=when, status=status, detail=detail,
                 coding=preferred_coding(concept), resource_type=_str(resource.get("resourceType")),
                 resource_id=_str(resource.get("id")))


def _with_verification(clinical: str | None, resource: Json) -> str | None:
    verification = status_code(resource.get("verificationStatus"))
    if verification and verification != "confirmed":
        return f"{clinical} ({verification})" if clinical else verification
    return clinical


_ACTIVE_PROBLEM = {"active", "recurrence", "relapse"}
_PAST_PROBLEM = {"inactive", "remission", "resolved"}


def problem_group(clinical_status: str | None, ended: bool) -> str | None:
    """active (active, recurrence, relapse) or past (inactive, remission, resolved; or an abatement with no
    status); None when the sender says neither."""
    code = (clinical_status or "").lower()
    if code in _ACTIVE_PROBLEM:
        return "active"
    if code in _PAST_PROBLEM or (not code and ended):
        return "past"
    return None


def map_condition(r: Json, resolve: Resolver | None = None) -> Entry:
    ended = _first(r, "abatementDateTime", "abatementPeriod.start", "abatementString")
    detail = f"Resolved {format_partial_date(ended[:10] if ended[:1].isdigit() else ended)}" if ended else None
    clinical = status_code(r.get("clinicalStatus"))
    entry = _entry(r, concept_text(r.get("code")), "Problem (not named)",
                   when=_first(r, "onsetDateTime", "onsetPeriod.start", "recordedDate", "onsetString",
                               "assertedDate"),
                   status=_with_verification(clinical, r), detail=detail, concept=r.get("code"))
    return replace(entry, group=problem_group(clinical, bool(ended or r.get("abatementBoolean") is True)))


def _medication(r: Json, resolve: Resolver | None) -> tuple[str | None, Any]:
    """(name, concept) of medication[x]: a CodeableConcept, or a contained/referenced Medication."""
    if r.get("medicationCodeableConcept") is not None:
        return concept_text(r["medicationCodeableConcept"]), r["medicationCodeableConcept"]
    ref = _obj(r.get("medicationReference"))
    if ref is not None:
        target = _resolve(ref, r, resolve)
        concept = target.get("code") if target and target.get("resourceType") == "Medication" else None
        return (concept_text(concept) or _str(ref.get("display"))), concept
    return None, None


_PER = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}
_TIMES = {1: "once", 2: "twice"}


def _timing(timing: Any) -> str | None:
    repeat = _obj((_obj(timing) or {}).get("repeat")) or {}
    freq, period, unit = repeat.get("frequency"), repeat.get("period"), _str(repeat.get("periodUnit"))
    if not isinstance(freq, int | float) or not isinstance(period, int | float) or unit not in _PER:
        return _str(_path(_obj(timing) or {}, "code.text"))
    times = _TIMES.get(int(freq), f"{format_number(freq)} times")
    if period == 1:
        article = "an" if unit == "h" else "a"
        return f"{times} {article} {_PER[unit]}"
    return f"{times} every {format_number(period)} {_PER[unit]}s"


def dosage_text(dosages: list[Any]) -> str | None:
    """Dosage.text when given, else a reading of the structured dose and timing."""
    first = next((d for d in (_obj(x) for x in dosages) if d), None)
    if first is None:
        return None
    if _str(first.get("text")):
        return _str(first.get("text"))
    dose = None
    for rate in (_obj(x) for x in _list(first.get("doseAndRate"))):
        if rate and rate.get("doseQuantity") is not None:
            dose = format_quantity(rate["doseQuantity"])
            break
    as_needed = "when required" if first.get("asNeededBoolean") is True else None
    return _join((dose, _timing(first.get("timing")), as_needed, _str(first.get("patientInstruction"))), ", ")


_PAST_MEDICATION = {"stopped", "completed", "cancelled", "entered-in-error", "not-taken", "ended"}
#: courseOfTherapyType (HL7 and UK Core) and prescription type (GP Connect / UK extensions) codes
_REPEAT_COURSES = {"continuous", "continuous-repeat-dispensing", "seasonal", "repeat", "repeat-dispensing"}
_ACUTE_COURSES = {"acute", "acute-handwritten", "delayed-prescribing"}


def medication_group(status: str | None, course: str | None, end: str | None, today: date | None = None) -> str | None:
    """past (stopped, completed, cancelled, entered in error, or its period has ended), else repeat or acute
    from the course of therapy / prescription type; None when the sender does not say."""
    if (status or "").lower() in _PAST_MEDICATION:
        return "past"
    if end and end[:10] < (today or date.today()).isoformat():
        return "past"
    code = (course or "").lower()
    if code in _REPEAT_COURSES:
        return "repeat"
    if code in _ACUTE_COURSES:
        return "acute"
    return None


def _course(r: Json) -> str | None:
    """The course of therapy, or a prescription type extension's code (GP Connect, UK Core)."""
    for coding in (_obj(x) for x in _list((_obj(r.get("courseOfTherapyType")) or {}).get("coding"))):
        if coding and _str(coding.get("code")):
            return _str(coding.get("code"))
    for ext in (_obj(x) for x in _list(r.get("extension"))):
        if ext and "prescriptiontype" in (_str(ext.get("url")) or "").lower():
            chosen = preferred_coding(ext.get("valueCodeableConcept"))
            if chosen and chosen.code:
                return chosen.code
    return None


def map_medication_request(r: Json, resolve: Resolver | None = None) -> Entry:
    name, concept = _medication(r, resolve)
    status = _str(r.get("status"))
    entry = _entry(r, name, "Medication (not named)", when=_first(r, "authoredOn"), status=status,
                   detail=dosage_text(_list(r.get("dosageInstruction"))), concept=concept)
    end = _path(r, "dispenseRequest.validityPeriod.end")
    return replace(entry, group=medication_group(status, _course(r), end))


def map_medication_statement(r: Json, resolve: Resolver | None = None) -> Entry:
    name, concept = _medication(r, resolve)
    status = _str(r.get("status"))
    entry = _entry(r, name, "Medication (not named)",
                   when=_first(r, "effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
                   status=status, detail=dosage_text(_list(r.get("dosage"))), concept=concept)
    return replace(entry, group=medication_group(status, _course(r), _path(r, "effectivePeriod.end")))


def map_allergy(r: Json, resolve: Resolver | None = None) -> Entry:
    reactions = [x for x in (_obj(y) for y in _list(r.get("reaction"))) if x]
    manifestations = [concept_text(m) for x in reactions for m in _list(x.get("manifestation"))]
    substance = next((concept_text(x.get("substance")) for x in reactions if x.get("substance")), None)
    criticality = _str(r.get("criticality"))
    reaction = _join(list(dict.fromkeys(m for m in manifestations if m)), ", ")
    detail = _join((reaction, f"criticality {criticality}" if criticality else None))
    entry = _entry(r, concept_text(r.get("code")) or substance, "Allergy (substance not named)",
                   when=_first(r, "onsetDateTime", "onsetPeriod.start", "recordedDate", "onsetString",
                               "assertedDate"),
                   status=_with_verification(status_code(r.get("clinicalStatus")), r),
                   detail=detail, concept=r.get("code"))
    return replace(entry, reaction=reaction, severity=allergy_severity(reactions, criticality))


_SEVERITY_RANK = {"mild": 1, "moderate": 2, "severe": 3}
_CRITICALITY = {"high": "high risk", "low": "low risk"}


def allergy_severity(reactions: list[Json], criticality: str | None) -> str | None:
    """The gravest reaction's severity (mild, moderate, severe), else the criticality ("high risk", "low
    risk"; "unable-to-assess" says nothing)."""
    severities = [s for s in (_str(x.get("severity")) for x in reactions) if s and s.lower() in _SEVERITY_RANK]
    if severities:
        return max(severities, key=lambda s: _SEVERITY_RANK[s.lower()]).lower()
    return _CRITICALITY.get((criticality or "").lower())


_ENCOUNTER_CLASSES = {"AMB": "Ambulatory", "EMER": "Emergency", "IMP": "Inpatient", "ACUTE": "Inpatient acute",
                      "NONAC": "Inpatient non-acute", "OBSENC": "Observation", "PRENC": "Pre-admission",
                      "SS": "Short stay", "VR": "Virtual", "HH": "Home health", "FLD": "Field"}


def map_encounter(r: Json, resolve: Resolver | None = None) -> Entry:
    types = _list(r.get("type"))
    text = next((t for t in (concept_text(x) for x in types) if t), None)
    klass = _obj(r.get("class"))
    if not text and klass:
        code = _str(klass.get("code"))
        text = _str(klass.get("display")) or _ENCOUNTER_CLASSES.get(code or "", code)
    reasons = _join([concept_text(x) for x in _list(r.get("reasonCode"))]
                    + [reference_display(x, r, resolve) for x in _list(r.get("reasonReference"))], ", ")
    people = _join([reference_display((_obj(p) or {}).get("individual"), r, resolve)
                    for p in _list(r.get("participant"))], ", ")
    detail = _join((f"Reason: {reasons}" if reasons else None,
                    reference_display(r.get("serviceProvider"), r, resolve), people))
    return _entry(r, text, "Encounter", when=_first(r, "period.start"), status=_str(r.get("status")),
                  detail=detail, concept=types[0] if types else None)


def observation_value(r: Json, resolve: Resolver | None = None) -> str | None:
    """The value as a clinician reads it, e.g. '120/80 mmHg', '155.1 cm', 'Never smoker'."""
    value = _value(r) or _components(r)
    interpretation = _join([t for t in (concept_text(x) for x in _list(r.get("interpretation"))) if t], ", ")
    if value and interpretation:
        return f"{value} ({interpretation})"
    return value or interpretation


def map_observation(r: Json, resolve: Resolver | None = None) -> Entry:
    entry = _entry(r, concept_text(r.get("code")), "Observation (not named)",
                   when=_first(r, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
                   status=_str(r.get("status")), detail=observation_value(r, resolve), concept=r.get("code"))
    return replace(entry, measurements=measurements(r))


# --- results: values, units, ranges, flags ------------------------------------------------------------

#: interpretation words some senders give without a code
_INTERPRETATION_WORDS = {"high": "H", "low": "L", "abnormal": "A", "normal": "N", "critically high": "HH",
                         "critically low": "LL", "positive": "POS", "negative": "NEG"}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def reference_range(holder: Json) -> tuple[float | None, float | None, str | None]:
    """(low, high, text) of the first reference range; the text only when the range is not numbers."""
    first = next((r for r in (_obj(x) for x in _list(holder.get("referenceRange"))) if r), None)
    if first is None:
        return None, None, None
    low = _number((_obj(first.get("low")) or {}).get("value"))
    high = _number((_obj(first.get("high")) or {}).get("value"))
    text = _str(first.get("text"))
    return low, high, text if low is None and high is None else None


def interpretation(holder: Json) -> str | None:
    """The sender's flag: a v3 ObservationInterpretation code (H, L, HH, LL, A, N, ...) or its words."""
    for concept in (_obj(x) for x in _list(holder.get("interpretation"))):
        if not concept:
            continue
        code = status_code(concept)
        if code and len(code) <= 3:
            return code.upper()
        words = (concept_text(concept) or "").strip().lower()
        if words in _INTERPRETATION_WORDS:
            return _INTERPRETATION_WORDS[words]
    return None


def _measurement(holder: Json, name: str) -> Measurement | None:
    """One value[x] with its unit, range and flag; None when the holder has no value."""
    coding = preferred_coding(holder.get("code"))
    code = coding.code if coding else None
    low, high, range_text = reference_range(holder)
    sent = interpretation(holder)
    quantity = _obj(holder.get("valueQuantity"))
    if quantity is not None and quantity.get("value") is not None:
        unit = _unit(_str(quantity.get("unit")) or _str(quantity.get("code"))) or None
        value = _number(quantity.get("value"))
        if _str(quantity.get("comparator")) or value is None:  # "<5": a bound, not a point to plot or compare
            return Measurement(name=name, text=format_quantity(quantity), unit=unit, low=low, high=high,
                               range_text=range_text, flag=sent, code=code)
        return Measurement(name=name, value=value, unit=unit, low=low, high=high, range_text=range_text,
                           flag=worked_out_flag(sent, value, low, high), code=code)
    if _number(holder.get("valueInteger")) is not None:
        value = _number(holder.get("valueInteger"))
        return Measurement(name=name, value=value, low=low, high=high, range_text=range_text,
                           flag=worked_out_flag(sent, value, low, high), code=code)
    text = concept_text(holder.get("valueCodeableConcept")) if holder.get("valueCodeableConcept") else None
    for key in ("valueString", "valueDateTime", "valueTime"):
        text = text or _str(holder.get(key))
    if text is None and isinstance(holder.get("valueBoolean"), bool):
        text = "Yes" if holder["valueBoolean"] else "No"
    if text is None:
        return None
    return Measurement(name=name, text=text, low=low, high=high, range_text=range_text, flag=sent, code=code)


def measurements(observation: Json, measure: Callable[[Json, str], Measurement | None] | None = None,
                 ) -> tuple[Measurement, ...]:
    """The observation's value, then each component's (systolic and diastolic of a blood pressure); `measure`
    reads one value (GP Connect passes its own, which prefers the UCUM code's unit)."""
    measure = measure or _measurement
    name = concept_text(observation.get("code")) or "Result"
    own = measure(observation, name)
    parts: list[Measurement] = [own] if own else []
    for component in (c for c in (_obj(x) for x in _list(observation.get("component"))) if c):
        found = measure(component, concept_text(component.get("code")) or name)
        if found:
            parts.append(found)
    return tuple(parts)


def map_report(r: Json, resolve: Resolver | None = None, results: int | None = None) -> Entry:
    """A DiagnosticReport as the heading of its results (they carry its title and id as `report`/`report_id`):
    who reported and what they concluded."""
    count = results if results is not None else len(_list(r.get("result")))
    performer = next((reference_display(p, r, resolve) for p in _list(r.get("performer"))), None)
    title = concept_text(r.get("code")) or "Test report"
    entry = _entry(r, title, "Test report",
                   when=_first(r, "effectiveDateTime", "effectivePeriod.start", "issued"),
                   status=_str(r.get("status")),
                   detail=_join((f"{count} result{'' if count == 1 else 's'}" if count else None,
                                 _str(r.get("conclusion")), performer)),
                   concept=r.get("code"))
    return replace(entry, report=title, report_id=_str(r.get("id")))


def _members(observation: Json) -> list[Any]:
    """An R4 panel's members (hasMember), and STU3's has-member `related` links."""
    return [*_list(observation.get("hasMember")),
            *[(_obj(x) or {}).get("target") for x in _list(observation.get("related"))
              if _str((_obj(x) or {}).get("type")) == "has-member"]]


def report_membership(reports: list[Json], resolve: Resolver | None) -> dict[int, Json]:
    """Which report each Observation belongs to (by the Observation object's identity), following panels
    (hasMember) down: the first report that names it wins."""
    where: dict[int, Json] = {}
    for report in reports:
        stack = [t for t in (_resolve_any(x, report, resolve) for x in _list(report.get("result"))) if t]
        while stack:
            observation = stack.pop(0)
            if observation.get("resourceType") != "Observation" or id(observation) in where:
                continue
            where[id(observation)] = report
            stack.extend(t for t in (_resolve_any(x, observation, resolve) for x in _members(observation)) if t)
    return where


def _resolve_any(ref: Any, container: Json, resolve: Resolver | None) -> Json | None:
    r = _obj(ref) if isinstance(ref, dict) else None
    return _resolve(r, container, resolve) if r else None


# --- consultation notes -------------------------------------------------------------------------------

class _Text(HTMLParser):
    """The words of an XHTML narrative: block elements end a line, tags and scripts are dropped."""

    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def narrative_text(narrative: Any) -> str | None:
    """Narrative.div as plain text (lines kept, runs of spaces folded)."""
    div = _str((_obj(narrative) or {}).get("div"))
    if not div:
        return None
    parser = _Text()
    parser.feed(div)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line) or None


def composition_notes(composition: Json) -> str | None:
    """A consultation note: each section as "Heading: text" (nested sections too), else the narrative."""
    lines: list[str] = []
    stack = [(s, 0) for s in (_obj(x) for x in _list(composition.get("section"))) if s]
    while stack:
        section, depth = stack.pop(0)
        title = _str(section.get("title")) or concept_text(section.get("code"))
        body = narrative_text(section.get("text"))
        if body:
            lines.append(f"{title}: {body}" if title else body)
        inner = [(s, depth + 1) for s in (_obj(x) for x in _list(section.get("section"))) if s]
        stack[0:0] = inner
    return "\n".join(lines) or narrative_text(composition.get("text"))


def notes_by_encounter(compositions: list[Json], resolve: Resolver | None) -> dict[int, str]:
    """Consultation notes by the Encounter object they belong to (Composition.encounter); notes of one
    encounter in several Compositions are joined, oldest first."""
    found: dict[int, list[tuple[str, str]]] = {}
    for composition in compositions:
        if _str(composition.get("status")) == "entered-in-error":
            continue
        encounter = _resolve_any(composition.get("encounter"), composition, resolve)
        text = composition_notes(composition)
        if encounter is not None and text:
            found.setdefault(id(encounter), []).append((_str(composition.get("date")) or "", text))
    return {key: "\n\n".join(t for _, t in sorted(notes)) for key, notes in found.items()}


def map_immunization(r: Json, resolve: Resolver | None = None) -> Entry:
    status = _str(r.get("status"))
    if status == "not-done" or r.get("notGiven") is True:
        reason = concept_text(r.get("statusReason"))
        detail: str | None = f"Not given: {reason}" if reason else "Not given"
    else:
        doses = [_obj(p) or {} for p in _list(r.get("protocolApplied"))]
        number = next((d.get("doseNumberPositiveInt") or d.get("doseNumberString") for d in doses
                       if d.get("doseNumberPositiveInt") or d.get("doseNumberString")), None)
        detail = f"Dose {number}" if number else None
    return _entry(r, concept_text(r.get("vaccineCode")), "Vaccine (not named)",
                  when=_first(r, "occurrenceDateTime", "occurrenceString", "date", "recorded"),
                  status=status, detail=detail, concept=r.get("vaccineCode"))


MAPPERS: dict[str, Callable[[Json, Resolver | None], Entry]] = {
    "Condition": map_condition,
    "MedicationRequest": map_medication_request,
    "MedicationStatement": map_medication_statement,
    "AllergyIntolerance": map_allergy,
    "Encounter": map_encounter,
    "Observation": map_observation,
    "Immunization": map_immunization,
}


def map_entry(resource: Any, resolve: Resolver | None = None) -> Entry | None:
    """One resource as a section entry; None for types outside the six sections. May raise on bad shape."""
    if not isinstance(resource, dict):
        raise MalformedResource("a resource must be a JSON object")
    mapper = MAPPERS.get(resource.get("resourceType", ""))  # no type: no mapper, as for an unknown one
    return mapper(resource, resolve) if mapper else None


def sort_newest_first(entries: Iterable[Entry]) -> list[Entry]:
    """Newest first by `when`; entries without a usable date (or with text such as 'childhood') last."""
    def key(e: Entry) -> tuple[bool, str]:
        when = e.when or ""
        dated = when[:1].isdigit()
        return (dated, when if dated else "")

    return sorted(entries, key=key, reverse=True)


@dataclass
class MappedRecord:
    """Entries per section (newest first) and how many resources of each section were unreadable."""

    entries: dict[SectionName, list[Entry]] = field(default_factory=lambda: {s: [] for s in SectionName})
    skipped: Counter[SectionName] = field(default_factory=Counter)


_BAD_SHAPE = (MalformedResource, TypeError, ValueError, AttributeError, KeyError, IndexError)


def map_resources(resources: Iterable[Any], resolve: Resolver | None = None) -> MappedRecord:
    """Map every resource of the six section types; skip (and count) malformed ones, ignore the rest.

    DiagnosticReports head their results (each result carries the report's title and id); Compositions that
    point at an Encounter are its consultation notes. Both are found through `resolve` (or as contained
    resources), so they must be in it: the adapter indexes every resource of the reply."""
    mapped = MappedRecord()
    resources = list(resources)
    by_kind: dict[str, list[Json]] = {}
    for resource in resources:
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            by_kind.setdefault(resource["resourceType"], []).append(resource)
    reports = by_kind.get("DiagnosticReport", [])
    try:
        report_of = report_membership(reports, resolve)
    except _BAD_SHAPE:
        report_of, mapped.skipped[SectionName.OBSERVATIONS] = {}, len(reports)
        reports = []
    try:
        notes_of = notes_by_encounter(by_kind.get("Composition", []), resolve)
    except _BAD_SHAPE:
        notes_of = {}  # unreadable notes: the consultations are still shown, without them
    values = Counter(id(report) for report in report_of.values())
    for report in reports:
        try:
            mapped.entries[SectionName.OBSERVATIONS].append(map_report(report, resolve, values.get(id(report), 0)))
        except _BAD_SHAPE:
            mapped.skipped[SectionName.OBSERVATIONS] += 1
    for resource in resources:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        section = SECTION_OF.get(kind) if isinstance(kind, str) else None
        if section is None:
            continue
        try:
            entry = map_entry(resource, resolve)
        except _BAD_SHAPE:
            mapped.skipped[section] += 1
            continue
        if entry is None:
            continue
        heading = report_of.get(id(resource))
        if heading is not None:
            entry = replace(entry, report=concept_text(heading.get("code")) or "Test report",
                            report_id=_str(heading.get("id")),
                            when=entry.when or _first(heading, "effectiveDateTime", "effectivePeriod.start", "issued"))
        if id(resource) in notes_of:
            entry = replace(entry, notes=notes_of[id(resource)])
        mapped.entries[section].append(entry)
    for section, entries in mapped.entries.items():
        mapped.entries[section] = sort_newest_first(entries)
    return mapped
