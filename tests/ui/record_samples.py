"""Records as a GP system sends them (groups, reactions, notes, reports with values, ranges and flags), for the
record-view tests and for looking at the view."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.model import Entry, Measurement, PatientRecord, PatientSummary, Practice, Section, SectionName

PRACTICE = Practice("p0", "Riverside Surgery", "Y91001", "fhir-r4", "http://127.0.0.1:1/p0", colour="#005eb8")
OTHER_PRACTICE = Practice("p1", "Oakwood Medical Centre", "Y91038", "fhir-r4", "http://127.0.0.1:1/p1",
                          colour="#007f3b")


def patient(practice: Practice = PRACTICE, local_id: str = "r1", family: str = "Saunders",
            given: tuple[str, ...] = ("Abena", "Deborah"), pseudonym: str | None = None) -> PatientSummary:
    if pseudonym:
        return PatientSummary(practice.id, pseudonym, None, "", (), None, "female", None, pseudonym=pseudonym,
                              birth_year=1974)
    return PatientSummary(practice.id, local_id, "9434765919", family, given, date(1974, 5, 2), "female", "LS1 1AA")


def lipids(when: str, total: float, report_id: str) -> list[Entry]:
    return [
        Entry("Total cholesterol", when, "final", measurements=(Measurement("Total cholesterol", total, "mmol/L",
                                                                            low=0.0, high=5.0, code="14647-2"),),
              report="Lipid profile", report_id=report_id),
        Entry("HDL cholesterol", when, "final", measurements=(Measurement("HDL cholesterol", 1.1, "mmol/L",
                                                                          low=1.0, code="2085-9"),),
              report="Lipid profile", report_id=report_id),
        Entry("Triglycerides", when, "preliminary",
              measurements=(Measurement("Triglycerides", 2.6, "mmol/L", high=1.7, flag="H", code="14927-8"),),
              report="Lipid profile", report_id=report_id),
    ]


def sections(active_problems: int = 4, past_problems: int = 3, consultations: int = 7,
             observations: int = 3) -> dict[SectionName, Section]:
    problems = [Entry(f"Active problem {n}" if n > 3 else text, when, "active", group="active")
                for n, (text, when) in enumerate([("Type 2 diabetes mellitus", "2015-06-01"),
                                                  ("Essential hypertension", "2012-03-14"),
                                                  ("Asthma", "1998"),
                                                  ("Osteoarthritis of knee", "2021-11")]
                                                 + [("", f"2000-01-{d:02d}") for d in range(1, 30)])
                if n < active_problems]
    problems += [Entry(f"Past problem {n}", f"19{90 + n}-02-03", "resolved", f"Resolved 19{91 + n}", group="past")
                 for n in range(past_problems)]
    medications = [
        Entry("Metformin 500mg tablets", "2026-02-01", "active", "One tablet twice a day with food", group="repeat"),
        Entry("Ramipril 5mg capsules", "2026-02-01", "active", "One capsule daily", group="repeat"),
        Entry("Salbutamol 100micrograms/dose inhaler", "2025-12-10", "active", "Two puffs when required",
              group="repeat"),
        Entry("Amoxicillin 500mg capsules", "2026-01-20", "active", "One capsule three times a day for 5 days",
              group="acute"),
        Entry("Simvastatin 40mg tablets", "2019-04-02", "stopped", "One tablet at night", group="past"),
        Entry("Naproxen 250mg tablets", "2022-09-02", "completed", "One tablet twice a day", group="past"),
    ]
    allergies = [
        Entry("Penicillin", "2004-05-06", "active", reaction="Anaphylaxis", severity="severe"),
        Entry("Elastoplast", "2011-02-03", "active", reaction="Contact dermatitis", severity="mild"),
    ]
    encounters = [Entry(f"Surgery consultation {n}", f"2026-0{1 + n % 9}-1{n % 9}", "finished",
                        "Dr A Patel", notes=(f"Seen for review {n}. BP 142/88. Advised on diet; review in 3 months."
                                             if n % 2 == 0 else None))
                  for n in range(consultations)]
    results: list[Entry] = []
    for n in range(observations):
        results += lipids(f"2025-{12 - n:02d}-01", 6.4 - n * 0.3, f"rep{n}")
    results += [
        Entry("Blood pressure", "2026-02-14", "final", measurements=(
            Measurement("Systolic", 142.0, "mmHg", high=140.0, code="8480-6"),
            Measurement("Diastolic", 88.0, "mmHg", high=90.0, code="8462-4"))),
        Entry("Body weight", "2026-02-14", "final", measurements=(Measurement("Body weight", 81.5, "kg",
                                                                              code="29463-7"),)),
        Entry("Haemoglobin A1c", "2026-01-10", "final", measurements=(
            Measurement("HbA1c", 61.0, "mmol/mol", low=20.0, high=42.0, flag="HH", code="4548-4"),)),
    ]
    immunisations = [Entry("Influenza vaccine", "2025-10-12", "completed"),
                     Entry("COVID-19 vaccine", "2025-10-12", "completed"),
                     Entry("Pneumococcal vaccine", "2024-03-01", "not-done", "Declined")]
    return {
        SectionName.PROBLEMS: Section.loaded(SectionName.PROBLEMS, problems),
        SectionName.MEDICATIONS: Section.loaded(SectionName.MEDICATIONS, medications),
        SectionName.ALLERGIES: Section.loaded(SectionName.ALLERGIES, allergies),
        SectionName.ENCOUNTERS: Section.loaded(SectionName.ENCOUNTERS, encounters),
        SectionName.OBSERVATIONS: Section.loaded(SectionName.OBSERVATIONS, results),
        SectionName.IMMUNISATIONS: Section.loaded(SectionName.IMMUNISATIONS, immunisations),
    }


def sample_record(practice: Practice = PRACTICE, **kwargs: int) -> PatientRecord:
    return PatientRecord(patient(practice), sections(**kwargs), datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
