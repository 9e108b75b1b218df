"""FHIR R4 resources for a generated patient: the Patient itself and a plausible GP record.

A record is a pure function of the patient (its seed, age and sex), the practice and the reference
date, so it can be made lazily and is identical every time it is made.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.patient_contact import DO_NOT_NOTIFY_EXTENSION, DO_NOT_NOTIFY_FLAG_CODE, DO_NOT_NOTIFY_FLAG_SYSTEM
from app.core.model import REGISTRATION_TYPES
from app.core.nhs_number import NHS_NUMBER_SYSTEM
from app.demo.clinical_codes import (
    ACUTE_FALLBACK,
    ALLERGENS,
    CHILDHOOD_SCHEDULE,
    CONDITIONS,
    ENCOUNTER_CLASSES,
    ENCOUNTER_TYPES,
    FALLBACK_ADULT,
    FALLBACK_ANY,
    FALLBACK_CHILD,
    LOINC,
    MEDICATIONS,
    OBSERVATIONS,
    PENICILLIN_ALLERGENS,
    PENICILLINS,
    REACTIONS,
    REPORTS,
    SNOMED,
    SYMPTOM_NOTES,
    SYMPTOMS,
    UCUM,
    VACCINES,
    ConditionDef,
)
from app.demo.practices import PracticeSpec

if TYPE_CHECKING:
    from app.demo.population import DemoPatient

Resource = dict[str, Any]
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
#: what a generated record holds; DiagnosticReports group the laboratory results, Compositions carry the
#: consultation notes (one per consultation that has notes, its `encounter` pointing at the Encounter)
RECORD_TYPES = ("Condition", "MedicationRequest", "AllergyIntolerance", "Encounter", "Observation",
                "Immunization", "DiagnosticReport", "Composition")
_ID_TAGS = {"Condition": "c", "MedicationRequest": "m", "AllergyIntolerance": "a", "Encounter": "e",
            "Observation": "o", "Immunization": "i", "DiagnosticReport": "r", "Composition": "n"}
COURSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"
#: UK Core's course of therapy (adds repeat dispensing to HL7's acute / continuous / seasonal)
UK_COURSE_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-MedicationRequestCourseOfTherapy"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_INTERPRETATIONS = {"H": "High", "L": "Low", "N": "Normal"}
#: medicines one patient is not given two of at once (MEDICATIONS keys -> class)
_DRUG_CLASSES = {"atorvastatin20": "statin", "atorvastatin80": "statin", "simvastatin": "statin",
                 "ramipril": "raas", "losartan": "raas", "omeprazole": "ppi", "lansoprazole": "ppi",
                 "sertraline": "ssri", "citalopram": "ssri", "paracetamol": "analgesic", "cocodamol": "analgesic"}
_LOT = "ABCDEFHKLMPRTWXY"
_FLU_RISK = {"195967001", "44054006", "46635009", "13645005", "53741008", "709044004", "84114007", "230690007"}


#: GP Connect's registration details extension (CareConnect-GPC-RegistrationDetails-1), which UK FHIR servers
#: also put on R4 Patients: registrationPeriod and registrationType (CareConnect-RegistrationType-1 codes)
REGISTRATION_DETAILS_URL = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
REGISTRATION_TYPE_SYSTEM = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"


def registration_extension(p: DemoPatient) -> Resource | None:
    parts: list[Resource] = []
    if p.registered_since is not None:
        parts.append({"url": "registrationPeriod", "valuePeriod": {"start": p.registered_since.isoformat()}})
    if p.registration_type:
        parts.append({"url": "registrationType", "valueCodeableConcept": {"coding": [{
            "system": REGISTRATION_TYPE_SYSTEM, "code": p.registration_type,
            "display": REGISTRATION_TYPES.get(p.registration_type, p.registration_type)}]}})
    return {"url": REGISTRATION_DETAILS_URL, "extension": parts} if parts else None


def patient_resource(p: DemoPatient, spec: PracticeSpec) -> Resource:
    name: Resource = {"use": "official", "family": p.family, "given": list(p.given)}
    if p.prefix:
        name["prefix"] = [p.prefix]
    practice_ref = {"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": spec.ods_code},
                    "display": spec.name}
    gps: list[Resource] = [practice_ref]
    if p.usual_gp:
        gps.append({"type": "Practitioner", "display": p.usual_gp})
    resource: Resource = {
        "resourceType": "Patient",
        "id": p.local_id,
        "meta": {"versionId": "1"},
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": p.nhs_number}] if p.nhs_number else [],
        "active": True,
        "name": [name],
        "telecom": [{"system": "phone", "value": p.phone, "use": "mobile" if p.phone.startswith("07") else "home"}],
        "gender": p.sex,
        "birthDate": p.birth_date.isoformat() if p.birth_date else None,
        "address": [{"use": "home", "line": list(p.address), "city": p.city, "postalCode": p.postcode}],
        "generalPractitioner": gps,
        "managingOrganization": practice_ref,
    }
    if isinstance(p.deceased, date):
        resource["deceasedDateTime"] = p.deceased.isoformat()
    elif p.deceased:
        resource["deceasedBoolean"] = True
    extensions = [e for e in (registration_extension(p),) if e]
    if do_not_notify_demo(p):  # safeguarding: the practice has said never to message this patient
        extensions.append({"url": DO_NOT_NOTIFY_EXTENSION, "valueBoolean": True})
    if extensions:
        resource["extension"] = extensions
    return {k: v for k, v in resource.items() if v not in (None, [])}


def do_not_notify_demo(p: DemoPatient) -> bool:
    """About one generated patient in ten carries the do-not-notify mark (deterministic, from the seed)."""
    return p.resource is None and p.record_seed % 10 == 3


def flag_resources(p: DemoPatient) -> list[Resource]:
    """The patient's Flags: the do-not-notify mark as a Flag too (many practice systems keep it so), served
    by `Flag?patient=` and in $everything."""
    if not do_not_notify_demo(p):
        return []
    return [{"resourceType": "Flag", "id": f"{p.local_id}-f0", "status": "active",
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                       "code": "contact", "display": "Subject Contact"}]}],
             "code": {"coding": [{"system": DO_NOT_NOTIFY_FLAG_SYSTEM, "code": DO_NOT_NOTIFY_FLAG_CODE,
                                  "display": "Do not contact by SMS or email"}]},
             "subject": {"reference": f"Patient/{p.local_id}"}}]


def generate_record(p: DemoPatient, spec: PracticeSpec, today: date) -> dict[str, list[Resource]]:
    """The patient's resources by type; every type present, some lists (allergies, vaccines) may be empty."""
    return _RecordBuilder(p, spec, today).build()


