"""GP Connect Access Record: Structured (FHIR STU3) bundles for a demo patient.

Built from the same generated FHIR R4 record the FHIR R4 practices serve (`Population.record`),
reshaped into the CareConnect-GPC profiles, so that one person looks alike over either protocol.
The shapes follow the published example responses in ../shared/data/gpconnect-stu3/.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.core.nhs_number import NHS_NUMBER_SYSTEM
from app.demo.fhir_json import now_iso
from app.demo.population import DemoPatient, Population, hash_seed
from app.demo.records import ODS_SYSTEM

Resource = dict[str, Any]

SNOMED = "http://snomed.info/sct"
SD = "https://fhir.nhs.uk/STU3/StructureDefinition/"
CS = "https://fhir.nhs.uk/STU3/CodeSystem/"
BUNDLE_PROFILE = SD + "GPConnect-StructuredRecord-Bundle-1"
LIST_WARNING_URL = SD + "Extension-CareConnect-GPC-ListWarningCode-1"
REGISTRATION_DETAILS_URL = SD + "Extension-CareConnect-GPC-RegistrationDetails-1"
LIST_WARNING_SYSTEM = CS + "CareConnect-ListWarningCode-1"
EMPTY_REASON_SYSTEM = CS + "CareConnect-ListEmptyReasonCode-1"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
INTERPRETATION_SYSTEM = "http://hl7.org/fhir/v2/0078"
COMMENT_NOTE = {"coding": [{"system": SNOMED, "code": "37331000000100", "display": "Comment note"}]}
DATA_ID_SYSTEM = "https://provider.nhs.uk/data-identifier"

#: warning code -> display, as in CareConnect-ListWarningCode-1
WARNINGS: dict[str, str] = {
    "confidential-items": "Confidential items",
    "data-in-transit": "Data in transit",
    "data-awaiting-filing": "Data awaiting filing",
}
#: which section Lists each warning is put on
_WARNING_LISTS: dict[str, tuple[str, ...]] = {
    "confidential-items": ("problems", "consultations"),
    "data-in-transit": ("allergies", "resolved-allergies", "medications", "problems", "consultations",
                        "immunisations", "investigations", "uncategorised"),
    "data-awaiting-filing": ("investigations", "uncategorised"),
}
_WARNING_NOTES = {
    "confidential-items": "Items excluded due to confidentiality and/or patient preferences.",
    "data-in-transit": "Patient record transfer from previous GP practice not yet complete; information "
                       "recorded before {date} may be missing.",
    "data-awaiting-filing": "Patient data may be incomplete as there is data supplied by a third party "
                            "awaiting review before becoming available.",
}

#: section key -> (SNOMED code, display, List title)
SECTIONS: dict[str, tuple[str, str, str]] = {
    "allergies": ("886921000000105", "Allergies and adverse reactions", "Allergies and adverse reactions"),
    "resolved-allergies": ("1103671000000101", "Ended allergies", "Ended allergies"),
    "medications": ("933361000000108", "Medications and medical devices", "Medications and medical devices"),
    "problems": ("717711000000103", "Problems", "Problems"),
    "consultations": ("1149501000000101", "List of consultations", "List of consultations"),
    "immunisations": ("1102181000000102", "Immunisations", "Immunisations"),
    "investigations": ("887191000000108", "Investigations and results", "Investigations and results"),
    "uncategorised": ("826501000000100", "Miscellaneous record", "Miscellaneous record"),
}
_LAB = {"hba1c", "cholesterol", "egfr"}  # observation kinds that come back as investigation results
#: CareConnect-PrescriptionType-1: (code, display) by kind
_PRESCRIPTION_TYPES = {"acute": ("acute", "Acute"), "repeat": ("repeat", "Repeat"),
                       "repeat-dispensing": ("repeat-dispensing", "Repeat dispensing")}


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None

    def holds(self, when: str | None) -> bool:
        if not when:
            return self.start is None and self.end is None
        day = date.fromisoformat(when[:10])
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Options:
    """What the consumer asked for in the Parameters resource (None: section not requested)."""

    allergies: bool = False
    resolved_allergies: bool = False
    medication: bool = False
    prescription_issues: bool = False
    medication_from: date | None = None
    problems: bool = False
    problem_status: str | None = None  # active | inactive
    consultations: bool = False
    consultation_period: Period | None = None
    most_recent: int | None = None
    immunisations: bool = False
    investigations: bool = False
    uncategorised: bool = False
    uncategorised_period: Period | None = None


def patient_warnings(nhs_number: str) -> tuple[str, ...]:
    """The List warnings a patient's record carries at a GP Connect practice (about 15% of patients)."""
    roll = hash_seed("gpc-warning", nhs_number) % 20
    return {0: ("confidential-items",), 1: ("data-in-transit",), 2: ("data-awaiting-filing",),
            3: ("confidential-items", "data-awaiting-filing")}.get(roll, ())


