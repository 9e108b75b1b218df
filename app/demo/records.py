"""FHIR R4 resources for a generated patient: the Patient itself and a plausible GP record.

A record is a pure function of the patient (its seed, age and sex), the practice and the reference
date, so it can be made lazily and is identical every time it is made.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adapters.patient_contact import DO_NOT_NOTIFY_EXTENSION, DO_NOT_NOTIFY_FLAG_CODE, DO_NOT_NOTIFY_FLAG_SYSTEM
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
    SNOMED,
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
RECORD_TYPES = ("Condition", "MedicationRequest", "AllergyIntolerance", "Encounter", "Observation",
                "Immunization")
_ID_TAGS = {"Condition": "c", "MedicationRequest": "m", "AllergyIntolerance": "a", "Encounter": "e",
            "Observation": "o", "Immunization": "i"}
_LOT = "ABCDEFHKLMPRTWXY"
_FLU_RISK = {"195967001", "44054006", "46635009", "13645005", "53741008", "709044004", "84114007", "230690007"}


def patient_resource(p: DemoPatient, spec: PracticeSpec) -> Resource:
    name: Resource = {"use": "official", "family": p.family, "given": list(p.given)}
    if p.prefix:
        name["prefix"] = [p.prefix]
    practice_ref = {"identifier": {"system": ODS_SYSTEM, "value": spec.ods_code}, "display": spec.name}
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
        "generalPractitioner": [practice_ref],
        "managingOrganization": practice_ref,
    }
    if do_not_notify_demo(p):  # safeguarding: the practice has said never to message this patient
        resource["extension"] = [{"url": DO_NOT_NOTIFY_EXTENSION, "valueBoolean": True}]
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


def _coding(system: str, code: str, display: str) -> Resource:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str, text: str | None = None) -> Resource:
    return {"coding": [_coding(system, code, display)], "text": text or display}


class _RecordBuilder:
    def __init__(self, p: DemoPatient, spec: PracticeSpec, today: date) -> None:
        self.p, self.spec, self.today = p, spec, today
        self.rng = random.Random(p.record_seed)
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
        for rtype, items in self.out.items():
            for n, item in enumerate(items):
                item["id"] = f"{self.p.local_id}-{_ID_TAGS[rtype]}{n}"
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
        return self.rng.choice(self.spec.clinicians)

    def _nurse(self) -> str:
        return self.rng.choice(self.spec.nurses)

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
        for cond, _, onset in self.problems:
            if not cond.meds:
                continue
            keys = rng.sample(cond.meds, min(len(cond.meds), rng.randint(1, 2))) if cond.chronic \
                else [cond.meds[0]]
            for key in keys:
                if avoid_penicillin and key in PENICILLINS:
                    key = "clarithromycin"
                if cond.chronic:
                    self._prescribe(key, self._day(self._years_ago(0.25)), cond, continuous=True)
                else:
                    self._prescribe(key, onset, cond, continuous=False)
        if not self.out["MedicationRequest"]:
            key = rng.choice(ACUTE_FALLBACK)
            if avoid_penicillin and key in PENICILLINS:
                key = "paracetamol"
            self._prescribe(key, self._day(self._years_ago(2)), None, continuous=False)
        self.out["MedicationRequest"].sort(key=lambda m: m["authoredOn"])

    def _prescribe(self, key: str, when: date, reason: ConditionDef | None, *, continuous: bool) -> None:
        med = MEDICATIONS[key]
        name, dosage = med.name, med.dosage
        if self.age < 12 and med.child_name:
            name, dosage = med.child_name, med.child_dosage or dosage
        course = "continuous" if continuous else "acute"
        self.out["MedicationRequest"].append({
            "resourceType": "MedicationRequest",
            "id": "",
            "status": "active" if continuous else "completed",
            "intent": "order",
            "courseOfTherapyType": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", course,
                "Continuous long term therapy" if continuous else "Short course (acute) therapy")]},
            "medicationCodeableConcept": {"text": name},
            "subject": self.subject,
            "authoredOn": when.isoformat(),
            "requester": {"display": self._clinician()},
            "dosageInstruction": [{"text": dosage}],
            "_reason": reason,
        })

    def _encounters(self) -> None:
        rng = self.rng
        planned: list[tuple[date, tuple[str, str, str], Resource | None]] = []
        by_code = {code: (code, display, cls) for code, display, cls in ENCOUNTER_TYPES}
        for cond, resource, onset in self.problems:
            kind = by_code["11429006"] if cond.chronic else by_code[rng.choice(("185345009", "185317003"))]
            planned.append((onset, kind, resource["code"]))
            if cond.chronic and cond.monitoring:
                for _ in range(rng.randint(1, 2)):
                    planned.append((self._day(self._years_ago(3)), by_code[rng.choice(("390906007", "185349003"))],
                                    resource["code"]))
        for _ in range(rng.randint(0, 3 + int(self.age) // 20)):
            code, display = rng.choice(SYMPTOMS)
            kind = rng.choice(ENCOUNTER_TYPES[:5]) if self.age < 80 else rng.choice(ENCOUNTER_TYPES)
            planned.append((self._day(self._years_ago(6)), kind, _concept(SNOMED, code, display)))
        planned.sort(key=lambda item: item[0])
        for day, (code, display, cls), reason in planned[-25:]:
            minutes = rng.randrange(0, 560, 10)
            start = self._moment(day, minutes)
            end = self._moment(day, minutes + rng.choice((10, 15, 20)))
            nurse = code == "185349003" and rng.random() < 0.6
            self.out["Encounter"].append({
                "resourceType": "Encounter",
                "id": "",
                "status": "finished",
                "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", cls, ENCOUNTER_CLASSES[cls]),
                "type": [_concept(SNOMED, code, display)],
                "subject": self.subject,
                "participant": [{"individual": {"display": self._nurse() if nurse else self._clinician()}}],
                "period": {"start": start, "end": end},
                "reasonCode": [reason] if reason else [],
                "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": self.spec.ods_code},
                                    "display": self.spec.name},
            })
            self.visits.append(day)

    def _observations(self) -> None:
        rng, age = self.rng, self.age
        codes = {cond.code for cond, _, _ in self.problems}
        monitoring = {kind for cond, _, _ in self.problems if cond.chronic for kind in cond.monitoring}
        if age >= 16:
            hypertensive = "38341003" in codes
            for _ in range(1 + (2 if "bp" in monitoring else 0) + rng.randint(0, 1)):
                systolic = 112 + max(0.0, age - 30) * 0.35 + (14 if hypertensive else 0) + rng.uniform(-10, 10)
                diastolic = 72 + (8 if hypertensive else 0) + rng.uniform(-8, 8)
                self._blood_pressure(self._obs_day(5), round(systolic), round(diastolic))
            height = rng.gauss(176 if self.p.sex == "male" else 163, 7)
            bmi_base = rng.uniform(31, 40) if "414916001" in codes else rng.uniform(19.5, 31)
            for _ in range(rng.randint(1, 2)):
                bmi = bmi_base + rng.uniform(-1.2, 1.2)
                day = self._obs_day(6)
                self._measure("height", day, height)
                self._measure("weight", day, bmi * (height / 100) ** 2)
                self._measure("bmi", day, bmi)
        else:
            for _ in range(rng.randint(1, 3)):
                day = self._obs_day(max(age, 0.05))
                years = (day - self.born).days / 365.25
                height = 50 + 25 * years if years < 1 else 75 + 6.2 * (years - 1)
                weight = 3.4 + 6.5 * years if years < 1 else 10 + 2.7 * (years - 1)
                self._measure("weight", day, weight * rng.uniform(0.9, 1.1))
                if years >= 0.5:
                    self._measure("height", day, height * rng.uniform(0.96, 1.04))
        diabetic = codes & {"44054006", "46635009"}
        if diabetic:
            for _ in range(rng.randint(2, 4)):
                self._measure("hba1c", self._obs_day(3), rng.uniform(50, 80 if "46635009" in codes else 72))
        elif age >= 40 and rng.random() < 0.15:
            self._measure("hba1c", self._obs_day(5), rng.uniform(34, 46))
        if "cholesterol" in monitoring or (age >= 40 and rng.random() < 0.35):
            for _ in range(rng.randint(1, 2)):
                self._measure("cholesterol", self._obs_day(5), rng.uniform(3.2, 7.2))
        if "egfr" in monitoring:
            for _ in range(2):
                self._measure("egfr", self._obs_day(3), rng.uniform(30, 59))
        elif age >= 60 and rng.random() < 0.2:
            self._measure("egfr", self._obs_day(3), rng.uniform(60, 105))
        self.out["Observation"].sort(key=lambda o: o["effectiveDateTime"])

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
            "code": {"coding": coding, "text": d.snomed_display or d.loinc_display},
            "subject": self.subject,
            "effectiveDateTime": self._moment(day, self.rng.randrange(0, 560, 10)),
            "performer": [{"display": self._nurse()}],
        }

    def _quantity(self, key: str, value: float) -> Resource:
        d = OBSERVATIONS[key]
        shown = round(value, d.decimals) if d.decimals else round(value)
        return {"value": shown, "unit": d.unit, "system": UCUM, "code": d.ucum}

    def _measure(self, key: str, day: date, value: float) -> None:
        obs = self._obs_base(key, day)
        obs["valueQuantity"] = self._quantity(key, value)
        self.out["Observation"].append(obs)

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