def condition_codes(p: DemoPatient, spec: PracticeSpec, today: date) -> set[str]:
    """The SNOMED CT codes of the patient's generated Conditions, without building the whole record (the
    problems come first from the record's own random sequence, so they are the record's)."""
    builder = _RecordBuilder(p, spec, today)
    builder._problems()
    return {cond.code for cond, _resource, _onset in builder.problems}


def diverge(out: dict[str, list[Resource]], p: DemoPatient, today: date) -> None:
    """Make the two registrations of one person disagree, as records kept apart do: an allergy recorded at
    the first practice only, a repeat medicine current at the first and stopped at the second, a problem
    active at the first and resolved at the second. Both records come from one seed, so each step sees the
    same record at both practices and changes it in its own way (nothing here for anyone not shared)."""
    role = p.shared_as
    if role not in ("first", "second"):
        return
    first = role == "first"
    allergies = out["AllergyIntolerance"]
    if allergies and not first:
        allergies.pop(0)  # never carried over to the second practice
    elif not allergies and first:
        # noted at one practice only: latex, peanut, codeine or aspirin, by the person's seed
        allergen = next(a for a in ALLERGENS if a.code == ("111088007", "762952008", "387494007",
                                                             "387458008")[p.record_seed % 4])
        allergies.append({
            "resourceType": "AllergyIntolerance", "id": "",
            "clinicalStatus": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")]},
            "verificationStatus": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed")]},
            "type": allergen.kind, "category": [allergen.category], "criticality": "low",
            "code": _concept(SNOMED, allergen.code, allergen.display),
            "patient": {"reference": f"Patient/{p.local_id}"},
            "recordedDate": (today - timedelta(days=400)).isoformat(),
            "reaction": [{"manifestation": [_concept(SNOMED, "126485001", "Urticaria")], "severity": "moderate"}],
        })
    meds = out["MedicationRequest"]
    repeats = [m for m in meds if m["status"] == "active" and _course(m) != "acute"]
    if repeats:
        if not first:
            repeats[0]["status"] = "stopped"
            repeats[0]["statusReason"] = {"text": "Stopped at medication review"}
            repeats[0]["dispenseRequest"] = {"validityPeriod": {"start": repeats[0]["authoredOn"],
                                                                "end": (today - timedelta(days=20)).isoformat()}}
    else:
        med = MEDICATIONS["omeprazole"]
        meds.append({
            "resourceType": "MedicationRequest", "id": "", "status": "active" if first else "stopped",
            "intent": "order",
            "courseOfTherapyType": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "continuous",
                "Continuous long term therapy")]},
            "medicationCodeableConcept": {"text": med.name}, "subject": {"reference": f"Patient/{p.local_id}"},
            "authoredOn": (today - timedelta(days=300)).isoformat(), "dosageInstruction": [{"text": med.dosage}],
            **({} if first else {"statusReason": {"text": "No longer needed"}}),
        })
    problems = out["Condition"]
    active = [c for c in problems if c["clinicalStatus"]["coding"][0]["code"] == "active"]
    if active and not first:
        active[0]["clinicalStatus"] = {"coding": [_coding(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved", "Resolved")]}
        active[0]["abatementDateTime"] = (today - timedelta(days=180)).isoformat()
    elif not active and problems and first:
        problems[0]["clinicalStatus"] = {"coding": [_coding(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")]}
        problems[0].pop("abatementDateTime", None)


def _course(request: Resource) -> str | None:
    codings = (request.get("courseOfTherapyType") or {}).get("coding") or [{}]
    return codings[0].get("code")


def _xhtml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _coding(system: str, code: str, display: str) -> Resource:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str, text: str | None = None) -> Resource:
    return {"coding": [_coding(system, code, display)], "text": text or display}


class _RecordBuilder:
    def __init__(self, p: DemoPatient, spec: PracticeSpec, today: date) -> None:
        self.p, self.spec = p, spec
        # a record ends at death: nothing is recorded after it
        self.today = min(today, p.deceased) if isinstance(p.deceased, date) else today
        today = self.today
        self.rng = random.Random(p.record_seed)
        # what was added later (series, reports, notes, past and acute medicines) draws from its own sequence,
        # so the problems, allergies and vaccines a patient had stay as they were
        self.more = random.Random(f"more:{p.record_seed}")
        self.born = p.birth_date or today - timedelta(days=365 * 40)
        self.age = (today - self.born).days / 365.25
        self.out: dict[str, list[Resource]] = {t: [] for t in RECORD_TYPES}
        self.subject = {"reference": f"Patient/{p.local_id}"}
        self.problems: list[tuple[ConditionDef, Resource, date]] = []
        self.visits: list[date] = []

    def build(self) -> dict[str, list[Resource]]:
        self._problems()
        self._allergies()
        self._medications()
        self._encounters()
        self._observations()
        self._immunisations()
        diverge(self.out, self.p, self.today)
        if self.p.deceased is not False:
            self._end_repeats_at_death()
        for rtype, items in self.out.items():
            for n, item in enumerate(items):
                item["id"] = f"{self.p.local_id}-{_ID_TAGS[rtype]}{n}"
        for report in self.out["DiagnosticReport"]:  # results and notes point at the final ids
            report["result"] = [{"reference": f"Observation/{o['id']}", "display": o["code"]["text"]}
                                for o in report.pop("_results")]
        for note in self.out["Composition"]:
            note["encounter"] = {"reference": f"Encounter/{note.pop('_encounter')['id']}"}
        for cond, resource, _ in self.problems:  # reasons point at the final condition ids
            for med in self.out["MedicationRequest"]:
                if med.get("_reason") is cond:
                    med["reasonReference"] = [{"reference": f"Condition/{resource['id']}",
                                               "display": cond.display}]
        for med in self.out["MedicationRequest"]:
            med.pop("_reason", None)
        return self.out

    # -- helpers ------------------------------------------------------------------------------

    def _day(self, start: date, end: date | None = None, *, late: bool = False) -> date:
        """A random day in [start, end]; `late` leans towards the end."""
        start = max(start, self.born)
        end = min(end or self.today, self.today)
        if end <= start:
            return end
        share = self.rng.random() ** (0.5 if late else 1.0)
        return start + timedelta(days=int((end - start).days * share))

    def _moment(self, day: date, minutes: int = 0) -> str:
        at = datetime(day.year, day.month, day.day, 8, 30) + timedelta(minutes=minutes)
        return at.isoformat() + "+00:00"

    def _years_ago(self, years: float) -> date:
        return self.today - timedelta(days=int(years * 365.25))

    def _clinician(self) -> str:
        # one draw whatever the number of clinicians: the same person's record at two practices stays in step
        return self.spec.clinicians[int(self.rng.random() * len(self.spec.clinicians))]

    def _nurse(self) -> str:
        return self.spec.nurses[int(self.rng.random() * len(self.spec.nurses))]

    # -- sections -----------------------------------------------------------------------------

    def _problems(self) -> None:
        rng, age = self.rng, self.age
        chosen: list[ConditionDef] = []
        for cond in CONDITIONS:
            if not cond.min_age <= age <= cond.max_age or (cond.sex and cond.sex != self.p.sex):
                continue
            chance = cond.chance
            if cond.age_related:
                chance *= min(2.5, 0.3 + (age - cond.min_age) / 25)
            if self.p.sex == "female":
                chance *= cond.female_factor ** 0.5
            elif self.p.sex == "male":
                chance /= cond.female_factor ** 0.5
            if rng.random() < chance:
                chosen.append(cond)
        if not chosen:
            code = FALLBACK_CHILD if age <= 12 else FALLBACK_ANY if age < 18 else FALLBACK_ADULT
            chosen.append(next(c for c in CONDITIONS if c.code == code))
        for cond in chosen:
            if cond.chronic:
                onset = self._day(self.born + timedelta(days=int(cond.min_age * 365.25)), late=True)
            else:
                onset = self._day(self._years_ago(5))
            resource: Resource = {
                "resourceType": "Condition",
                "id": "",
                "clinicalStatus": {"coding": [_coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "active" if cond.chronic else "resolved", "Active" if cond.chronic else "Resolved")]},
                "verificationStatus": {"coding": [_coding(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")]},
                "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                                 "problem-list-item", "Problem List Item")]}],
                "code": _concept(SNOMED, cond.code, cond.display),
                "subject": self.subject,
                "onsetDateTime": onset.isoformat(),
                "recordedDate": onset.isoformat(),
                "asserter": {"display": self._clinician()},
            }
            if not cond.chronic:
                resource["abatementDateTime"] = min(onset + timedelta(days=rng.randint(5, 21)),
                                                    self.today).isoformat()
            self.problems.append((cond, resource, onset))
        self.problems.sort(key=lambda item: item[2])
        self.out["Condition"] = [resource for _, resource, _ in self.problems]

    def _allergies(self) -> None:
        rng = self.rng
        if rng.random() >= 0.35:
            return  # most people have none recorded
        for allergen in rng.sample(ALLERGENS, 1 if rng.random() < 0.8 else 2):
            code, display, severity = rng.choice(REACTIONS)
            recorded = self._day(self._years_ago(30))
            self.out["AllergyIntolerance"].append({
                "resourceType": "AllergyIntolerance",
                "id": "",
                "clinicalStatus": {"coding": [_coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")]},
                "verificationStatus": {"coding": [_coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed",
                    "Confirmed")]},
                "type": allergen.kind,
                "category": [allergen.category],
                "criticality": "high" if severity == "severe" else "low",
                "code": _concept(SNOMED, allergen.code, allergen.display),
                "patient": self.subject,
                "recordedDate": recorded.isoformat(),
                "recorder": {"display": self._clinician()},
                "reaction": [{"manifestation": [_concept(SNOMED, code, display)], "severity": severity}],
            })

    def _medications(self) -> None:
        rng = self.rng
        allergic = {a["code"]["coding"][0]["code"] for a in self.out["AllergyIntolerance"]}
        avoid_penicillin = bool(allergic & PENICILLIN_ALLERGENS)
        taking: set[str] = set()  # long-term medicines and their classes: never two statins, say
        for cond, _, onset in self.problems:
            if not cond.meds:
                continue
            keys = rng.sample(cond.meds, min(len(cond.meds), rng.randint(1, 2))) if cond.chronic \
                else [cond.meds[0]]
            for key in keys:
                if avoid_penicillin and key in PENICILLINS:
                    key = "clarithromycin"
                if cond.chronic:
                    kind = _DRUG_CLASSES.get(key, key)
                    if kind in taking:
                        continue
                    taking.add(kind)
                    self._prescribe(key, self._day(self._years_ago(0.25)), cond, continuous=True)
                else:
                    self._prescribe(key, onset, cond, continuous=False)
            if cond.chronic:
                self._past_repeat(cond, onset, keys)
        if not self.out["MedicationRequest"]:
            key = rng.choice(ACUTE_FALLBACK)
            if avoid_penicillin and key in PENICILLINS:
                key = "paracetamol"
            self._prescribe(key, self._day(self._years_ago(2)), None, continuous=False)
        if self.more.random() < 0.3:  # a recent acute prescription: current, in the acute list
            key = ACUTE_FALLBACK[int(self.more.random() * len(ACUTE_FALLBACK))]
            if avoid_penicillin and key in PENICILLINS:
                key = "paracetamol"
            self._prescribe(key, self.today - timedelta(days=int(self.more.random() * 40)), None, continuous=False)
        self.out["MedicationRequest"].sort(key=lambda m: m["authoredOn"])

    def _past_repeat(self, cond: ConditionDef, onset: date, current: list[str]) -> None:
        """About a third of long-term problems had an earlier repeat medicine, stopped when the current one
        started (a past medication)."""
        more = self.more
        others = [k for k in cond.meds if k not in current]
        if not others or more.random() >= 0.35:
            return
        key = others[int(more.random() * len(others))]
        started = self._day(onset, self._years_ago(1))
        stopped = min(self.today, started + timedelta(days=60 + int(more.random() * 700)))
        why = ("Side effects", "Not effective", "Changed to an alternative", "Patient request")
        med = self._prescribe(key, started, cond, continuous=True)
        med["status"] = "stopped"
        med["statusReason"] = {"text": why[int(more.random() * len(why))]}
        med["dispenseRequest"] = {"validityPeriod": {"start": started.isoformat(), "end": stopped.isoformat()}}

    def _prescribe(self, key: str, when: date, reason: ConditionDef | None, *, continuous: bool) -> Resource:
        med = MEDICATIONS[key]
        name, dosage = med.name, med.dosage
        if self.age < 12 and med.child_name:
            name, dosage = med.child_name, med.child_dosage or dosage
        if continuous and self.more.random() < 0.15:  # repeat dispensing: a batch of issues from the pharmacy
            course = _coding(UK_COURSE_SYSTEM, "continuous-repeat-dispensing", "Continuous long term (repeat "
                             "dispensing)")
        elif continuous:
            course = _coding(COURSE_SYSTEM, "continuous", "Continuous long term therapy")
        else:
            course = _coding(COURSE_SYSTEM, "acute", "Short course (acute) therapy")
        # an acute prescription is current for a few weeks after it is issued, then completed
        recent = (self.today - when).days <= 42
        request: Resource = {
            "resourceType": "MedicationRequest",
            "id": "",
            "status": "active" if continuous or recent else "completed",
            "intent": "order",
            "courseOfTherapyType": {"coding": [course]},
            "medicationCodeableConcept": {"text": name},
            "subject": self.subject,
            "authoredOn": when.isoformat(),
            "requester": {"display": self._clinician()},
            "dosageInstruction": [{"text": dosage}],
            "_reason": reason,
        }
        self.out["MedicationRequest"].append(request)
        return request

    def _end_repeats_at_death(self) -> None:
        """A deceased patient's repeat medicines were stopped when the death was recorded."""
        for med in self.out["MedicationRequest"]:
            if med["status"] == "active":
                med["status"] = "stopped"
                med["statusReason"] = {"text": "Patient died"}

    def _encounters(self) -> None:
        rng = self.rng
        planned: list[tuple[date, tuple[str, str, str], Resource | None, str]] = []
        by_code = {code: (code, display, cls) for code, display, cls in ENCOUNTER_TYPES}
        for cond, resource, onset in self.problems:
            kind = by_code["11429006"] if cond.chronic else by_code[rng.choice(("185345009", "185317003"))]
            planned.append((onset, kind, resource["code"], "diagnosis" if cond.chronic else "acute"))
            if cond.chronic and cond.monitoring:
                for _ in range(rng.randint(1, 2)):
                    planned.append((self._day(self._years_ago(3)), by_code[rng.choice(("390906007", "185349003"))],
                                    resource["code"], "review"))
        for _ in range(rng.randint(0, 3 + int(self.age) // 20)):
            code, display = rng.choice(SYMPTOMS)
            kind = rng.choice(ENCOUNTER_TYPES[:5]) if self.age < 80 else rng.choice(ENCOUNTER_TYPES)
            planned.append((self._day(self._years_ago(6)), kind, _concept(SNOMED, code, display), "symptom"))
        planned.sort(key=lambda item: item[0])
        for day, (code, display, cls), reason, why in planned[-25:]:
            minutes = rng.randrange(0, 560, 10)
            start = self._moment(day, minutes)
            end = self._moment(day, minutes + rng.choice((10, 15, 20)))
            nurse = code == "185349003" and rng.random() < 0.6
            author = self._nurse() if nurse else self._clinician()
            encounter = {
                "resourceType": "Encounter",
                "id": "",
                "status": "finished",
                "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", cls, ENCOUNTER_CLASSES[cls]),
                "type": [_concept(SNOMED, code, display)],
                "subject": self.subject,
                "participant": [{"individual": {"display": author}}],
                "period": {"start": start, "end": end},
                "reasonCode": [reason] if reason else [],
                "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": self.spec.ods_code},
                                    "display": self.spec.name},
            }
            self.out["Encounter"].append(encounter)
            self.visits.append(day)
            self._note(encounter, author, reason, why, telephone=cls == "VR")

    def _note(self, encounter: Resource, author: str, reason: Resource | None, why: str, *,
              telephone: bool) -> None:
        """The consultation's notes: a Composition (LOINC 11488-4 Consult note) pointing at the Encounter,
        one section per SOAP heading, as clinicians write them."""
        more = self.more
        if more.random() < 0.08:
            return  # some consultations were coded with no free text
        reason_text = (reason or {}).get("text") or "Consultation"
        reason_code = next((c["code"] for c in (reason or {}).get("coding", ())), "")
        if why == "symptom" and reason_code in SYMPTOM_NOTES:
            history, examination, plan = SYMPTOM_NOTES[reason_code]
            history = history.format(days=2 + int(more.random() * 12))
        elif why == "diagnosis":
            history = f"Seen with symptoms; results reviewed. Diagnosis of {reason_text.lower()} discussed."
            examination = f"Findings in keeping with {reason_text.lower()}." if not telephone else ""
            plan = "Treatment started and explained; leaflet given. Review in 4 weeks."
        elif why == "review":
            history = f"{reason_text} review. Feeling well, taking medicines as prescribed, no side effects."
            examination = "BP and weight checked (see results)."
            plan = "Continue current treatment. Bloods before next review in 12 months."
        else:
            history = f"{reason_text}. Symptoms for {2 + int(more.random() * 7)} days."
            examination = "Examination unremarkable." if not telephone else ""
            plan = "Self-care advice; safety-netted to return if worse."
        if telephone:
            history = "Telephone consultation. " + history
            examination = ""
        sections = [{"title": title, "text": {"status": "generated",
                                             "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_xhtml(body)}</div>'}}
                    for title, body in (("History", history), ("Examination", examination), ("Plan", plan)) if body]
        self.out["Composition"].append({
            "resourceType": "Composition",
            "id": "",
            "status": "final",
            "type": _concept("http://loinc.org", "11488-4", "Consult note", "Consultation note"),
            "subject": self.subject,
            "_encounter": encounter,
            "date": encounter["period"]["end"],
            "author": [{"display": author}],
            "title": f"Consultation note: {reason_text}",
            "section": sections,
        })

    def _observations(self) -> None:
        rng, more, age = self.rng, self.more, self.age
        codes = {cond.code for cond, _, _ in self.problems}
        onsets = {cond.code: onset for cond, _, onset in self.problems}
        monitoring = {kind for cond, _, _ in self.problems if cond.chronic for kind in cond.monitoring}
        if age >= 16:
            adult_years = min(6.0, age - 16)
            hypertensive = "38341003" in codes
            if hypertensive or "bp" in monitoring:  # treated: high at first, brought down over the years
                start, end = (156 + more.uniform(0, 14), 136 + more.uniform(-4, 10)) if hypertensive \
                    else (136 + more.uniform(-6, 8), 132 + more.uniform(-6, 8))
                points = 4 + int(more.random() * 4)
            else:
                start = end = 112 + max(0.0, age - 30) * 0.35
                points = 1 + int(more.random() * 3)
            for day, share in self._series(points, adult_years):
                systolic = start + (end - start) * share + more.uniform(-7, 7)
                diastolic = 70 + (systolic - 120) * 0.35 + more.uniform(-5, 5)
                self._blood_pressure(day, round(systolic), round(diastolic))
            height = rng.gauss(176 if self.p.sex == "male" else 163, 7)
            bmi_base = rng.uniform(31, 40) if "414916001" in codes else rng.uniform(19.5, 31)
            drift = more.uniform(-3, 2.5)
            watched = "weight" in monitoring or codes & {"44054006", "414916001"}
            for day, share in self._series(5 + int(more.random() * 3) if watched else 1 + int(more.random() * 2),
                                           adult_years):
                bmi = bmi_base + drift * share + more.uniform(-0.6, 0.6)
                at = self._measure("height", day, height)["effectiveDateTime"]
                self._measure("weight", day, bmi * (height / 100) ** 2, at)
                self._measure("bmi", day, bmi, at)
        else:
            for _ in range(rng.randint(1, 3)):
                day = self._obs_day(max(age, 0.05))
                years = (day - self.born).days / 365.25
                height = 50 + 25 * years if years < 1 else 75 + 6.2 * (years - 1)
                weight = 3.4 + 6.5 * years if years < 1 else 10 + 2.7 * (years - 1)
                at = self._measure("weight", day, weight * rng.uniform(0.9, 1.1))["effectiveDateTime"]
                if years >= 0.5:
                    self._measure("height", day, height * rng.uniform(0.96, 1.04), at)
        self._laboratory(codes, onsets, monitoring)
        self.out["Observation"].sort(key=lambda o: o["effectiveDateTime"])
        self.out["DiagnosticReport"].sort(key=lambda r: r["effectiveDateTime"])

    def _laboratory(self, codes: set[str], onsets: dict[str, date], monitoring: set[str]) -> None:
        """Blood results as laboratory reports: HbA1c, lipid profile, renal function (with eGFR), full blood
        count; for a monitored problem a series over the years since it began, so that trends show."""
        more, age = self.more, self.age

        def since(*problem: str) -> float:
            first = min((onsets[c] for c in problem if c in onsets), default=self._years_ago(1))
            return max(0.5, min(5.0, (self.today - first).days / 365.25))

        diabetic = codes & {"44054006", "46635009"}
        if diabetic:  # every six months, high at diagnosis and brought down
            start, end = more.uniform(62, 88), more.uniform(48, 66 if "46635009" in codes else 60)
            years = since(*diabetic)
            for day, share in self._series(max(2, int(years * 2) + 1), years):
                self._report("hba1c", day, {"hba1c": start + (end - start) * share + more.uniform(-3, 3)})
        elif age >= 40 and more.random() < 0.15:
            self._report("hba1c", self._obs_day(5), {"hba1c": more.uniform(34, 46)})
        treated = codes & {"55822004", "53741008", "44054006"}
        if "cholesterol" in monitoring or treated:  # a yearly lipid profile; on a statin it comes down
            start, end = more.uniform(5.8, 7.6), more.uniform(3.9, 5.4)
            years = since(*(treated or codes))
            for day, share in self._series(max(2, int(years) + 1), years):
                self._lipids(day, start + (end - start) * share + more.uniform(-0.3, 0.3))
        elif age >= 40 and more.random() < 0.35:
            for day, _ in self._series(1 + int(more.random() * 2), 5):
                self._lipids(day, more.uniform(3.8, 7.0))
        if "egfr" in monitoring:  # chronic kidney disease: slowly falling, every six months
            start, end = more.uniform(52, 62), more.uniform(36, 50)
            years = since("709044004", "84114007")
            for day, share in self._series(max(3, int(years * 2) + 1), years):
                self._renal(day, start + (end - start) * share + more.uniform(-2.5, 2.5))
        elif diabetic or "38341003" in codes or (age >= 60 and more.random() < 0.25):
            for day, _ in self._series(2 + int(more.random() * 3), 4):
                self._renal(day, more.uniform(66, 98) - max(0.0, age - 60) * 0.4)
        if "271737000" in codes:  # anaemia: low, then treated
            start, end = more.uniform(92, 108), more.uniform(118, 132)
            for day, share in self._series(3, since("271737000")):
                self._fbc(day, start + (end - start) * share)
        elif age >= 16 and more.random() < 0.3:
            self._fbc(self._obs_day(4), more.uniform(118, 160))

    def _series(self, points: int, years: float) -> list[tuple[date, float]]:
        """`points` days spread over the last `years` (oldest first), each with its share of the way (0 to 1)."""
        years = max(years, 0.25)
        days: list[tuple[date, float]] = []
        for n in range(points):
            share = n / (points - 1) if points > 1 else 1.0
            back = years * (1 - share) * 365.25 + self.more.uniform(0, 40)
            days.append((max(self.born, self.today - timedelta(days=int(back))), share))
        return days

    def _lipids(self, day: date, total: float) -> None:
        more = self.more
        hdl = more.uniform(0.9, 1.9)
        triglycerides = more.uniform(0.8, 2.6)
        ldl = max(0.8, total - hdl - triglycerides / 2.2)
        self._report("lipids", day, {"cholesterol": total, "hdl": hdl, "ldl": ldl, "triglycerides": triglycerides})

    def _renal(self, day: date, egfr: float) -> None:
        more = self.more
        female = self.p.sex == "female"
        creatinine = (70 if female else 85) * (90 / max(egfr, 10)) ** 0.9 + more.uniform(-5, 5)
        self._report("renal", day, {"sodium": more.uniform(135, 145), "potassium": more.uniform(3.7, 5.0)
                                    + (0.4 if egfr < 45 else 0), "creatinine": creatinine, "egfr": egfr})

    def _fbc(self, day: date, haemoglobin: float) -> None:
        more = self.more
        self._report("fbc", day, {"haemoglobin": haemoglobin, "wbc": more.uniform(4.2, 10.5),
                                  "platelets": more.uniform(170, 380)})

    def _report(self, key: str, day: date, values: dict[str, float]) -> None:
        """A laboratory report and its results, each with the laboratory's reference range; most laboratories
        also flag each result (high, low, normal), some leave the reader to compare it with the range."""
        definition = REPORTS[key]
        flagged = self.more.random() < 0.7
        results: list[Resource] = []
        minutes = int(self.more.random() * 300)
        for name, value in values.items():
            obs = self._obs_base(name, day)
            obs["effectiveDateTime"] = self._moment(day, minutes)
            obs["performer"] = [{"display": f"{self.spec.town} Pathology"}]
            obs["valueQuantity"] = self._quantity(name, value)
            shown = obs["valueQuantity"]["value"]
            low, high = OBSERVATIONS[name].reference_range(self.p.sex)
            ucum = {"unit": OBSERVATIONS[name].unit, "system": UCUM, "code": OBSERVATIONS[name].ucum}
            reference: Resource = {}
            if low is not None:
                reference["low"] = {"value": low, **ucum}
            if high is not None:
                reference["high"] = {"value": high, **ucum}
            if reference:
                obs["referenceRange"] = [reference]
            if flagged:
                flag = "H" if high is not None and shown > high else "L" if low is not None and shown < low else "N"
                obs["interpretation"] = [{"coding": [_coding(INTERPRETATION_SYSTEM, flag, _INTERPRETATIONS[flag])]}]
            self.out["Observation"].append(obs)
            results.append(obs)
        issued = datetime(day.year, day.month, day.day, 16, 0) + timedelta(days=1)
        self.out["DiagnosticReport"].append({
            "resourceType": "DiagnosticReport",
            "id": "",
            "status": "final",
            "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")]}],
            "code": {"coding": [_coding(LOINC, definition.loinc, definition.loinc_display)], "text": definition.text},
            "subject": self.subject,
            "effectiveDateTime": self._moment(day, minutes),
            "issued": min(issued, datetime(self.today.year, self.today.month, self.today.day, 23, 0)).isoformat()
            + "+00:00",
            "performer": [{"display": f"{self.spec.town} Pathology"}],
            "_results": results,
        })

    def _obs_day(self, within_years: float) -> date:
        """Mostly on a day the patient was seen, otherwise any day in the window."""
        since = self._years_ago(within_years)
        seen = [d for d in self.visits if d >= since]
        if seen and self.rng.random() < 0.7:
            return self.rng.choice(seen)
        return self._day(since)

    def _obs_base(self, key: str, day: date) -> Resource:
        d = OBSERVATIONS[key]
        coding = [_coding(LOINC, d.loinc, d.loinc_display)]
        if d.snomed and d.snomed_display:
            coding.append(_coding(SNOMED, d.snomed, d.snomed_display))
        category = "Vital Signs" if d.category == "vital-signs" else "Laboratory"
        return {
            "resourceType": "Observation",
            "id": "",
            "status": "final",
            "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                             d.category, category)]}],
            "code": {"coding": coding, "text": d.text or d.snomed_display or d.loinc_display},
            "subject": self.subject,
            "effectiveDateTime": self._moment(day, self.rng.randrange(0, 560, 10)),
            "performer": [{"display": self._nurse()}],
        }

    def _quantity(self, key: str, value: float) -> Resource:
        d = OBSERVATIONS[key]
        shown = round(value, d.decimals) if d.decimals else round(value)
        return {"value": shown, "unit": d.unit, "system": UCUM, "code": d.ucum}

    def _measure(self, key: str, day: date, value: float, at: str | None = None) -> Resource:
        """A measured value; `at` puts it at the same moment as another (height, weight and BMI in one sitting)."""
        obs = self._obs_base(key, day)
        if at is not None:
            obs["effectiveDateTime"] = at
        obs["valueQuantity"] = self._quantity(key, value)
        self.out["Observation"].append(obs)
        return obs

    def _blood_pressure(self, day: date, systolic: int, diastolic: int) -> None:
        obs = self._obs_base("bp", day)
        obs["component"] = [
            {"code": self._obs_base(part, day)["code"], "valueQuantity": self._quantity(part, value)}
            for part, value in (("systolic", systolic), ("diastolic", diastolic))
        ]
        self.out["Observation"].append(obs)

    def _immunisations(self) -> None:
        rng, age = self.rng, self.age
        given: list[tuple[str, date, int]] = []
        schedule_start = date(1995, 1, 1)
        for key, days, dose in CHILDHOOD_SCHEDULE:
            when = self.born + timedelta(days=days + rng.randint(0, 20))
            if schedule_start <= when <= self.today and rng.random() < 0.93:
                given.append((key, when, dose))
        if age >= 65:
            when = self._birthday(65) + timedelta(days=rng.randint(0, 200))
            if when <= self.today and rng.random() < 0.7:
                given.append(("ppv", when, 1))
        if age >= 70 and rng.random() < 0.6:
            when = self._birthday(70) + timedelta(days=rng.randint(0, 300))
            if date(2013, 9, 1) <= when <= self.today:
                given.append(("shingles", when, 1))
        codes = {cond.code for cond, _, _ in self.problems if cond.chronic}
        for year in range(self.today.year - 3, self.today.year + 1):
            when = date(year, 10, 1) + timedelta(days=rng.randint(0, 60))
            if when > self.today:
                continue
            years_then = (when - self.born).days / 365.25
            if years_then >= 65 or (years_then >= 18 and codes & _FLU_RISK):
                if rng.random() < 0.75:
                    given.append(("flu", when, 1))
            elif 2 <= years_then < 17 and rng.random() < 0.55:
                given.append(("flu_nasal", when, 1))
        if (date(2021, 1, 1) - self.born).days / 365.25 >= 18 and rng.random() < 0.85:
            first = date(2021, 1, 10) + timedelta(days=max(0, int(150 - age * 1.5)) + rng.randint(0, 20))
            doses = [first, first + timedelta(days=rng.randint(56, 84))]
            if age >= 40:
                doses.append(date(2021, 10, 1) + timedelta(days=rng.randint(0, 60)))
            if age >= 65:
                doses.extend(date(y, 10, 1) + timedelta(days=rng.randint(0, 50)) for y in (2022, 2023, 2024)
                             if rng.random() < 0.7)
            given.extend(("covid", d, n) for n, d in enumerate(doses, 1) if d <= self.today)
        given.sort(key=lambda item: item[1])
        for key, when, dose in given:
            vaccine = VACCINES[key]
            self.out["Immunization"].append({
                "resourceType": "Immunization",
                "id": "",
                "status": "completed",
                "vaccineCode": _concept(SNOMED, vaccine.code, vaccine.display, vaccine.text),
                "patient": self.subject,
                "occurrenceDateTime": when.isoformat(),
                "recorded": when.isoformat(),
                "primarySource": True,
                "lotNumber": f"{rng.choice(_LOT)}{rng.choice(_LOT)}{rng.randint(1000, 9999)}",
                "performer": [{"actor": {"display": self._nurse()}}],
                "protocolApplied": [{"doseNumberPositiveInt": dose}],
            })

    def _birthday(self, years: int) -> date:
        try:
            return self.born.replace(year=self.born.year + years)
        except ValueError:  # 29 February
            return self.born.replace(year=self.born.year + years, day=28)
