"""A record carrying every issue-11 fact (death, address, registration, groups, values, report, notes, reaction,
severity), for the CLI and research-view tests."""

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

SNOMED = "http://snomed.info/sct"
NOTES = "History: chest pain on exertion for 3 weeks, worse on hills. Plan: ECG and bloods."
REACTION = "Came out in hives after the amoxicillin his daughter gave him"


def sample_record(deceased: bool | date = date(2024, 1, 3)) -> PatientRecord:
    patient = PatientSummary(
        "riverside", "abc123", "9434765919", "Okafor", ("Chinedu",), date(1941, 5, 2), "male", "LS12 9PP",
        deceased=deceased, address=Address(("29 South Street",), "Leeds", None, "LS12 9PP"),
        registration=Registration("Y91001", "Riverside Surgery", "Dr Samira Martin", "Regular", date(2002, 8, 9)))
    cholesterol = Coding(SNOMED, "1005671000000105", "Serum cholesterol level")
    results = [
        Entry("Lipid profile", "2023-11-02", "final", "2 results", Coding("http://loinc.org", "57698-3", "Lipid panel"),
              "DiagnosticReport", "r-77", report="Lipid profile", report_id="r-77"),
        Entry("Total cholesterol", "2023-11-02", "final", "6.4 mmol/L", cholesterol, "Observation", "o-1",
              measurements=(Measurement("Total cholesterol", 6.4, "mmol/L", high=5.0, flag="H",
                                        code="1005671000000105"),), report="Lipid profile", report_id="r-77"),
        Entry("HDL cholesterol", "2023-11-02", "final", "1.3 mmol/L", Coding(SNOMED, "1005681000000107", "HDL"),
              "Observation", "o-2", measurements=(Measurement("HDL cholesterol", 1.3, "mmol/L", low=1.0,
                                                              code="1005681000000107"),),
              report="Lipid profile", report_id="r-77"),
    ]
    sections = {
        SectionName.PROBLEMS: Section.loaded(SectionName.PROBLEMS, [
            Entry("Hypertension", "2010-01-01", "active", coding=Coding(SNOMED, "38341003", "Hypertension"),
                  group="active")]),
        SectionName.MEDICATIONS: Section.loaded(SectionName.MEDICATIONS, [
            Entry("Ramipril 5mg capsules", "2023-10-01", "active", "One a day", group="repeat"),
            Entry("Amoxicillin 500mg capsules", "2019-02-01", "completed", group="past")]),
        SectionName.ALLERGIES: Section.loaded(SectionName.ALLERGIES, [
            Entry("Penicillin", "2019-02-05", "active", REACTION, Coding(SNOMED, "373270004", "Penicillin"),
                  reaction=REACTION, severity="severe")]),
        SectionName.ENCOUNTERS: Section.loaded(SectionName.ENCOUNTERS, [
            Entry("Consultation", "2023-10-30", "finished", coding=Coding(SNOMED, "11429006", "Consultation"),
                  notes=NOTES)]),
        SectionName.OBSERVATIONS: Section.loaded(SectionName.OBSERVATIONS, results),
        SectionName.IMMUNISATIONS: Section.loaded(SectionName.IMMUNISATIONS, []),
    }
    return PatientRecord(patient, sections, datetime(2026, 1, 1, tzinfo=UTC))