def patient_dissents(nhs_number: str) -> bool:
    """Whether the patient has dissented from sharing their record over GP Connect (about 2%)."""
    return hash_seed("gpc-dissent", nhs_number) % 50 == 7


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mosaic-demo-gpc:" + ":".join(map(str, parts))))


def _profile(name: str) -> Resource:
    return {"profile": [SD + name]}


def _ref(rtype: str, rid: str, display: str | None = None) -> Resource:
    ref: Resource = {"reference": f"{rtype}/{rid}"}
    if display:
        ref["display"] = display
    return ref


def _code(concept: Resource | None) -> Resource:
    """An R4 CodeableConcept as STU3 (the same shape; SNOMED codings only where both exist)."""
    concept = concept or {}
    codings = [dict(c) for c in concept.get("coding") or [] if c.get("system") == SNOMED]
    out: Resource = {"coding": codings or [dict(c) for c in concept.get("coding") or []]}
    if concept.get("text"):
        out["text"] = concept["text"]
    return out if out["coding"] or "text" in out else {"text": "Unknown"}


def _status(concept: Resource | None) -> str | None:
    for coding in (concept or {}).get("coding") or []:
        return coding.get("code")
    return None


class StructuredRecordBuilder:
    """One response: the patient, who recorded what, and a List per requested section."""

    def __init__(self, population: Population, patient: DemoPatient, options: Options,
                 warnings: Iterable[str] = ()) -> None:
        self.pop, self.p, self.o = population, patient, options
        self.spec = population.spec
        died = str(population.patient_resource(patient).get("deceasedDateTime") or "")[:10]
        # a record ends at death: nothing is issued or recorded after it
        self.today = min(population.reference_date, date.fromisoformat(died)) if died else population.reference_date
        self.record = population.record(patient)
        self.warnings = tuple(warnings)
        self.pid = patient.local_id
        self.subject = _ref("Patient", self.pid)
        self.org_id = _uid(self.spec.id, "organization")
        self.entries: list[Resource] = []
        self._have: set[tuple[str, str]] = set()
        self._people: dict[str, str] = {}  # display name -> Practitioner id
        self._people_resources: list[Resource] = []
        self._plans: dict[date, list[Resource]] = {}  # medication plans by the day they were written

    # -- output -------------------------------------------------------------------------------

    def build(self) -> Resource:
        o = self.o
        if o.allergies:
            self._allergies()
        if o.medication:
            self._medications()
        if o.problems:
            self._problems()
        if o.consultations:
            self._consultations()
        if o.immunisations:
            self._immunisations()
        if o.investigations:
            self._investigations()
        if o.uncategorised:
            self._uncategorised()
        branch = self._branch()
        head = [self._patient(), self._organization(), *([branch] if branch else []), *self._people_resources]
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [BUNDLE_PROFILE]},
                "type": "collection", "entry": [{"resource": r} for r in head + self.entries]}

    def _add(self, resource: Resource) -> None:
        key = (resource["resourceType"], resource["id"])
        if key not in self._have:
            self._have.add(key)
            self.entries.append(resource)

    def _person(self, display: str | None) -> Resource | None:
        """A Practitioner reference for a clinician named in the R4 record (made once per response)."""
        if not display:
            return None
        pid = self._people.get(display)
        if pid is None:
            pid = self._people[display] = _uid(self.spec.id, "practitioner", display)
            name = display.removesuffix(" (Practice Nurse)")
            prefix, _, rest = name.partition(" ") if name.startswith("Dr ") else ("", "", name)
            given, _, family = rest.rpartition(" ")
            person: Resource = {"use": "usual", "family": family or rest, "given": [given] if given else []}
            if prefix:
                person["prefix"] = [prefix]
            self._people_resources.append({
                "resourceType": "Practitioner", "id": pid, "meta": _profile("CareConnect-GPC-Practitioner-1"),
                "identifier": [{"system": SDS_USER_SYSTEM, "value": f"G{hash_seed(pid) % 10**8:08d}"}],
                "name": [person],
            })
        return _ref("Practitioner", pid)

    def _list(self, key: str, items: list[Resource], *, empty_note: str | None = None) -> Resource:
        code, display, title = SECTIONS[key]
        resource: Resource = {
            "resourceType": "List", "id": _uid(self.spec.id, self.pid, "list", key),
            "meta": _profile("CareConnect-GPC-List-1"), "status": "current", "mode": "snapshot",
            "title": title, "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
            "subject": self.subject, "date": now_iso(),
            "orderedBy": {"coding": [{"system": "http://hl7.org/fhir/list-order", "code": "event-date",
                                      "display": "Sorted by Event Date"}]},
        }
        warnings = [w for w in self.warnings if key in _WARNING_LISTS.get(w, ())]
        if warnings:
            resource["extension"] = [{"url": LIST_WARNING_URL, "valueCode": w} for w in warnings]
            since = (self.today - timedelta(days=60)).isoformat()
            resource["note"] = [{"text": _WARNING_NOTES[w].format(date=since)} for w in warnings]
        if items:
            resource["entry"] = [{"item": _ref(i["resourceType"], i["id"])} for i in items]
        else:
            resource["emptyReason"] = {"coding": [{"system": EMPTY_REASON_SYSTEM, "code": "no-content-recorded",
                                                   "display": "No Content Recorded"}]}
            resource.setdefault("note", []).append({"text": empty_note or "Information not available."})
        return resource

    def _section(self, key: str, items: list[Resource], extra: Iterable[Resource] = ()) -> None:
        self._add(self._list(key, items))
        for item in [*items, *extra]:
            self._add(item)

    # -- who ----------------------------------------------------------------------------------

    def _patient(self) -> Resource:
        p = self.p
        r4 = self.pop.patient_resource(p)
        name = dict((r4.get("name") or [{}])[0])
        given = " ".join(name.get("given") or [])
        prefix = " ".join(name.get("prefix") or [])
        name["text"] = f"{str(name.get('family', '')).upper()} {given}" + (f" ({prefix})" if prefix else "")
        identifier = [{
            "extension": [{"url": SD + "Extension-CareConnect-GPC-NHSNumberVerificationStatus-1",
                           "valueCodeableConcept": {"coding": [{
                               "system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1",
                               "code": "01", "display": "Number present and verified"}]}}],
            "system": NHS_NUMBER_SYSTEM, "value": p.nhs_number}] if p.nhs_number else []
        resource: Resource = {
            "resourceType": "Patient", "id": self.pid,
            "meta": {"versionId": "1", "profile": [SD + "CareConnect-GPC-Patient-1"]},
            # the registration details, and the do-not-notify mark where the practice set it
            "extension": [self._registration_details(r4),
                          *(e for e in r4.get("extension", []) if e.get("url") != REGISTRATION_DETAILS_URL)],
            "identifier": identifier, "active": True, "name": [name],
            "telecom": r4.get("telecom") or [], "gender": r4.get("gender"), "birthDate": r4.get("birthDate"),
            "deceasedDateTime": r4.get("deceasedDateTime"), "deceasedBoolean": r4.get("deceasedBoolean"),
            "address": [dict(a, type="physical") for a in r4.get("address") or []],
            "managingOrganization": _ref("Organization", self.org_id),
        }
        usual = next((g.get("display") for g in r4.get("generalPractitioner") or []
                      if g.get("type") == "Practitioner" or (g.get("reference") or "").startswith("Practitioner/")),
                     None)
        gp = self._person(usual or self.spec.clinicians[hash_seed(self.pid) % len(self.spec.clinicians)])
        if gp:
            resource["generalPractitioner"] = [gp]
        return {k: v for k, v in resource.items() if v not in (None, [])}

    def _registration_details(self, r4: Resource) -> Resource:
        """The R4 Patient's registration details (period and type) as they are; made up (a regular registration
        since a day the patient's seed picks) for a patient whose R4 record has none."""
        found = next((e for e in r4.get("extension", []) if e.get("url") == REGISTRATION_DETAILS_URL), None)
        parts = [dict(x) for x in (found or {}).get("extension", [])]
        if not any(x.get("url") == "registrationPeriod" for x in parts):
            born = self.p.birth_date or self.today
            registered = max(born, self.today - timedelta(days=hash_seed(self.pid) % 9000))
            parts.insert(0, {"url": "registrationPeriod", "valuePeriod": {"start": registered.isoformat()}})
        if not any(x.get("url") == "registrationType" for x in parts):
            parts.append({"url": "registrationType", "valueCodeableConcept": {"coding": [{
                "system": CS + "CareConnect-RegistrationType-1", "code": "R", "display": "Regular"}]}})
        branch = self._branch()
        if branch is not None and not any(x.get("url") == "preferredBranchSurgery" for x in parts):
            parts.append({"url": "preferredBranchSurgery", "valueReference": _ref("Location", branch["id"])})
        return {"url": REGISTRATION_DETAILS_URL, "extension": parts}

    def _branch(self) -> Resource | None:
        """A patient living in another town than the practice's attends its branch surgery there (a Location,
        as GP Connect's preferredBranchSurgery names it)."""
        city = self.p.city
        if not city or city == self.spec.town:
            return None
        return {"resourceType": "Location", "id": _uid(self.spec.id, "branch", city),
                "meta": _profile("CareConnect-GPC-Location-1"), "status": "active",
                "name": f"{self.spec.name}, {city} branch surgery", "address": {"city": city},
                "managingOrganization": _ref("Organization", self.org_id)}

    def _organization(self) -> Resource:
        spec = self.spec
        return {"resourceType": "Organization", "id": self.org_id, "meta": _profile("CareConnect-GPC-Organization-1"),
                "identifier": [{"system": ODS_SYSTEM, "value": spec.ods_code}], "name": spec.name,
                "address": [{"city": spec.town}]}

    # -- sections -----------------------------------------------------------------------------

    def _allergies(self) -> None:
        active: list[Resource] = []
        ended: list[Resource] = []
        for r4 in self.record.get("AllergyIntolerance", []):
            # ended where the R4 record says so; else about a quarter, for someone registered here only (a person
            # registered at two practices disagrees only where the records do, see records.diverge)
            resolved = _status(r4.get("clinicalStatus")) in ("resolved", "inactive") or (
                self.p.shared_as is None and hash_seed(r4["id"], "ended") % 4 == 0)
            item: Resource = {
                "resourceType": "AllergyIntolerance", "id": r4["id"],
                "meta": _profile("CareConnect-GPC-AllergyIntolerance-1"),
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(r4["id"])}],
                "clinicalStatus": "resolved" if resolved else "active",
                "verificationStatus": _status(r4.get("verificationStatus")) or "unconfirmed",
                "type": r4.get("type"), "category": r4.get("category"), "criticality": r4.get("criticality"),
                "code": _code(r4.get("code")), "patient": self.subject,
                "assertedDate": r4.get("recordedDate"), "onsetDateTime": r4.get("recordedDate"),
                "recorder": self._person((r4.get("recorder") or {}).get("display")),
                "reaction": [{"manifestation": [_code(m) for m in x.get("manifestation") or []],
                              "severity": x.get("severity")} for x in r4.get("reaction") or []],
            }
            if resolved:
                start = date.fromisoformat(r4["recordedDate"])
                end = min(self.today, start + timedelta(days=365 + hash_seed(r4["id"]) % 2000))
                item["extension"] = [{"url": SD + "Extension-CareConnect-GPC-AllergyIntoleranceEnd-1",
                                      "extension": [{"url": "endDate", "valueDateTime": end.isoformat()},
                                                    {"url": "reasonEnded", "valueString": "No longer applies"}]}]
            item = {k: v for k, v in item.items() if v is not None}
            (ended if resolved else active).append(item)
        self._section("allergies", active)
        if self.o.resolved_allergies:
            self._section("resolved-allergies", ended)

    def _medications(self) -> None:
        statements: list[Resource] = []
        extra: list[Resource] = []
        since = self.o.medication_from
        for r4 in self.record.get("MedicationRequest", []):
            course = _status(r4.get("courseOfTherapyType")) or "acute"
            continuous = course.startswith("continuous")
            authored = date.fromisoformat(r4["authoredOn"])
            r4_status = r4.get("status") or ("active" if continuous else "completed")
            validity_end = ((r4.get("dispenseRequest") or {}).get("validityPeriod") or {}).get("end")
            if r4_status == "stopped":  # stopped (at a review, at death): ended the day the R4 record says
                ends = date.fromisoformat(validity_end) if validity_end else min(self.today, authored
                                                                                 + timedelta(days=90))
                status = "stopped"
            elif continuous:
                ends, status = self.today, "active"
            elif r4_status == "active":  # a recent acute course, still current
                ends, status = max(self.today, authored + timedelta(days=28)), "active"
            else:
                ends, status = authored + timedelta(days=14), "completed"
            if since is not None and ends < since:
                continue
            rid = r4["id"]
            name = (r4.get("medicationCodeableConcept") or {}).get("text") or "Unknown medication"
            med: Resource = {"resourceType": "Medication", "id": f"{rid}-med",
                             "meta": _profile("CareConnect-GPC-Medication-1"),
                             "code": {"coding": [{"system": SNOMED, "code": str(hash_seed(name) % 10**8 + 10**9),
                                                  "display": name}], "text": name}}
            recorder = self._person((r4.get("requester") or {}).get("display"))
            dosage = [{"text": d.get("text")} for d in r4.get("dosageInstruction") or []]
            kind = _PRESCRIPTION_TYPES["repeat-dispensing" if "repeat-dispensing" in course
                                       else "repeat" if continuous else "acute"]
            open_ended = continuous and status == "active"
            plan: Resource = {
                "resourceType": "MedicationRequest", "id": f"{rid}-plan",
                "meta": _profile("CareConnect-GPC-MedicationRequest-1"),
                "extension": [{"url": SD + "Extension-CareConnect-GPC-PrescriptionType-1",
                               "valueCodeableConcept": {"coding": [{
                                   "system": CS + "CareConnect-PrescriptionType-1", "code": kind[0],
                                   "display": kind[1]}]}}],
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(rid, "plan")}],
                "status": status, "intent": "plan", "medicationReference": _ref("Medication", med["id"]),
                "subject": self.subject, "authoredOn": r4["authoredOn"], "recorder": recorder,
                "dosageInstruction": dosage,
                "dispenseRequest": {"validityPeriod": {"start": r4["authoredOn"]} | (
                    {} if open_ended else {"end": ends.isoformat()}),
                    "expectedSupplyDuration": {"value": 28, "unit": "day", "system": "http://unitsofmeasure.org",
                                               "code": "d"}},
            }
            if status == "stopped":
                reason = (r4.get("statusReason") or {}).get("text") or "Stopped"
                plan["extension"].append({"url": SD + "Extension-CareConnect-GPC-MedicationStatusReason-1",
                                          "extension": [{"url": "statusChangeDate", "valueDateTime": ends.isoformat()},
                                                        {"url": "statusReason",
                                                         "valueCodeableConcept": {"text": reason}}]})
            if r4.get("reasonReference"):
                plan["reasonCode"] = [{"text": r["display"]} for r in r4["reasonReference"] if r.get("display")]
            issue_days = [authored]
            if continuous:
                day = authored + timedelta(days=28)
                while day <= min(ends, self.today):
                    issue_days.append(day)
                    day += timedelta(days=28)
                issue_days = issue_days[-12:]
            self._plans.setdefault(authored, []).append(plan)
            issues: list[Resource] = []
            if self.o.prescription_issues:
                for n, day in enumerate(issue_days, 1):
                    issues.append({
                        "resourceType": "MedicationRequest", "id": f"{rid}-issue{n}",
                        "meta": _profile("CareConnect-GPC-MedicationRequest-1"),
                        "extension": plan["extension"][:1],
                        "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(rid, "issue", n)}],
                        "basedOn": [_ref("MedicationRequest", plan["id"])],
                        "status": "completed", "intent": "order",
                        "medicationReference": plan["medicationReference"], "subject": self.subject,
                        "authoredOn": day.isoformat(), "recorder": recorder, "dosageInstruction": dosage,
                        "dispenseRequest": {
                            "validityPeriod": {"start": day.isoformat()},
                            "expectedSupplyDuration": plan["dispenseRequest"]["expectedSupplyDuration"]},
                    })
            statement: Resource = {
                "resourceType": "MedicationStatement", "id": rid,
                "meta": _profile("CareConnect-GPC-MedicationStatement-1"),
                "extension": [
                    {"url": SD + "Extension-CareConnect-GPC-MedicationStatementLastIssueDate-1",
                     "valueDateTime": issue_days[-1].isoformat()},
                    {"url": SD + "Extension-CareConnect-GPC-PrescribingAgency-1",
                     "valueCodeableConcept": {"coding": [{"system": CS + "CareConnect-PrescribingAgency-1",
                                                          "code": "prescribed-at-gp-practice",
                                                          "display": "Prescribed at GP practice"}]}}],
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(rid, "statement")}],
                "basedOn": [_ref("MedicationRequest", plan["id"])], "status": status,
                "medicationReference": plan["medicationReference"],
                "effectivePeriod": {"start": r4["authoredOn"]} | ({} if open_ended else {"end": ends.isoformat()}),
                "dateAsserted": r4["authoredOn"], "subject": self.subject, "taken": "unk", "dosage": dosage,
            }
            statements.append(statement)
            extra += [plan, *issues, med]
        self._section("medications", statements, [{k: v for k, v in r.items() if v is not None} for r in extra])

    def _problems(self) -> None:
        wanted = self.o.problem_status
        meds = self.record.get("MedicationRequest", [])
        items: list[Resource] = []
        for r4 in self.record.get("Condition", []):
            active = _status(r4.get("clinicalStatus")) == "active"
            status = "active" if active else "inactive"
            if wanted and wanted != status:
                continue
            related = [{"url": SD + "Extension-CareConnect-GPC-RelatedClinicalContent-1",
                        "valueReference": _ref("MedicationStatement", m["id"])}
                       for m in meds if any(r.get("reference") == f"Condition/{r4['id']}"
                                            for r in m.get("reasonReference") or [])]
            item: Resource = {
                "resourceType": "Condition", "id": r4["id"],
                "meta": _profile("CareConnect-GPC-ProblemHeader-Condition-1"),
                "extension": [{"url": SD + "Extension-CareConnect-GPC-ProblemSignificance-1",
                               "valueCode": "major" if active else "minor"}] + (related if self.o.medication else []),
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(r4["id"])}],
                "clinicalStatus": status,
                "category": [{"coding": [{"system": CS + "CareConnect-ConditionCategory-1",
                                          "code": "problem-list-item", "display": "Problem list item"}]}],
                "code": _code(r4.get("code")), "subject": self.subject,
                "onsetDateTime": r4.get("onsetDateTime"), "abatementDateTime": r4.get("abatementDateTime"),
                "assertedDate": r4.get("recordedDate"),
                "asserter": self._person((r4.get("asserter") or {}).get("display")),
            }
            items.append({k: v for k, v in item.items() if v is not None})
        self._section("problems", items)

    def _observation(self, r4: Resource) -> Resource:
        item: Resource = {
            "resourceType": "Observation", "id": r4["id"], "meta": _profile("CareConnect-GPC-Observation-1"),
            "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(r4["id"])}],
            "status": "final", "code": _code(r4.get("code")), "subject": self.subject,
            "effectiveDateTime": r4.get("effectiveDateTime"), "issued": r4.get("effectiveDateTime"),
            "performer": [p for p in [self._person(x.get("display")) for x in r4.get("performer") or []] if p],
        }
        if "valueQuantity" in r4:
            item["valueQuantity"] = r4["valueQuantity"]
        if "component" in r4:
            item["component"] = [{"code": _code(c["code"]), "valueQuantity": c["valueQuantity"]}
                                 for c in r4["component"]]
        if r4.get("referenceRange"):
            item["referenceRange"] = [{k: v for k, v in r.items() if k in ("low", "high", "text")}
                                      for r in r4["referenceRange"]]
        if r4.get("interpretation"):  # R4's v3 interpretation codes, as STU3's v2 table 0078
            item["interpretation"] = {"coding": [{"system": INTERPRETATION_SYSTEM, "code": c.get("code"),
                                                  "display": c.get("display")}
                                                 for i in r4["interpretation"][:1] for c in i.get("coding") or []]}
        return item

    def _split_observations(self) -> tuple[list[Resource], list[Resource]]:
        """(laboratory results, everything else) as R4 Observations."""
        lab: list[Resource] = []
        other: list[Resource] = []
        for r4 in self.record.get("Observation", []):
            category = next((c.get("code") for cat in r4.get("category") or [] for c in cat.get("coding") or []), "")
            (lab if category == "laboratory" else other).append(r4)
        return lab, other

    def _consultations(self) -> None:
        encounters = list(self.record.get("Encounter", []))
        if self.o.consultation_period is not None:
            encounters = [e for e in encounters if self.o.consultation_period.holds(e["period"]["start"])]
        if self.o.most_recent is not None:
            encounters = encounters[-self.o.most_recent:]
        _, other = self._split_observations()
        notes = self._notes()
        has_notes = "Composition" in self.record
        conditions = {c["code"]["coding"][0]["code"]: c for c in self.record.get("Condition", [])
                      if (c.get("code") or {}).get("coding")}
        consultation_lists: list[Resource] = []
        extra: list[Resource] = []
        for r4 in reversed(encounters):  # most recent first
            eid, start = r4["id"], r4["period"]["start"]
            day = start[:10]
            who = self._person(((r4.get("participant") or [{}])[0].get("individual") or {}).get("display"))
            kind = _code((r4.get("type") or [{}])[0])
            encounter = {
                "resourceType": "Encounter", "id": eid, "meta": _profile("CareConnect-GPC-Encounter-1"),
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(eid)}], "status": "finished",
                "type": [kind], "subject": self.subject, "period": r4["period"],
                "serviceProvider": _ref("Organization", self.org_id),
            }
            if who:
                encounter["participant"] = [{"type": [{"coding": [{
                    "system": "http://hl7.org/fhir/v3/ParticipationType", "code": "PPRF",
                    "display": "primary performer"}]}], "individual": who}]
            reason = (r4.get("reasonCode") or [None])[0]  # the topic's title (and its problem, where it is one)
            written = notes.get(eid)
            if written is None and not has_notes:  # a record made before notes were kept: a line of its own
                written = {"History": f"Seen for {(reason or {}).get('text', 'review').lower()}."}
            headings: dict[str, list[Resource]] = {"History": [], "Examination": [], "Plan": []}
            for n, (heading, text) in enumerate((written or {}).items()):
                comment = {"resourceType": "Observation", "id": f"{eid}-note{n}",
                           "meta": _profile("CareConnect-GPC-Observation-1"), "status": "final",
                           "code": COMMENT_NOTE, "subject": self.subject, "context": _ref("Encounter", eid),
                           "effectiveDateTime": start, "issued": start, "comment": text}
                if who:
                    comment["performer"] = [who]
                headings.setdefault(heading, []).append(comment)
            headings["Examination"] += [self._observation(o) for o in other
                                        if (o.get("effectiveDateTime") or "")[:10] == day]
            if self.o.medication:  # what was prescribed that day, as the plan names it
                headings["Plan"] += [p for p in self._plans.get(date.fromisoformat(day), ())
                                     if ("MedicationRequest", p["id"]) in self._have]
            categories = [(title, members) for title, members in headings.items() if members]
            topic_id = f"{eid}-topic1"
            category_lists = []
            for n, (title, members) in enumerate(categories, 1):
                category_lists.append(self._consultation_list(
                    f"{topic_id}-category{n}", "24781000000107", "Category (EHR)", title, eid, start, members))
                extra.extend(m for m in members if m["resourceType"] == "Observation")
            topic = self._consultation_list(topic_id, "25851000000105", "Topic (EHR)",
                                            (reason or {}).get("text") or "Consultation", eid, start, category_lists)
            condition = conditions.get(_status(reason) or "") if reason else None
            if condition is not None and self.o.problems:
                topic["extension"] = [{"url": SD + "Extension-CareConnect-GPC-RelatedProblemHeader-1",
                                       "valueReference": _ref("Condition", condition["id"])}]
            consultation = self._consultation_list(f"{eid}-consultation", "325851000000107", "Consultation",
                                                   kind.get("text") or "Consultation", eid, start, [topic])
            consultation_lists.append(encounter)
            extra += [consultation, topic, *category_lists]
        self._section("consultations", consultation_lists, extra)

    def _notes(self) -> dict[str, dict[str, str]]:
        """Encounter id -> heading -> what the clinician wrote, from the R4 record's consultation notes
        (Compositions pointing at their Encounter, one section per heading)."""
        found: dict[str, dict[str, str]] = {}
        for note in self.record.get("Composition", []):
            eid = ((note.get("encounter") or {}).get("reference") or "").removeprefix("Encounter/")
            for section in note.get("section") or []:
                text = html.unescape(re.sub(r"<[^>]+>", "", (section.get("text") or {}).get("div") or "")).strip()
                if eid and text:
                    found.setdefault(eid, {})[section.get("title") or "Notes"] = text
        return found

    def _consultation_list(self, lid: str, code: str, display: str, title: str, eid: str, when: str,
                           members: list[Resource]) -> Resource:
        return {"resourceType": "List", "id": lid, "meta": _profile("CareConnect-GPC-List-1"),
                "status": "current", "mode": "snapshot", "title": title,
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                "subject": self.subject, "encounter": _ref("Encounter", eid), "date": when,
                "orderedBy": {"coding": [{"system": "http://hl7.org/fhir/list-order", "code": "system",
                                          "display": "Sorted by System"}]},
                "entry": [{"item": _ref(m["resourceType"], m["id"])} for m in members]}

    def _immunisations(self) -> None:
        items: list[Resource] = []
        for r4 in self.record.get("Immunization", []):
            when = r4.get("occurrenceDateTime")
            dose = next((p.get("doseNumberPositiveInt") for p in r4.get("protocolApplied") or []), None)
            performer = self._person(((r4.get("performer") or [{}])[0].get("actor") or {}).get("display"))
            item: Resource = {
                "resourceType": "Immunization", "id": r4["id"], "meta": _profile("CareConnect-GPC-Immunization-1"),
                "extension": [{"url": SD + "Extension-CareConnect-GPC-DateRecorded-1",
                               "valueDateTime": r4.get("recorded")},
                              {"url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/"
                                      "Extension-CareConnect-VaccinationProcedure-1",
                               "valueCodeableConcept": _code(r4.get("vaccineCode"))}],
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(r4["id"])}],
                "status": "completed", "notGiven": False, "vaccineCode": _code(r4.get("vaccineCode")),
                "patient": self.subject, "date": when, "primarySource": True, "lotNumber": r4.get("lotNumber"),
            }
            if performer:
                item["practitioner"] = [{"role": {"coding": [{"system": "http://hl7.org/fhir/v2/0443", "code": "AP",
                                                              "display": "Administering Provider"}]},
                                         "actor": performer}]
            if dose:
                item["vaccinationProtocol"] = [{"doseSequence": dose, "targetDisease": [
                    {"text": (r4.get("vaccineCode") or {}).get("text", "")}], "doseStatus": {"coding": [{
                        "system": "http://hl7.org/fhir/vaccination-protocol-dose-status", "code": "count",
                        "display": "Counts"}]}}]
            items.append({k: v for k, v in item.items() if v is not None})
        self._section("immunisations", items)

    def _investigations(self) -> None:
        """A DiagnosticReport per R4 laboratory report, coded as GP Connect providers code them (the generic
        "Diagnostic studies report"); a report of several values holds one test group (named as the R4 report
        is, such as "Lipid profile") whose members are the values, as pathology_response1 in ../shared/data
        does. Laboratory results no R4 report holds are reported by day."""
        lab, _ = self._split_observations()
        by_id = {o["id"]: o for o in lab}
        reported: set[str] = set()
        reports: list[Resource] = []
        extra: list[Resource] = []
        for r4 in self.record.get("DiagnosticReport", []):
            members = [by_id[i] for i in (ref.get("reference", "").removeprefix("Observation/")
                                          for ref in r4.get("result") or []) if i in by_id]
            if not members:
                continue
            reported.update(m["id"] for m in members)
            performer = next((x.get("display") for x in r4.get("performer") or [] if x.get("display")), None)
            report, parts = self._report(r4["id"], members, r4.get("code"), r4.get("issued"), performer)
            reports.append(report)
            extra += parts
        by_day: dict[str, list[Resource]] = {}
        for r4 in lab:
            if r4["id"] not in reported:
                by_day.setdefault((r4.get("effectiveDateTime") or "")[:10], []).append(r4)
        for day, members in sorted(by_day.items()):
            report, parts = self._report(f"{members[0]['id']}-report", members, None, f"{day}T16:00:00+00:00",
                                         f"{self.spec.town} General Hospital pathology laboratory")
            reports.append(report)
            extra += parts
        reports.sort(key=lambda r: r.get("issued") or "")
        self._section("investigations", reports, extra)

    def _report(self, rid: str, members: list[Resource], name: Resource | None, issued: str | None,
                performer: str | None) -> tuple[Resource, list[Resource]]:
        """(the DiagnosticReport, its specimen, test group and results)."""
        specimen: Resource = {"resourceType": "Specimen", "id": f"{rid}-specimen",
                              "meta": _profile("CareConnect-GPC-Specimen-1"), "status": "available",
                              "subject": self.subject,
                              "type": {"coding": [{"system": SNOMED, "code": "122555007",
                                                   "display": "Venous blood specimen"}]},
                              "collection": {"collectedDateTime": members[0].get("effectiveDateTime")}}
        results = [self._observation(m) | {"specimen": _ref("Specimen", specimen["id"])} for m in members]
        parts: list[Resource] = [specimen]
        top = results
        if name is not None and len(results) > 1:
            group: Resource = {
                "resourceType": "Observation", "id": f"{rid}-group", "meta": _profile("CareConnect-GPC-Observation-1"),
                "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(rid, "group")}], "status": "final",
                "code": _code(name), "subject": self.subject, "effectiveDateTime": members[0].get("effectiveDateTime"),
                "specimen": _ref("Specimen", specimen["id"]),
                "related": [{"type": "has-member", "target": _ref("Observation", r["id"])} for r in results],
            }
            for result in results:
                result["related"] = [{"type": "derived-from", "target": _ref("Observation", group["id"])}]
            parts.append(group)
            top = [group]
        parts += results
        report: Resource = {
            "resourceType": "DiagnosticReport", "id": rid, "meta": _profile("CareConnect-GPC-DiagnosticReport-1"),
            "identifier": [{"system": DATA_ID_SYSTEM, "value": _uid(rid)}], "status": "final",
            "category": {"coding": [{"system": "http://hl7.org/fhir/v2/0074", "code": "PAT",
                                     "display": "Pathology"}]},
            "code": {"coding": [{"system": SNOMED, "code": "721981007", "display": "Diagnostic studies report"}]},
            "subject": self.subject, "issued": issued,
            "specimen": [_ref("Specimen", specimen["id"])],
            "result": [_ref("Observation", r["id"]) for r in top],
        }
        if performer:
            report["performer"] = [{"actor": {"display": performer}}]
        return report, parts

    def _uncategorised(self) -> None:
        _, other = self._split_observations()
        period = self.o.uncategorised_period
        items = [self._observation(r4) for r4 in other if period is None or period.holds(r4.get("effectiveDateTime"))]
        self._section("uncategorised", items)
