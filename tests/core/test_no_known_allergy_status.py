"""Issue 11, class 4: "No known allergies" is said only from a current "No known allergy" entry; one entered in
error, refuted or inactive states nothing, so the line says nothing is recorded rather than "No known allergies"."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.core.model import Coding, Entry, PatientRecord, PatientSummary, Section, SectionName
from app.core.patient_facts import NO_KNOWN_ALLERGIES, allergy_summary

NKA = Coding("http://snomed.info/sct", "716186003", "No known allergy")


def _line(*entries: Entry) -> str:
    patient = PatientSummary("a", "x", None, "SMITH", ("Jane",), date(1950, 3, 12), "female", None)
    record = PatientRecord(patient, {SectionName.ALLERGIES: Section.loaded(SectionName.ALLERGIES, entries)},
                           datetime(2026, 1, 1, tzinfo=UTC))
    return allergy_summary(record).text


@pytest.mark.parametrize("status", ["entered-in-error", "active (refuted)", "inactive", "resolved"])
def test_a_no_known_allergy_entry_that_is_not_current_is_not_no_known_allergies(status):
    assert NO_KNOWN_ALLERGIES not in _line(Entry("No known allergy", status=status, coding=NKA))
    assert _line(Entry("No known allergy", status="active", coding=NKA)) == NO_KNOWN_ALLERGIES


def test_withheld_allergies_say_why_in_the_users_terms() -> None:
    import dataclasses

    from app.core.patient_facts import ALLERGIES_WITHHELD, ALLERGIES_WITHHELD_FOR_ROLE

    patient = PatientSummary("a", "x", None, "SMITH", ("Jane",), date(1950, 3, 12), "female", None)
    record = PatientRecord(patient, {SectionName.ALLERGIES: Section.withheld(SectionName.ALLERGIES)},
                           datetime(2026, 1, 1, tzinfo=UTC))
    assert allergy_summary(record).text == ALLERGIES_WITHHELD_FOR_ROLE
    research = dataclasses.replace(record, patient=dataclasses.replace(patient, pseudonym="R-AAAA-BBBB-CCCC"))
    assert allergy_summary(research).text == ALLERGIES_WITHHELD
