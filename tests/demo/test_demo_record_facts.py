"""The demo population for issue 11: deceased patients, addresses and registrations, grouped problems and
medicines, laboratory reports with ranges and flags, series for trend charts, consultation notes, and people
registered at two practices whose records disagree (deterministically, from the seed)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from app.demo.population import DemoPatient, Population
from app.demo.records import REGISTRATION_DETAILS_URL
from app.demo.sharing import share_patients
from tests.demo.test_demo_population import TODAY, network_populations

SEED = 11
Resource = dict[str, Any]


@pytest.fixture(scope="module")
def pops() -> list[Population]:
    return network_populations(count=5, size=1500, seed=SEED)


def _status(resource: Resource) -> str:
    return resource["clinicalStatus"]["coding"][0]["code"]


def _course(request: Resource) -> str:
    return request["courseOfTherapyType"]["coding"][0]["code"]


def _dates(record: dict[str, list[Resource]]) -> list[str]:
    keys = ("onsetDateTime", "authoredOn", "effectiveDateTime", "occurrenceDateTime", "recordedDate", "date")
    found = [r[k] for items in record.values() for r in items for k in keys if isinstance(r.get(k), str)]
    return found + [r["period"]["start"] for r in record["Encounter"]]


def test_a_few_patients_at_each_practice_have_died_and_their_records_end_there(pops: list[Population]) -> None:
    unknown_date = 0
    for pop in pops:
        dead = [p for p in pop if p.deceased is not False]
        assert 2 <= len(dead) <= 0.02 * len(pop), f"{pop.practice_id}: {len(dead)} deceased"
        for p in dead:
            resource = pop.patient_resource(p)
            if p.deceased is True:
                unknown_date += 1
                assert resource["deceasedBoolean"] is True and "deceasedDateTime" not in resource
                continue
            assert isinstance(p.deceased, date) and p.birth_date is not None
            assert p.birth_date < p.deceased <= TODAY and resource["deceasedDateTime"] == p.deceased.isoformat()
            record = pop.record(p)
            assert max(_dates(record))[:10] <= p.deceased.isoformat(), "nothing is recorded after death"
            assert not [m for m in record["MedicationRequest"] if m["status"] == "active"]
        assert all("deceased" not in k for p in pop if p.deceased is False for k in pop.patient_resource(p))
    assert unknown_date >= 1  # and a few whose date of death is not known


def test_every_patient_has_an_address_a_usual_gp_and_a_registration(pops: list[Population]) -> None:
    kinds: set[str] = set()
    for pop in pops:
        for p in list(pop)[:300]:
            resource = pop.patient_resource(p)
            assert resource["address"][0]["use"] == "home" and resource["address"][0]["postalCode"] == p.postcode
            assert p.usual_gp in pop.spec.clinicians and p.practice_ods == pop.spec.ods_code
            (gp,) = [g for g in resource["generalPractitioner"] if g["type"] == "Practitioner"]
            assert gp["display"] == p.usual_gp
            (details,) = [e for e in resource["extension"] if e["url"] == REGISTRATION_DETAILS_URL]
            parts = {x["url"]: x for x in details["extension"]}
            assert parts["registrationPeriod"]["valuePeriod"]["start"] == str(p.registered_since)
            kinds.add(parts["registrationType"]["valueCodeableConcept"]["coding"][0]["code"])
            summary = p.summary(pop.practice_id)
            assert summary.address is not None and summary.registration is not None
            assert summary.registration.practice_name == pop.spec.name
    assert kinds == {"R", "T"}


def _shared(pops: list[Population]) -> list[tuple[DemoPatient, Population, DemoPatient, Population]]:
    pairs = []
    for pop in pops:
        for p in pop:
            if p.shared_as == "first":
                other = next((o, q) for o in pops if o is not pop for q in [o.by_nhs_number(p.nhs_number or "")]
                             if q is not None)
                pairs.append((p, pop, other[1], other[0]))
    return pairs


def test_a_person_registered_at_two_practices_has_records_that_disagree(pops: list[Population]) -> None:
    pairs = _shared(pops)
    assert len(pairs) >= 20
    for first, pop_a, second, pop_b in pairs:
        assert second.shared_as == "second" and second.registration_type == "T"
        a, b = pop_a.record(first), pop_b.record(second)
        allergies_a = {x["code"]["coding"][0]["code"] for x in a["AllergyIntolerance"]}
        allergies_b = {x["code"]["coding"][0]["code"] for x in b["AllergyIntolerance"]}
        assert allergies_b < allergies_a, "an allergy recorded at one practice and not the other"
        current_a = {m["medicationCodeableConcept"]["text"] for m in a["MedicationRequest"]
                     if m["status"] == "active" and _course(m) != "acute"}
        stopped_b = {m["medicationCodeableConcept"]["text"] for m in b["MedicationRequest"] if m["status"] == "stopped"}
        assert current_a & stopped_b, "a repeat current at one practice and stopped at the other"
        active_a = {c["code"]["coding"][0]["code"] for c in a["Condition"] if _status(c) == "active"}
        resolved_b = {c["code"]["coding"][0]["code"] for c in b["Condition"] if _status(c) == "resolved"}
        assert active_a & resolved_b, "a problem active at one practice and resolved at the other"
        # otherwise the same history: the same immunisations and results, each practice's own ids
        given_a, given_b = ([i["occurrenceDateTime"] for i in r["Immunization"]] for r in (a, b))
        assert given_a == given_b and len(a["Observation"]) == len(b["Observation"])
        assert a["Condition"][0]["id"].startswith(first.local_id)
        assert b["Condition"][0]["id"].startswith(second.local_id)


def test_the_differences_are_the_same_on_every_run() -> None:
    def differences() -> list[tuple[str, ...]]:
        pops = network_populations(count=3, size=300, seed=SEED)
        return [(p.nhs_number or "", *sorted(x["code"]["text"] for x in pa.record(p)["AllergyIntolerance"]),
                 "|", *sorted(x["code"]["text"] for x in pb.record(q)["AllergyIntolerance"]))
                for p, pa, q, pb in _shared(pops)]

    assert differences() == differences()


def test_a_deceased_patient_is_never_newly_shared() -> None:
    pops = network_populations(count=3, size=300, seed=SEED)
    assert all(p.deceased is False for p, _, _, _ in _shared(pops))
    assert share_patients(pops[:1], SEED) == []


def _series(record: dict[str, list[Resource]], code: str) -> list[str]:
    days = []
    for o in record["Observation"]:
        codes = {c["code"] for c in o["code"]["coding"]} | {c["code"] for part in o.get("component", [])
                                                            for c in part["code"]["coding"]}
        if code in codes:
            days.append(o["effectiveDateTime"][:10])
    return sorted(days)


def _span_years(days: list[str]) -> float:
    return (date.fromisoformat(days[-1]) - date.fromisoformat(days[0])).days / 365.25 if days else 0.0


@pytest.mark.parametrize(("problem", "code", "points", "years"), [
    ("38341003", "8480-6", 4, 2.0),  # hypertension: systolic blood pressure
    ("44054006", "59261-8", 3, 1.0),  # type 2 diabetes: HbA1c
    ("44054006", "29463-7", 4, 2.0),  # ... and weight
    ("414916001", "39156-5", 4, 2.0),  # obesity: BMI
    ("55822004", "14647-2", 2, 1.0),  # hyperlipidaemia: total cholesterol
    ("709044004", "62238-1", 3, 1.0),  # chronic kidney disease: eGFR
])
def test_monitored_problems_have_series_over_years_for_trend_charts(pops: list[Population], problem: str, code: str,
                                                                    points: int, years: float) -> None:
    checked = 0
    for pop in pops:
        for p in pop:
            record = pop.record(p)
            onset = next((c["onsetDateTime"] for c in record["Condition"]
                          if c["code"]["coding"][0]["code"] == problem), None)
            if onset is None or p.deceased is not False or onset > (TODAY - timedelta(days=5 * 366)).isoformat():
                continue  # long-standing problems of living patients: the series reaches back years
            days = _series(record, code)
            assert len(days) >= points and _span_years(days) >= years, (p.local_id, days)
            checked += 1
            if checked >= 15:
                return
    assert checked >= 3


def test_results_are_grouped_into_reports_with_units_ranges_and_flags(pops: list[Population]) -> None:
    titles: set[str] = set()
    unflagged = flagged_high = 0
    for p in list(pops[0])[:600]:
        record = pops[0].record(p)
        by_id = {o["id"]: o for o in record["Observation"]}
        members = [ref["reference"].split("/")[1] for r in record["DiagnosticReport"] for ref in r["result"]]
        labs = {o["id"] for o in record["Observation"] if o["category"][0]["coding"][0]["code"] == "laboratory"}
        assert sorted(members) == sorted(labs), "every laboratory result in exactly one report"
        for report in record["DiagnosticReport"]:
            titles.add(report["code"]["text"])
            for ref in report["result"]:
                o = by_id[ref["reference"].split("/")[1]]
                assert o["valueQuantity"]["unit"] and o["referenceRange"]
                value, high = o["valueQuantity"]["value"], o["referenceRange"][0].get("high", {}).get("value")
                if "interpretation" not in o:
                    unflagged += 1
                elif high is not None and value > high:
                    assert o["interpretation"][0]["coding"][0]["code"] == "H"
                    flagged_high += o["code"]["text"] == "Total cholesterol"
    assert {"Lipid profile", "Full blood count", "Renal function", "HbA1c"} <= titles
    assert unflagged and flagged_high  # some reports leave the flag to the reader; raised cholesterol is flagged H


def test_problems_active_and_past_medicines_repeat_acute_and_past_notes_allergies(pops: list[Population]) -> None:
    seen: dict[str, int] = {k: 0 for k in ("active", "resolved", "repeat", "acute", "stopped", "reaction")}
    encounters = notes = 0
    for p in list(pops[1])[:600]:
        record = pops[1].record(p)
        for c in record["Condition"]:
            seen[_status(c)] = seen.get(_status(c), 0) + 1
        for m in record["MedicationRequest"]:
            if m["status"] == "active":
                seen["acute" if _course(m) == "acute" else "repeat"] += 1
            elif m["status"] == "stopped":
                seen["stopped"] += 1
        encounters += len(record["Encounter"])
        notes += len(record["Composition"])
        for c in record["Composition"]:
            assert c["encounter"]["reference"].startswith(f"Encounter/{p.local_id}-") and c["section"]
        seen["reaction"] += sum(bool(a["reaction"][0]["manifestation"] and a["reaction"][0]["severity"])
                                for a in record["AllergyIntolerance"])
    assert all(seen.values()), seen
    assert notes >= 0.8 * encounters


def test_nobody_is_on_two_statins_at_once(pops: list[Population]) -> None:
    for p in list(pops[2])[:800]:
        current = [m["medicationCodeableConcept"]["text"] for m in pops[2].record(p)["MedicationRequest"]
                   if m["status"] == "active" and _course(m) != "acute"]
        assert sum("statin" in name.lower() for name in current) <= 1, current
        assert len(current) == len(set(current)), current
