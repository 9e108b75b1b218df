"""Issue 11, class 1: the research view leaks through the record's new fields.

Every field issue 11 added (address, registration, death, consultation notes, an allergy's reaction, a
result's report title and id, a value in words, its name) and the record's own notes (warnings, a failed
section's error, which may carry a practice's words) are filled with identifying text; the pseudonymised
record — which every face (window, trend charts, the PDF summary, `mosaic show --json`) is made from — holds
none of it, and still says what is safe: the coded terms, groups, values, units, flags and report grouping.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.model import (
    Address,
    Coding,
    Entry,
    Measurement,
    PatientRecord,
    PatientSummary,
    Registration,
    Section,
    SectionName,
)
from app.core.record_export import summary_html
from app.core.research import PRACTICE_NOTE_WITHHELD, SECTION_ERROR_WITHHELD, pseudonymise_record
from app.core.serialise import record_json
from tests.core.test_research_view import text_of

SECRET = "Zebedee"  # the patient's name, planted in every free-text field
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _record() -> PatientRecord:
    patient = PatientSummary("riverside", "rec-1", "9434765919", SECRET, ("Jane",), date(1950, 3, 12), "female",
                             "LS1 4AB", deceased=date(2024, 5, 6),
                             address=Address((f"1 {SECRET} Lane",), "Leeds", None, "LS1 4AB"),
                             registration=Registration("A12345", f"{SECRET} Surgery", f"Dr {SECRET}", "Regular",
                                                       date(2001, 1, 2), f"{SECRET} branch"))
    code = Coding(SNOMED, "1000731000000107", "Serum cholesterol")
    report = Entry(f"Bloods for {SECRET}", when="2023-01-02", coding=Coding(SNOMED, "26604007", "Full blood count"),
                   resource_type="DiagnosticReport", report=f"Bloods for {SECRET}", report_id=f"{SECRET}-rep-9")
    value = Entry(f"Cholesterol ({SECRET})", when="2023-01-02", coding=code, resource_type="Observation",
                  report=f"Bloods for {SECRET}", report_id=f"{SECRET}-rep-9",
                  measurements=(Measurement(f"{SECRET}'s cholesterol", 6.4, "mmol/L", f"seen by {SECRET}", None,
                                            5.0, f"normal for {SECRET}", "H", "2093-3"),
                                Measurement("HDL", 1.0, f"per {SECRET}", flag=SECRET, code="2085-9")))
    uncoded_report = Entry("x", coding=Coding(LOINC, "2093-3", None), resource_type="Observation",
                           report=f"{SECRET} panel", report_id=None)
    allergy = Entry("Penicillin", coding=Coding(SNOMED, "91936005", "Allergy to penicillin"),
                    resource_type="AllergyIntolerance", reaction=f"rash, said {SECRET}", severity="severe",
                    status=f"active ({SECRET})")
    visit = Entry("Surgery consultation", coding=Coding(SNOMED, "185317003", "Telephone encounter"),
                  resource_type="Encounter", notes=f"{SECRET} worried about her son")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    sections = {SectionName.OBSERVATIONS: Section.loaded(SectionName.OBSERVATIONS, [report, value, uncoded_report]),
                SectionName.ALLERGIES: Section.loaded(SectionName.ALLERGIES, [allergy]),
                SectionName.ENCOUNTERS: Section.loaded(SectionName.ENCOUNTERS, [visit]),
                SectionName.PROBLEMS: Section.failed(SectionName.PROBLEMS, f"no problems list for {SECRET}")}
    warnings = (f"The practice noted: {SECRET} has moved", f"Problems: ask {SECRET}'s daughter",
                f"Allergies and adverse reactions: the practice flagged this section ({SECRET}).",
                "Observations and results: 2 entries could not be read and are not shown.")
    return PatientRecord(patient, sections, now, 1, warnings)


def test_no_new_field_carries_identifying_text_into_the_research_view():
    shown = pseudonymise_record(_record(), "R-AAAA-BBBB-CCCC")
    for face in (repr(shown), text_of(shown), str(record_json(shown)),
                 summary_html(shown, _practice())):
        for ident in (SECRET, "Jane", "9434765919", "LS1 4AB", "1950-03-12", "2024-05-06", "rec-1", "Leeds",
                      "A12345"):
            assert ident not in face, ident
    assert shown.patient.deceased is True and shown.patient.address is None and shown.patient.registration is None


def test_what_is_safe_is_kept():
    shown = pseudonymise_record(_record(), "R-AAAA-BBBB-CCCC")
    results = shown.sections[SectionName.OBSERVATIONS].entries
    # a report's title is the code's own words; its results still group under it, by an id made per record
    assert results[0].report == results[1].report == "Full blood count"
    assert results[0].report_id == results[1].report_id == "report-1"
    assert results[2].report is None  # a title with no report to take words from goes
    value, other = results[1].measurements
    assert (value.value, value.unit, value.high, value.flag, value.text, value.range_text) == (
        6.4, "mmol/L", 5.0, "H", None, None)
    assert other.flag is None and other.unit is None  # a flag or unit that is not one goes
    allergy, = shown.sections[SectionName.ALLERGIES].entries
    assert (allergy.reaction, allergy.severity) == (None, "severe")
    assert shown.sections[SectionName.ENCOUNTERS].entries[0].notes is None
    assert allergy.status is None  # a status that is not a FHIR status code goes
    failed = shown.sections[SectionName.PROBLEMS]
    assert failed.status == "failed" and failed.error == SECTION_ERROR_WITHHELD  # still a failure, never "none"
    assert shown.warnings[1:] == (PRACTICE_NOTE_WITHHELD,
                                  "Observations and results: 2 entries could not be read and are not shown.")


def _practice():
    from app.core.model import Practice

    return Practice("riverside", "Riverside Surgery", "B86001", "fhir-r4", "http://127.0.0.1:1/fhir")
