"""Issue 11, class 4: the all-practices banner's allergies line across practices.

An allergy current at one practice and ended at another is listed as current (the first practice's ended entry
must not hide it), and a practice whose allergies are not known — failed, not provided by its system or
withheld — is named in the line ("Not known from …"), never folded into "No allergies recorded"."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.core.all_practices import AllPractices, PracticeOpen
from app.core.model import Coding, Entry, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.core.patient_facts import allergy_summary
from app.ui.patient_banner import PatientBanner
from app.ui.timeline_view import AllPracticesView, combined_record

pytestmark = pytest.mark.gui

NUMBER = "9434765919"
A = Practice("a", "Riverside Surgery", "A1", "fhir-r4", "http://127.0.0.1:1/a")
B = Practice("b", "Oakwood Medical Centre", "B1", "fhir-r4", "http://127.0.0.1:1/b")
PENICILLIN = Coding("http://snomed.info/sct", "91936005", "Allergy to penicillin")


def _record(practice: Practice, allergies: Section) -> PatientRecord:
    patient = PatientSummary(practice.id, "x", NUMBER, "SMITH", ("Jane",), date(1950, 3, 12), "female", None)
    sections = {n: Section.loaded(n, []) for n in SectionName} | {SectionName.ALLERGIES: allergies}
    return PatientRecord(patient, sections, datetime(2026, 1, 1, tzinfo=UTC))


def _opened(*records: tuple[Practice, Section]) -> AllPractices:
    return AllPractices(NUMBER, tuple(PracticeOpen(p, "ok", record=_record(p, s), local_id="x") for p, s in records))


def _allergies(*entries: Entry) -> Section:
    return Section.loaded(SectionName.ALLERGIES, entries)


def test_an_allergy_ended_at_one_practice_and_current_at_another_is_current():
    ended = Entry("Penicillin", status="resolved", coding=PENICILLIN)
    current = Entry("Penicillin", status="active", coding=PENICILLIN, severity="severe")
    for first, second in ((ended, current), (current, ended)):
        summary = allergy_summary(combined_record(_opened((A, _allergies(first)), (B, _allergies(second)))))
        assert summary.state == "known" and summary.items == ("Penicillin (severe)",)


@pytest.mark.parametrize("unknown", [Section.failed(SectionName.ALLERGIES, "timed out"),
                                     Section.unsupported(SectionName.ALLERGIES),
                                     Section.withheld(SectionName.ALLERGIES)], ids=lambda s: s.status)
def test_a_practice_whose_allergies_are_not_known_is_named_in_the_line(qtbot, unknown):
    opened = _opened((A, _allergies()), (B, unknown))
    combined = combined_record(opened)
    assert combined is not None
    banner = PatientBanner(combined.patient, A, combined.retrieved_at, record=combined)
    qtbot.addWidget(banner)
    AllPracticesView._mark_incomplete(None, banner, opened)  # type: ignore[arg-type]  # uses no state of the view
    assert f"Not known from {B.name}" in banner.allergies_label.accessibleName()
    assert B.name in banner.allergies_label.text() and "check before prescribing" in banner.allergies_label.text()
