"""Whose record each tab and pane holds: tab titles "SURNAME, Given · born · practice" cut from the right (the
whole title in the tooltip), and side by side a "Different patients" or "Same patient (NHS number matches)"
mark on each pane, with different banner accents for different people."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from PySide6.QtWidgets import QWidget

from app.core.model import PatientRecord, PatientSummary, Practice, Section, SectionName
from app.ui import style
from app.ui.record_tabs import (
    DIFFERENT_PATIENTS,
    MIN_TAB_WIDTH,
    NOT_CONFIRMED,
    SAME_PARTICIPANT,
    SAME_PATIENT,
    RecordArea,
    tab_title,
)
from app.ui.record_view import RecordView

pytestmark = pytest.mark.gui

P1 = Practice("p1", "Riverside Medical Centre", "Y12345", "fhir-r4", "http://127.0.0.1:1/p1", colour="#005eb8")
P2 = Practice("p2", "Hillview Family Practice", "Y23456", "fhir-r4", "http://127.0.0.1:1/p2", colour="#ae2573")
HOSTS: list[QWidget] = []


def person(local: str, nhs: str | None, family: str, given: str, born: date, practice: Practice = P1,
           pseudonym: str | None = None) -> PatientSummary:
    if pseudonym:
        return PatientSummary(practice.id, pseudonym, None, "", (), None, "female", None, pseudonym=pseudonym,
                              birth_year=born.year)
    return PatientSummary(practice.id, local, nhs, family, (given,), born, "female", "LS1 1AA")


def shown(patient: PatientSummary, practice: Practice = P1) -> RecordView:
    """A record view showing its record (banner and all)."""
    view = RecordView(patient, practice)
    view.show_record(PatientRecord(patient, {n: Section.loaded(n, []) for n in SectionName}, datetime.now(UTC)))
    return view


def area(qtbot, width: int = 1100) -> RecordArea:
    made = RecordArea()
    made.setStyleSheet(style.STYLE_SHEET)
    HOSTS.append(made)
    qtbot.addWidget(made)
    made.resize(width, 600)
    made.show()
    qtbot.waitExposed(made)
    return made


def side_by_side(qtbot, left: RecordView, right: RecordView) -> RecordArea:
    records = area(qtbot)
    records.add(left)
    records.add(right)
    assert records.split_current()
    qtbot.waitUntil(lambda: len(records.panes) == 2 and all(p.currentWidget() is not None for p in records.panes))
    # the moved record is laid out again from the next pass, banner first (RecordView.lay_out_if_held)
    qtbot.waitUntil(lambda: all(v.banner is not None and not v.held for v in (left, right)))
    for view in (left, right):
        records.refresh_tab(view)
    return records


def test_tab_titles_name_surname_given_birth_date_and_practice_and_cut_from_the_right(qtbot) -> None:
    records = area(qtbot, width=520)
    views = [shown(person(f"L{n}", f"94347659{n}9"[:10], "Adams-Worthington", f"Alexandra{n}", date(2018, 5, n + 1)))
             for n in range(4)]
    for view in views:
        records.add(view)
        records.refresh_tab(view)
    pane = records.current_pane
    bar = pane.tabBar()
    qtbot.waitUntil(lambda: bar.tabRect(3).width() > 0)
    assert pane.elideMode().name == "ElideRight", "never cut in the middle ('A…y')"
    for index, view in enumerate(views):
        title = pane.tabText(index)
        assert title == f"ADAMS-WORTHINGTON, Alexandra{index} · 0{index + 1}-May-2018 · Riverside Medical Centre"
        assert title == tab_title(view)
        assert pane.tabToolTip(index).startswith(title), "the whole title in the tooltip"
        assert "NHS No." in pane.tabToolTip(index)
    widths = [bar.tabRect(i).width() for i in range(4)]
    full = bar.fontMetrics().horizontalAdvance(pane.tabText(0))
    assert any(w < full for w in widths), "four long titles do not fit in 520 px: they are cut"
    assert min(widths) >= MIN_TAB_WIDTH, "but never below the width that still names the patient"


def test_research_view_tab_title_is_the_pseudonym_and_the_year(qtbot) -> None:
    view = shown(person("", None, "", "", date(1974, 3, 12), pseudonym="R-7K3Q-M2XD-9FJA"))
    assert tab_title(view) == "Research participant R-7K3Q-M2XD-9FJA · 1974 · Riverside Medical Centre"


def test_two_different_people_side_by_side_are_marked_as_different(qtbot) -> None:
    girl = shown(person("L1", "9434765919", "Saunders", "Abena", date(2020, 6, 1)))
    man = shown(person("L2", "9434765870", "Adams", "John", date(1958, 1, 2)), P2)
    records = side_by_side(qtbot, girl, man)
    marks = [p.identity_mark for p in records.panes]
    qtbot.waitUntil(lambda: all(m.isVisible() for m in marks))
    assert [m.accessibleName() for m in marks] == [DIFFERENT_PATIENTS, DIFFERENT_PATIENTS]
    assert all(DIFFERENT_PATIENTS in m.text() for m in marks)
    assert girl.banner is not None and man.banner is not None
    assert girl.banner.accent() is not None and man.banner.accent() is not None
    assert girl.banner.accent() != man.banner.accent(), "different people, different accents"

    records.close_view(man)  # one record left: nothing to compare
    qtbot.waitUntil(lambda: not any(p.identity_mark.isVisible() for p in records.panes))
    assert girl.banner.accent() is None


def test_the_same_nhs_number_at_two_practices_is_marked_as_the_same_patient(qtbot) -> None:
    here = shown(person("L1", "9434765919", "Saunders", "Abena", date(1974, 3, 12)))
    there = shown(person("X9", "9434765919", "Saunders", "Abena", date(1974, 3, 12), P2), P2)
    records = side_by_side(qtbot, here, there)
    marks = [p.identity_mark for p in records.panes]
    qtbot.waitUntil(lambda: all(m.isVisible() for m in marks))
    assert [m.accessibleName() for m in marks] == [SAME_PATIENT, SAME_PATIENT]
    assert here.banner is not None and there.banner is not None
    assert here.banner.accent() == there.banner.accent()


def test_no_nhs_number_is_not_called_the_same_patient_and_pseudonyms_compare_in_the_research_view(qtbot) -> None:
    named = shown(person("L1", None, "Saunders", "Abena", date(1974, 3, 12)))
    numbered = shown(person("X9", "9434765919", "Saunders", "Abena", date(1974, 3, 12), P2), P2)
    records = side_by_side(qtbot, named, numbered)
    qtbot.waitUntil(lambda: all(p.identity_mark.isVisible() for p in records.panes))
    assert {p.identity_mark.accessibleName() for p in records.panes} == {NOT_CONFIRMED}

    a = shown(person("", None, "", "", date(1974, 1, 1), pseudonym="R-AAAA-BBBB-CCCC"))
    b = shown(person("", None, "", "", date(1974, 1, 1), P2, pseudonym="R-AAAA-BBBB-CCCC"), P2)
    research = side_by_side(qtbot, a, b)
    qtbot.waitUntil(lambda: all(p.identity_mark.isVisible() for p in research.panes))
    assert {p.identity_mark.accessibleName() for p in research.panes} == {SAME_PARTICIPANT}


def test_the_current_view_is_announced_for_the_window_title(qtbot) -> None:
    first = shown(person("L1", "9434765919", "Saunders", "Abena", date(1974, 3, 12)))
    second = shown(person("L2", "9434765870", "Adams", "John", date(1958, 1, 2)))
    records = area(qtbot)
    seen: list[RecordView | None] = []
    records.current_view_changed.connect(seen.append)
    records.add(first)
    records.add(second)
    qtbot.waitUntil(lambda: seen and seen[-1] is second)
    records.focus_view(first)
    assert seen[-1] is first
    records.close_view(first)
    records.close_view(second)
    assert seen[-1] is None


def test_the_window_title_names_the_patient_and_only_the_pseudonym_in_the_research_view() -> None:
    from app.ui.patient_actions import APP_TITLE, window_title

    assert window_title(person("L1", "9434765919", "Saunders", "Abena", date(1974, 3, 12))) == \
        "SAUNDERS, Abena (NHS 943 476 5919) — Mosaic"
    assert window_title(person("L1", None, "Saunders", "Abena", date(1974, 3, 12))) == "SAUNDERS, Abena — Mosaic"
    assert window_title(person("", None, "", "", date(1974, 1, 1), pseudonym="R-AAAA-BBBB-CCCC")) == \
        "Research participant R-AAAA-BBBB-CCCC — Mosaic"
    assert window_title(None) == APP_TITLE
