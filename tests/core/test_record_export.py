"""The record summary that leaves Mosaic (PDF, print): every section in its state, and nothing identifying in the
research view's, whose record the core has already pseudonymised."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.model import (
    Address,
    Coding,
    Entry,
    PatientRecord,
    PatientSummary,
    Practice,
    Registration,
    Section,
    SectionName,
)
from app.core.record_export import ROWS_PER_PART, summary_html, summary_parts
from app.core.research import pseudonymise_record

PRACTICE = Practice("p1", "Riverside Medical Centre", "Y12345", "fhir-r4", "http://127.0.0.1:1/p1")
PATIENT = PatientSummary("p1", "L1", "9434765919", "Saunders", ("Abena",), date(1940, 3, 12), "female", "LS1 1AA",
                         deceased=date(2024, 1, 3), address=Address(("12 High Street",), "Leeds", None, "LS1 1AA"),
                         registration=Registration(gp="Dr A Smith", kind="Regular"))


def record() -> PatientRecord:
    sections = {n: Section.loaded(n, []) for n in SectionName}
    sections[SectionName.ALLERGIES] = Section.loaded(SectionName.ALLERGIES, [
        Entry("Penicillin", when="2001-04-05", severity="severe",
              coding=Coding("http://snomed.info/sct", "91936005", "Allergy to penicillin"))])
    sections[SectionName.MEDICATIONS] = Section.failed(SectionName.MEDICATIONS, "the practice timed out")
    sections[SectionName.PROBLEMS] = Section.loaded(SectionName.PROBLEMS, [
        Entry(f"Problem {n}", when="2010", status="active") for n in range(ROWS_PER_PART + 5)])
    return PatientRecord(PATIENT, sections, datetime.now(UTC))


def test_the_summary_says_who_with_death_and_allergies_and_every_section_in_its_state() -> None:
    html = summary_html(record(), PRACTICE)
    assert "SAUNDERS, Abena — DECEASED" in html
    assert "03-Jan-2024 (aged 83y)" in html and "943 476 5919" in html and "12 High Street, Leeds, LS1 1AA" in html
    assert "Known allergies: Penicillin (severe)" in html
    assert "Record incomplete: medications could not be loaded" in html
    assert "Could not be loaded from Riverside Medical Centre: the practice timed out. This does not mean none " \
           "are recorded." in html
    assert html.count("None recorded") == 3, "only the sections that loaded empty"
    tables = [p for p in summary_parts(record(), PRACTICE) if "Problem 0<" in p or "Problem 44<" in p]
    assert len(tables) == 2, "a long section goes in parts a renderer can take one at a time"


def test_the_research_view_summary_names_the_pseudonym_and_nothing_identifying() -> None:
    reduced = pseudonymise_record(record(), "R-7K3Q-M2XD-9FJA")
    html = summary_html(reduced, PRACTICE)
    assert "Research participant R-7K3Q-M2XD-9FJA" in html
    for identifying in ("Saunders", "SAUNDERS", "Abena", "9434765919", "943 476 5919", "12 High Street", "LS1 1AA",
                        "12-Mar-1940", "03-Jan-2024", "Dr A Smith"):
        assert identifying not in html, identifying
    assert "Allergy to penicillin" in html, "coded terms stay"
