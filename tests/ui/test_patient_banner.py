"""The patient banner (NHS CUI): every field in its place, death stops the age, the allergies line in each of
its states, "Record incomplete" when a section failed, nothing identifying in the research view, and compact
enough for two records side by side on a 1366 px screen."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.core import patient_facts as facts
from app.core.display import format_age
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
from app.ui import style
from app.ui.patient_banner import PatientBanner

pytestmark = pytest.mark.gui

PRACTICE = Practice("p1", "Riverside Medical Centre", "Y12345", "fhir-r4", "http://127.0.0.1:1/p1", colour="#ae2573")
A = SectionName.ALLERGIES


def patient(**changes: object) -> PatientSummary:
    values: dict[str, object] = dict(
        practice_id="p1", local_id="L1", nhs_number="9434765919", family="Saunders", given=("Abena", "Deborah"),
        birth_date=date(1974, 3, 12), sex="female", postcode="LS1 1AA",
        address=Address(("12 High Street", "Flat 3"), "Leeds", None, "LS1 1AA"),
        registration=Registration("Y12345", "Riverside Medical Centre", "Dr A Smith", "Regular", date(2015, 2, 4)))
    values.update(changes)
    return PatientSummary(**values)  # type: ignore[arg-type]


def record(who: PatientSummary, allergies: Section | None, *failed: SectionName) -> PatientRecord:
    sections = {name: Section.loaded(name, []) for name in SectionName}
    if allergies is None:
        del sections[A]
    else:
        sections[A] = allergies
    for name in failed:
        sections[name] = Section.failed(name, "the practice did not answer in time")
    return PatientRecord(who, sections, datetime.now(UTC))


HOSTS: list[QWidget] = []  # qtbot holds widgets weakly: the hosts live until the module ends


def banner(qtbot, who: PatientSummary, rec: PatientRecord | None, width: int = 700) -> PatientBanner:
    host = QWidget()
    HOSTS.append(host)
    host.setStyleSheet(style.STYLE_SHEET)
    layout = QVBoxLayout(host)
    layout.addWidget(made := PatientBanner(who, PRACTICE, datetime.now(UTC), record=rec))
    layout.addStretch(1)  # the banner at its own height, as above a record's sections
    qtbot.addWidget(host)
    host.resize(width, 400)
    host.show()
    qtbot.waitExposed(host)
    return made


def test_the_banner_names_the_patient_in_cui_order_with_address_and_registration(qtbot) -> None:
    who = patient()
    b = banner(qtbot, who, record(who, Section.loaded(A, [])))
    said = b.text()
    assert said.startswith("SAUNDERS, Abena Deborah | Born 12-Mar-1974 (")
    order = [said.index(part) for part in ("SAUNDERS", "Born", "Sex Female", "NHS No. 943 476 5919")]
    assert order == sorted(order), "name, born, sex, NHS number: the CUI order"
    assert "Address 12 High Street, Flat 3, Leeds, LS1 1AA" in said
    assert "Registered Regular · GP Dr A Smith · since 04-Feb-2015" in said
    assert "Riverside Medical Centre" in said
    assert b.deceased_badge is None and b.died_label is None
    assert b.copy_button is not None and b.copy_button.isVisible()


def test_a_deceased_patient_shows_the_date_and_the_age_at_death_which_stops_counting(qtbot) -> None:
    who = patient(birth_date=date(1940, 3, 12), deceased=date(2024, 1, 3))
    b = banner(qtbot, who, record(who, Section.loaded(A, [])))
    assert b.deceased_badge is not None and b.deceased_badge.isVisible() and b.deceased_badge.text() == "Deceased"
    assert b.born_text == "12-Mar-1940", "no age that keeps counting after death"
    assert b.deceased_text == "03-Jan-2024 (aged 83y)"
    assert "Deceased, died 03-Jan-2024 (aged 83y)" in b.text()
    assert facts.age_at_death(who) == 83
    # the age today would be different: it is not what the banner says
    assert format_age(who.birth_date) not in b.text()
    assert b.property("deceased") == "true"

    unknown = patient(deceased=True)
    b2 = banner(qtbot, unknown, record(unknown, Section.loaded(A, [])))
    assert b2.deceased_text == "date not known" and b2.born_text == "12-Mar-1974"


@pytest.mark.parametrize(("allergies", "state", "shown"), [
    (Section.loaded(A, [Entry("Peanut", severity="moderate"), Entry("Penicillin", severity="severe")]), "known",
     "Known allergies: Penicillin (severe), Peanut (moderate)"),
    (Section.loaded(A, [Entry("No known allergy", coding=Coding("http://snomed.info/sct", "716186003", None))]),
     "none-known", "No known allergies"),
    (Section.loaded(A, []), "none-recorded", "No allergies recorded"),
    (Section.failed(A, "timeout"), "failed", "Allergies could not be loaded"),
    (None, "failed", "Allergies could not be loaded"),  # a section never sent is not "none"
    (Section.unsupported(A), "not-provided", "Allergies not provided by this practice's system"),
    (Section.withheld(A), "withheld", "Allergies not shown under the access policy for your role"),  # a study: research
])
def test_the_allergies_line_says_which_of_its_states_it_is_in(qtbot, allergies, state, shown) -> None:
    who = patient()
    b = banner(qtbot, who, record(who, allergies))
    assert b.allergies.state == state
    assert b.allergies.text == shown
    assert b.alerts_line.isVisible() and b.allergies_label.accessibleName() == shown
    if state != "known":
        assert "Known allergies" not in b.text() and "No known allergies" not in b.text().replace(shown, "")
    tone = b.alerts_line.property("state")
    assert tone == {"known": "known", "failed": "unknown", "not-provided": "unknown"}.get(state, "quiet")


def test_record_incomplete_when_any_section_failed_and_not_otherwise(qtbot) -> None:
    who = patient()
    b = banner(qtbot, who, record(who, Section.loaded(A, []), SectionName.MEDICATIONS, SectionName.OBSERVATIONS))
    assert b.incomplete_label.isVisible()
    assert b.incomplete_text == "Record incomplete: medications and observations and results could not be loaded"
    assert b.incomplete_text in b.text()

    complete = record(who, Section.loaded(A, []))
    b.set_record(complete)  # a section retried alone: the banner follows the record
    assert not b.incomplete_label.isVisible() and b.incomplete_text is None
    assert "Record incomplete" not in b.text()


def test_the_research_view_banner_shows_the_pseudonym_and_year_only(qtbot) -> None:
    who = PatientSummary("p1", "R-7K3Q-M2XD-9FJA", None, "", (), None, "female", None, pseudonym="R-7K3Q-M2XD-9FJA",
                         birth_year=1974)
    b = banner(qtbot, who, record(who, Section.loaded(A, [])))
    said = b.text()
    assert "Research participant R-7K3Q-M2XD-9FJA" in said and "Born 1974 |" in said
    assert "NHS No. withheld (research view)" in said
    assert "Address" not in said and "Registered" not in said and "GP " not in said
    assert b.copy_button is None, "nothing to copy in the research view"
    assert b.name_label.text() == "R-7K3Q-M2XD-9FJA"

    died = PatientSummary("p1", "R-7K3Q-M2XD-9FJA", None, "", (), None, "female", None,
                          pseudonym="R-7K3Q-M2XD-9FJA", birth_year=1940, deceased=True)
    b2 = banner(qtbot, died, record(died, Section.loaded(A, [])))
    assert b2.deceased_badge is not None and b2.deceased_text == "date withheld (research view)"
    assert b2.born_text == "1940"


def test_the_banner_stays_compact_at_half_a_laptop_screen(qtbot) -> None:
    """At 520 px (a pane of two side by side at 1366 px with the practices panel open): the name on one line,
    born/sex/NHS number on one more, and the whole banner well under the height that pushed allergies away."""
    who = patient()
    b = banner(qtbot, who, record(who, Section.loaded(A, [Entry("Penicillin", severity="severe")])), width=520)
    line = b.name_label.fontMetrics().height()
    assert b.name_label.height() <= line + 4, "the name is on one line"
    field = b.born_label.fontMetrics().height()
    assert b.fields.height() <= 2 * field + 6, "born, sex and NHS number take at most two lines"
    assert b.born_label.y() == b.nhs_label.y(), "at 520 px born and the NHS number share a line"
    assert b.height() <= 140, b.height()
    assert b.width() <= 520


def test_the_copy_button_puts_the_ten_digits_on_the_clipboard_even_unwired(qtbot) -> None:
    """A banner made again (a section retried alone) copies without the window's wiring; the window, when wired,
    hears of it to say so."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    who = patient()
    b = banner(qtbot, who, record(who, Section.loaded(A, [])))
    QApplication.clipboard().clear()
    assert b.copy_button is not None
    with qtbot.waitSignal(b.copy_nhs_requested, timeout=2000):
        qtbot.mouseClick(b.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "9434765919"



def test_the_allergies_line_lists_current_allergies_only() -> None:
    """An ended (resolved) or refuted allergy is in the record's allergies section, not in the banner's line."""

    def line(*entries: Entry) -> str:
        return facts.allergy_summary(record(patient(), Section.loaded(A, list(entries)))).text

    current = Entry("Penicillin", status="active", severity="severe")
    assert line(current, Entry("Latex", status="resolved", severity="severe")) == "Known allergies: Penicillin (severe)"
    assert "Latex" not in line(Entry("Latex", status="active (refuted)"), current)
    only_ended = line(Entry("Latex", status="resolved"))
    assert only_ended.startswith("No current allergies recorded") and "1 ended" in only_ended
    assert "No known" not in only_ended
