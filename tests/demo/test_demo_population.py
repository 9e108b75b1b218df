"""The demo practices' synthetic populations: deterministic, valid, searchable, clinically plausible."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from app.core.nhs_number import NHS_NUMBER_SYSTEM, is_valid
from app.demo.faults import Faults
from app.demo.fhir_json import iter_references
from app.demo.nhs_numbers import NhsNumberAllocator
from app.demo.population import Population, fold
from app.demo.practices import contrast_with_white, practice_specs
from app.demo.records import RECORD_TYPES
from app.demo.sharing import share_patients
from app.demo.synthea_loader import load_synthea
from tests.conftest import SYNTHEA_DIR

TODAY = date(2026, 3, 12)


def network_populations(count: int = 5, size: int = 300, seed: int = 7) -> list[Population]:
    allocator = NhsNumberAllocator(seed)
    pops = [Population.generate(spec, size, seed, allocator, TODAY) for spec in practice_specs(count, seed)]
    share_patients(pops, seed)
    return pops


def facts(pop: Population) -> list[tuple[object, ...]]:
    return [(p.local_id, p.nhs_number, p.family, p.given, p.birth_date, p.sex, p.address, p.postcode) for p in pop]


def test_same_seed_gives_the_same_people_and_records() -> None:
    first, second = network_populations(), network_populations()
    assert [facts(p) for p in first] == [facts(p) for p in second]
    for a, b in zip(first, second, strict=True):
        for n in (0, 17, 299):
            assert json.dumps(a.record(a.at(n))) == json.dumps(b.record(b.at(n)))
    other = network_populations(seed=8)
    assert facts(other[0]) != facts(first[0])


def test_records_are_made_lazily_and_are_stable() -> None:
    pop = network_populations(count=1, size=50)[0]
    assert len(pop._cache) == 0  # nothing generated until asked for
    patient = pop.at(3)
    once = json.dumps(pop.record(patient))
    pop._cache.clear()
    assert json.dumps(pop.record(patient)) == once


def test_nhs_numbers_valid_and_unique_except_shared_patients() -> None:
    pops = network_populations()
    seen: Counter[str] = Counter()
    for pop in pops:
        numbers = [p.nhs_number for p in pop]
        assert len(set(numbers)) == len(numbers), "unique within a practice"
        for number in numbers:
            assert number is not None and number.startswith("999") and is_valid(number)
        seen.update(n for n in numbers if n)
    twice = {n for n, c in seen.items() if c == 2}
    assert all(c <= 2 for c in seen.values())
    assert twice


def test_shared_patients_are_the_same_person_under_different_ids() -> None:
    allocator = NhsNumberAllocator(3)
    pops = [Population.generate(spec, 400, 3, allocator, TODAY) for spec in practice_specs(5, 3)]
    shared = share_patients(pops, 3)
    by_id = {pop.practice_id: pop for pop in pops}
    pairs = Counter(frozenset((s.first[0], s.second[0])) for s in shared)
    assert len(pairs) == 10 and min(pairs.values()) >= 3
    for item in shared:
        a = by_id[item.first[0]].get(item.first[1])
        b = by_id[item.second[0]].get(item.second[1])
        assert a is not None and b is not None
        assert a.local_id != b.local_id
        assert (a.nhs_number, a.family, a.given, a.birth_date) == (b.nhs_number, b.family, b.given, b.birth_date)
        assert by_id[item.second[0]].by_nhs_number(item.nhs_number) is b


def test_people_look_like_an_english_practice_list() -> None:
    pop = network_populations(count=1, size=2000)[0]
    ages = [(TODAY - p.birth_date).days / 365.25 for p in pop if p.birth_date]
    assert min(ages) < 2 and max(ages) > 90
    assert {p.sex for p in pop} >= {"male", "female"}
    assert len({p.family for p in pop}) > 100 and len({g for p in pop for g in p.given}) > 150
    for p in pop:
        outward, inward = p.postcode.split(" ")
        assert outward[0].isalpha() and outward[-1].isdigit() and len(inward) == 3 and inward[0].isdigit()


def test_every_record_has_something_in_each_section_but_allergies_may_be_empty() -> None:
    pop = network_populations(count=1, size=400)[0]
    allergies: Counter[bool] = Counter()
    for patient in pop:
        record = pop.record(patient)
        assert set(record) == set(RECORD_TYPES)
        for rtype in ("Condition", "MedicationRequest", "Encounter", "Observation"):
            assert record[rtype], f"{rtype} missing for a patient aged {TODAY.year - patient.birth_date.year}"
        allergies[bool(record["AllergyIntolerance"])] += 1
        for rtype, items in record.items():
            for item in items:
                assert item["resourceType"] == rtype and item["id"].startswith(patient.local_id + "-")
                for ref in iter_references(item):  # the patient, or the patient's own resources
                    kind, _, rid = ref["reference"].partition("/")
                    assert ref["reference"] == f"Patient/{patient.local_id}" or (
                        kind in ("Condition", "Observation", "Encounter") and rid.startswith(patient.local_id + "-"))
    assert allergies[True] > 50 and allergies[False] > 150


def test_clinical_content_is_coded() -> None:
    pop = network_populations(count=1, size=300)[0]
    records = [pop.record(p) for p in pop]
    conditions = {c["code"]["coding"][0]["code"] for r in records for c in r["Condition"]}
    assert {"38341003", "195967001"} <= conditions and len(conditions) > 20
    meds = {m["medicationCodeableConcept"]["text"] for r in records for m in r["MedicationRequest"]}
    assert len(meds) > 20 and all(m["dosageInstruction"][0]["text"] for r in records for m in r["MedicationRequest"])
    bp = next(o for r in records for o in r["Observation"] if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert bp["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    vaccines = {i["vaccineCode"]["text"] for r in records for i in r["Immunization"]}
    assert {"MMR vaccine", "Seasonal influenza vaccine", "COVID-19 mRNA vaccine"} <= vaccines
    encounter = records[0]["Encounter"][0]
    assert encounter["participant"][0]["individual"]["display"] and encounter["type"][0]["coding"][0]["code"]
    for record in records:  # nothing is dated in the future
        for items in record.values():
            for item in items:
                for key in ("onsetDateTime", "authoredOn", "occurrenceDateTime", "effectiveDateTime"):
                    assert item.get(key, "0000")[:10] <= TODAY.isoformat()


def test_indexes_agree_with_a_full_scan() -> None:
    allocator = NhsNumberAllocator(1)
    pop = Population.generate(practice_specs(1)[0], 20_000, 1, allocator, TODAY)
    people = list(pop)
    wanted = [p for p in people if fold(p.family).startswith("wi")]
    assert [p.local_id for p in pop.search(family="WI")] == [p.local_id for p in wanted]
    target = people[12_345]
    assert pop.search(nhs_number=target.nhs_number) == [target]
    both = pop.search(family=target.family, given=target.given[0][:2], birth_date=target.birth_date)
    assert target in both and all(p.birth_date == target.birth_date for p in both)
    assert pop.match_identifier(NHS_NUMBER_SYSTEM, "9999999999") == set()


def test_string_search_ignores_case_and_accents() -> None:
    pop = network_populations(count=1, size=3000)[0]
    accented = [p for p in pop if p.family == "Wiśniewska"]
    assert accented
    found = {p.local_id for p in pop.search(family="wisniew")}
    assert {p.local_id for p in accented} <= found


def test_practices_have_distinct_ids_colours_and_sign_in() -> None:
    specs = practice_specs(22)
    assert [s.id for s in specs[:5]] == ["riverside", "oakwood", "millbrook", "castlegate", "hillview"]
    assert len({s.id for s in specs}) == 22 and len({s.ods_code for s in specs}) == 22
    assert len({s.colour for s in specs}) == 22
    assert all(contrast_with_white(s.colour) >= 4.5 for s in specs)
    assert [s.auth for s in specs[:5]] == ["basic", "basic", "basic", "bearer", "client-credentials"]
    assert [s.supports_everything for s in specs[:5]] == [True, False, True, False, True]


def test_fault_rates_are_deterministic() -> None:
    def run() -> list[str | None]:
        faults = Faults(seed=5, fail_rate=0.3, malformed_rate=0.2)
        return [faults.decide("/fhir/Patient").action for _ in range(200)]

    first = run()
    assert first == run()
    assert 30 < first.count("http-500") < 90 and first.count("malformed-json") > 10


def test_fault_settings_are_checked_and_restored() -> None:
    faults = Faults()
    with pytest.raises(ValueError):
        faults.mode = "explode"
    with pytest.raises(TypeError):
        faults.set(colour="red")
    with faults.override(mode="http-503", times=1):
        assert faults.decide("/x").action == "http-503"
        assert faults.decide("/x").action is None
    faults.latency_ms = 20
    assert faults.decide("/x").delay_s == pytest.approx(0.02)
    faults.reset()
    assert faults.settings.latency_ms == 0


@pytest.mark.shared_data
def test_synthea_bundles_load_with_references_resolved() -> None:
    pops = network_populations(count=3, size=5)
    report = load_synthea(SYNTHEA_DIR, pops)
    people = [f for f in SYNTHEA_DIR.glob("*.json") if not f.name.startswith(("hospital", "practitioner"))]
    assert len(report.patients) == len(people) and report.unresolved == 0
    assert Counter(pid for pid, _ in report.patients) == Counter(pops[n % 3].practice_id for n in range(len(people)))
    by_id = {pop.practice_id: pop for pop in pops}
    for practice_id, patient_id in report.patients:
        pop = by_id[practice_id]
        patient = pop.get(patient_id)
        assert patient is not None and patient.resource is not None
        assert pop.search(family=patient.family[:4], birth_date=patient.birth_date) == [patient]
        for items in pop.record(patient).values():
            for item in items:
                for ref in iter_references(item):
                    if not ref["reference"].startswith("#"):
                        rtype, _, rid = ref["reference"].partition("/")
                        assert pop.read(rtype, rid) is not None, ref["reference"]
