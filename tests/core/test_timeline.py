"""The all-practices timeline and its differences, from hand-built records (app/core/timeline.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from app.core.model import (
    Coding,
    Entry,
    PatientRecord,
    PatientSummary,
    Practice,
    Section,
    SectionName,
)
from app.core.timeline import MixedPatientsError, build_timeline, date_key, item_words, rows, text_key

NHS = "9434765919"
SNOMED = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"

RIVERSIDE = Practice("riverside", "Riverside Surgery", "A81001", "fhir-r4", "http://x", colour="#005eb8")
OAKWOOD = Practice("oakwood", "Oakwood Medical Centre", "A81002", "gp-connect", "http://y", colour="#007f3b")
CASTLEGATE = Practice("castlegate", "Castlegate Practice", "A81003", "fhir-r4", "http://z", colour="#ae2573")


def record(practice: Practice, number: str | None = NHS, **sections: Section | list[Entry]) -> PatientRecord:
    """A record with every section loaded and empty unless given (a Section as is, a list of entries loaded)."""
    patient = PatientSummary(practice.id, f"{practice.id}-1", number, "ADAMS", ("Jo",), date(1960, 1, 2), "female",
                             None)
    built = {name: Section.loaded(name, []) for name in SectionName}
    for key, value in sections.items():
        name = SectionName(key)
        built[name] = value if isinstance(value, Section) else Section.loaded(name, value)
    return PatientRecord(patient, built, datetime(2026, 1, 1, tzinfo=UTC))


def med(text: str, group: str | None = "repeat", status: str | None = "active", code: str | None = None,
        when: str | None = None) -> Entry:
    return Entry(text, when=when, status=status, group=group, coding=Coding(DMD, code, text) if code else None)


def test_every_entry_of_every_practice_newest_first_undated_last() -> None:
    a = record(RIVERSIDE, encounters=[Entry("Asthma review", when="2024-03-05"), Entry("Flu clinic")],
               problems=[Entry("Asthma", when="1998", status="active")])
    b = record(OAKWOOD, encounters=[Entry("Telephone consultation", when="2025-01-10T09:30:00+00:00")],
               observations=[Entry("Weight 70 kg", when="2024-03")])
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)])
    assert [i.text for i in timeline.items] == ["Telephone consultation", "Asthma review", "Weight 70 kg", "Asthma",
                                                "Flu clinic"]
    first = timeline.items[0]
    assert (first.practice.id, first.practice.name, first.practice.colour) == ("oakwood", "Oakwood Medical Centre",
                                                                               "#007f3b")
    assert first.section is SectionName.ENCOUNTERS and first.date == "2025-01-10T09:30:00+00:00"
    assert timeline.items[-1].date is None  # undated: last
    assert [p.name for p in timeline.practices] == ["Riverside Surgery", "Oakwood Medical Centre"]


def test_partial_dates_sort_by_time_with_the_less_precise_after_the_precise() -> None:
    texts = ["2001", "2001-04", "2001-04-05", "2001-04-05T10:00:00Z", "2000-12-31T20:00:00-02:00", None, "garbage"]
    ordered = sorted(texts, key=date_key, reverse=True)
    assert ordered[:5] == ["2001-04-05T10:00:00Z", "2001-04-05", "2001-04", "2001", "2000-12-31T20:00:00-02:00"]
    assert set(ordered[5:]) == {None, "garbage"}


def test_a_failed_section_is_not_on_the_timeline_and_is_named_as_not_compared() -> None:
    a = record(RIVERSIDE, allergies=[Entry("Penicillin", status="active")])
    b = record(OAKWOOD, allergies=Section.failed(SectionName.ALLERGIES, "the practice did not answer in time"))
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)])
    assert [d.kind for d in timeline.differences] == ["not-compared"]  # never "not recorded at Oakwood"
    note = timeline.differences[0]
    assert "Allergies and adverse reactions at Oakwood Medical Centre could not be compared" in note.text
    assert "did not answer in time" in note.text and "does not mean none are recorded" in note.text
    assert not any("not recorded" in d.text.replace("does not mean none are recorded", "")
                   for d in timeline.differences)
    assert [i.practice.id for i in timeline.items] == ["riverside"]


def test_an_allergy_at_one_practice_and_not_another() -> None:
    penicillin = Entry("Penicillin V", status="active", coding=Coding(SNOMED, "764146007", "Penicillin"),
                       reaction="Urticaria")
    a = record(RIVERSIDE, allergies=[penicillin, Entry("Latex", status="active")])
    b = record(OAKWOOD, allergies=[Entry("Latex", status="active")])
    c = record(CASTLEGATE, allergies=[Entry("Penicillin (substance)", status="active",
                                            coding=Coding(SNOMED, "764146007", None)), Entry("latex", status="active")])
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b), (CASTLEGATE, c)])
    [allergy] = timeline.disagreements  # latex is recorded at all three: no difference
    assert allergy.kind == "allergy" and allergy.item == "Penicillin V"
    assert dict(allergy.states) == {"riverside": "recorded", "oakwood": "not recorded", "castlegate": "recorded"}
    assert allergy.text == ("Penicillin V (Urticaria): recorded at Riverside Surgery and Castlegate Practice; not "
                            "recorded at Oakwood Medical Centre.")


def test_latex_missing_at_a_third_practice_is_a_difference_too() -> None:
    a = record(RIVERSIDE, allergies=[Entry("Latex", status="active")])
    b = record(OAKWOOD, allergies=[Entry("LATEX.", status="active")])  # the same by normalised text
    c = record(CASTLEGATE, allergies=[Entry("Latex", status="resolved")])
    [latex] = build_timeline([(RIVERSIDE, a), (OAKWOOD, b), (CASTLEGATE, c)]).disagreements
    assert dict(latex.states)["castlegate"] == "recorded as resolved"


def test_a_repeat_current_at_one_practice_and_stopped_or_absent_at_others() -> None:
    a = record(RIVERSIDE, medications=[med("Amlodipine 5mg tablets", code="319283006"),
                                       med("Amoxicillin 500mg capsules", group="acute")])
    b = record(OAKWOOD, medications=[med("Amlodipine 5 mg tablets", group="past", status="stopped")])
    c = record(CASTLEGATE, medications=[])
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b), (CASTLEGATE, c)])
    [amlodipine] = timeline.disagreements  # an acute course elsewhere is no reconciliation difference
    assert amlodipine.kind == "medication"
    assert dict(amlodipine.states) == {"riverside": "current repeat", "oakwood": "stopped",
                                       "castlegate": "not on the medication list"}
    assert amlodipine.text == ("Amlodipine 5mg tablets: current repeat at Riverside Surgery; stopped at Oakwood "
                               "Medical Centre; not on the medication list at Castlegate Practice.")
    assert [e.text for e in amlodipine.entries] == ["Amlodipine 5mg tablets", "Amlodipine 5 mg tablets"]


def test_medicines_match_by_code_first_whatever_the_names() -> None:
    a = record(RIVERSIDE, medications=[med("Ramipril 2.5mg capsules", code="318897006")])
    b = record(OAKWOOD, medications=[med("Tritace 2.5mg capsules", code="318897006")])
    assert build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]).disagreements == ()


def test_another_strength_is_another_medicine() -> None:
    a = record(RIVERSIDE, medications=[med("Ramipril 2.5mg capsules")])
    b = record(OAKWOOD, medications=[med("Ramipril 5mg capsules")])
    found = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]).disagreements
    assert sorted(d.item for d in found) == ["Ramipril 2.5mg capsules", "Ramipril 5mg capsules"]


def test_a_year_alone_and_a_datetime_across_midnight_in_another_zone() -> None:
    # 23:59 at UTC-2 is 01:59 the next day in UTC: it is the newer of the two
    assert date_key("2000-12-31T23:59:59-02:00") > date_key("2000-12-31T23:00:00Z")


def test_a_medicine_without_a_group_reads_its_status() -> None:
    a = record(RIVERSIDE, medications=[med("Metformin 500mg tablets", group=None, status="active")])
    b = record(OAKWOOD, medications=[med("Metformin 500mg tablets", group=None, status="completed")])
    [metformin] = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]).disagreements
    assert dict(metformin.states) == {"riverside": "current", "oakwood": "stopped"}


def test_a_problem_active_at_one_practice_and_resolved_at_another() -> None:
    a = record(RIVERSIDE, problems=[Entry("Asthma", status="active", group="active",
                                          coding=Coding(SNOMED, "195967001", "Asthma"))])
    b = record(OAKWOOD, problems=[Entry("Asthma (disorder)", status="resolved", group="past",
                                        coding=Coding(SNOMED, "195967001", None))])
    c = record(CASTLEGATE, problems=[Entry("Hypertension", status="active")])  # only there: not a difference
    [asthma] = build_timeline([(RIVERSIDE, a), (OAKWOOD, b), (CASTLEGATE, c)]).disagreements
    assert asthma.kind == "problem" and asthma.item == "Asthma"
    assert dict(asthma.states) == {"riverside": "active", "oakwood": "resolved (past)", "castlegate": "not recorded"}


def test_records_that_agree_have_no_differences() -> None:
    entries = {"allergies": [Entry("Latex", status="active")], "medications": [med("Aspirin 75mg")],
               "problems": [Entry("Asthma", status="active")]}
    a, b = record(RIVERSIDE, **entries), record(OAKWOOD, **entries)
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)])
    assert timeline.differences == ()
    assert len(timeline.items) == 6


def test_entered_in_error_is_no_evidence_either_way() -> None:
    a = record(RIVERSIDE, allergies=[Entry("Latex", status="entered-in-error")])
    b = record(OAKWOOD, allergies=[])
    assert build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]).differences == ()


def test_one_practice_alone_has_nothing_to_compare() -> None:
    a = record(RIVERSIDE, allergies=Section.failed(SectionName.ALLERGIES, "timeout"),
               medications=[med("Aspirin 75mg")])
    timeline = build_timeline([(RIVERSIDE, a)])
    assert timeline.differences == () and [i.text for i in timeline.items] == ["Aspirin 75mg"]


def test_unsupported_and_withheld_sections_are_not_compared() -> None:
    a = record(RIVERSIDE, medications=[med("Aspirin 75mg")])
    b = record(OAKWOOD, medications=Section.unsupported(SectionName.MEDICATIONS),
               problems=Section.withheld(SectionName.PROBLEMS))
    found = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]).differences
    assert [(d.kind, d.section) for d in found] == [("not-compared", SectionName.MEDICATIONS),
                                                    ("not-compared", SectionName.PROBLEMS)]


def test_two_patients_are_never_put_on_one_timeline() -> None:
    with pytest.raises(MixedPatientsError):
        build_timeline([(RIVERSIDE, record(RIVERSIDE)), (OAKWOOD, record(OAKWOOD, number="9990000018"))])
    with pytest.raises(MixedPatientsError):
        build_timeline([(RIVERSIDE, record(RIVERSIDE, number=None))])


def test_text_key_ignores_case_punctuation_and_unit_spacing_only() -> None:
    assert text_key("Amoxicillin 500 mg Capsules.") == text_key("amoxicillin 500mg capsules")
    assert text_key("Amoxicillin 250mg capsules") != text_key("amoxicillin 500mg capsules")


def test_the_same_entry_at_two_practices_reads_as_one_row_naming_both() -> None:
    bp = Entry("Blood pressure", when="2024-05-01T10:00:00Z", status="final", detail="120/80 mmHg")
    a = record(RIVERSIDE, observations=[bp], encounters=[Entry("Review", when="2024-05-01", detail="Dr A")])
    b = record(OAKWOOD, observations=[bp], encounters=[Entry("Review", when="2024-05-01", detail="Dr B")])
    read = rows(build_timeline([(RIVERSIDE, a), (OAKWOOD, b)]))
    assert [(r.words, [p.id for p in r.practices]) for r in read] == [
        ("Blood pressure — 120/80 mmHg", ["riverside", "oakwood"]),  # a final result says no status
        ("Review — Dr A", ["riverside"]), ("Review — Dr B", ["oakwood"])]
    assert len(read[0].items) == 2


def test_a_row_says_its_status_in_clinical_words() -> None:
    a = record(RIVERSIDE, medications=[med("Omeprazole 20mg", group=None, status="stopped", when="2024")])
    [item] = build_timeline([(RIVERSIDE, a)]).items
    assert item_words(item) == "Omeprazole 20mg · Stopped"


def test_a_section_the_practice_says_is_partial_is_named_before_the_differences() -> None:
    a = record(RIVERSIDE, problems=[Entry("Asthma", status="active")], allergies=[Entry("Latex", status="active")])
    b = record(OAKWOOD, problems=[Entry("Asthma", status="resolved")])
    b = dataclasses.replace(b, warnings=("Allergies and adverse reactions: items excluded due to confidentiality "
                                         "and/or patient preferences.",))
    timeline = build_timeline([(RIVERSIDE, a), (OAKWOOD, b)])
    assert [d.kind for d in timeline.differences] == ["partial", "allergy", "problem"]
    assert timeline.differences[0].text == (
        "Allergies and adverse reactions at Oakwood Medical Centre may be incomplete: items excluded due to "
        "confidentiality and/or patient preferences. Something not recorded there may only be withheld.")
    assert [d.kind for d in timeline.disagreements] == ["allergy", "problem"]
