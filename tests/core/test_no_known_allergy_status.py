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
