"""The record body as a clinician reads it: allergies and active problems first, groups in clinical words,
results by report with flags, notes only outside the research view, one scroll area, withheld and failed
sections said as such, and one failed section retried alone."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel

from app.core.model import Entry, Section, SectionName
from app.ui import style
from app.ui.record_rows import BODY_ORDER, NO_ALLERGIES, NO_CURRENT_MEDICATION, NONE_RECORDED, SHOW_FIRST
from app.ui.record_sections import NOT_PROVIDED, WITHHELD_FOR_ROLE, WITHHELD_FOR_STUDY
from app.ui.record_view import RecordView
from tests.ui.record_samples import PRACTICE, patient, sample_record, sections

pytestmark = pytest.mark.gui

RAW_CODES = {"final", "finished", "completed", "active", "stopped", "resolved", "inactive", "preliminary",
             "entered-in-error", "on-hold", "not-done", "in-progress", "amended", "unconfirmed"}



def shown(qtbot, host, record) -> RecordView:
    view = RecordView(record.patient, PRACTICE, host)
    view.resize(host.size())
    view.show()
    with qtbot.waitSignal(view.record_shown, timeout=5000):
        view.show_record(record)
    return view


def cells(view: RecordView) -> list[str]:
    texts = []
    for block in view.sections.values():
        for table in block.tables:
            model = table.model()
            texts += [model.index(r, c).data() or "" for r in range(model.rowCount())
                      for c in range(model.columnCount())]
    return texts


def group_titles(view: RecordView) -> list[str]:
    return [g.group.title for block in view.sections.values() for g in block.groups]


def test_the_summary_comes_first_in_clinical_groups(qtbot, host) -> None:
    view = shown(qtbot, host, sample_record())
    assert list(view.sections) == list(BODY_ORDER)
    assert group_titles(view) == ["Allergies and adverse reactions", "Active problems", "Significant past problems",
                                  "Repeat medication", "Acute medication", "Past medication", "Consultations",
                                  "Results", "Immunisations"]
    allergies = view.sections[SectionName.ALLERGIES].table.model()
    rows = [[allergies.index(r, c).data() for c in range(4)] for r in range(allergies.rowCount())]
    assert rows[0][1:] == ["Penicillin", "Severe", "Anaphylaxis"], "the severe allergy first, with its reaction"
    assert allergies.index(0, 2).data(Qt.ItemDataRole.ForegroundRole).color().name() == style.ERROR
    problems = view.sections[SectionName.PROBLEMS].groups
    assert [g.group.count for g in problems] == [4, 3]
    assert problems[0].table.model().index(0, 1).data() == "Osteoarthritis of knee"  # most recent first
    texts = cells(view)
    assert not RAW_CODES & {t.strip().lower() for t in texts}, "no status code on screen"
    assert "Stopped" not in texts, "past medication is folded: not built until opened"
    past = view.sections[SectionName.MEDICATIONS].groups[-1]
    assert past.toggle is not None and past.table is None
    past.toggle.click()
    assert past.table is not None and past.table.isVisible()
    model = past.table.model()
    assert [model.index(r, 2).data() for r in range(model.rowCount())] == ["Completed", "Stopped"]
    past.toggle.click()
    assert not past.table.isVisible()


def test_results_are_grouped_by_report_with_units_ranges_and_flags_in_words(qtbot, host) -> None:
    view = shown(qtbot, host, sample_record())
    table = view.sections[SectionName.OBSERVATIONS].table
    model = table.model()
    rows = [tuple(model.index(r, c).data() or "" for c in range(5)) for r in range(model.rowCount())]
    assert rows[0] == ("14-Feb-2026", "Blood pressure", "142/88 mmHg", "▲ High (systolic)", "< 140 / < 90")
    assert rows[2] == ("10-Jan-2026", "Haemoglobin A1c", "61 mmol/mol", "▲▲ Critically high", "20–42")
    heading = rows.index(("01-Dec-2025", "Lipid profile", "", "", ""))
    assert table.columnSpan(heading, 1) == 4, "the report's title runs across the row"
    assert model.index(heading, 1).data(Qt.ItemDataRole.FontRole).bold()
    total = rows[heading + 1]
    assert total[1].strip() == "Total cholesterol" and total[2:] == ("6.4 mmol/L", "▲ High", "0–5")
    assert model.index(heading + 1, 3).data(Qt.ItemDataRole.ForegroundRole).color().name() == style.ERROR
    assert rows[heading + 2][3] == "", "a normal value has no flag"
    assert rows[heading + 3][1].strip() == "Triglycerides (preliminary result)"


def test_consultations_carry_their_notes_but_never_in_the_research_view(qtbot, host) -> None:
    view = shown(qtbot, host, sample_record())
    table = view.sections[SectionName.ENCOUNTERS].table
    model = table.model()
    notes = [r for r in range(model.rowCount()) if table.columnSpan(r, 1) > 1]
    assert notes and model.index(notes[0], 1).data().startswith("Seen for review")
    research = sample_record()
    research = dataclasses.replace(research, patient=patient(pseudonym="R-AAAA-BBBB-CCCC"))
    other = shown(qtbot, host, research)
    assert not any("Seen for review" in t for t in cells(other)), "no notes area in the research view"


def test_no_table_scrolls_by_itself_and_long_groups_offer_show_all(qtbot, host) -> None:
    view = shown(qtbot, host, sample_record(active_problems=20, consultations=30, observations=12))
    tables = [table for block in view.sections.values() for table in block.tables]
    assert all(t.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff for t in tables)

    def cut_short() -> list[tuple[int, int]]:
        return [(t.height(), t.verticalHeader().length()) for t in tables
                if t.height() < t.verticalHeader().length() + t.horizontalHeader().height()]

    qtbot.waitUntil(lambda: not cut_short(), timeout=3000)  # once Qt has laid the record out: every row in view
    group = view.sections[SectionName.ENCOUNTERS].groups[0]
    assert group.group.count == 30 and group.show_all_button.text() == "Show all 30 consultations"
    assert sum(1 for r in group.group.rows[:group.group.first] if not r.span) == SHOW_FIRST["encounters"]
    active = view.sections[SectionName.PROBLEMS].groups[0]
    assert active.table.row_count() == SHOW_FIRST["active"] and active.show_all_button is not None
    with qtbot.waitSignal(active.table.model().rowsInserted, timeout=3000):
        active.show_all_button.click()
    assert active.table.row_count() == 20
    qtbot.waitUntil(active.show_all_button.isHidden, timeout=3000)
    body = view.body_scroll.widget()
    assert body.height() < 4000, "not thousands of px tall by default"


def test_loaded_empty_failed_unsupported_and_withheld_read_differently(qtbot, host) -> None:
    parts = sections()
    parts[SectionName.ALLERGIES] = Section.loaded(SectionName.ALLERGIES, [])
    parts[SectionName.PROBLEMS] = Section.failed(SectionName.PROBLEMS, "HTTP 500")
    parts[SectionName.IMMUNISATIONS] = Section.unsupported(SectionName.IMMUNISATIONS)
    parts[SectionName.ENCOUNTERS] = Section.withheld(SectionName.ENCOUNTERS)
    parts[SectionName.MEDICATIONS] = Section.loaded(SectionName.MEDICATIONS, [])
    record = dataclasses.replace(sample_record(), sections=parts)
    view = shown(qtbot, host, record)
    assert view.sections[SectionName.ALLERGIES].message == NO_ALLERGIES
    assert view.sections[SectionName.MEDICATIONS].message == NONE_RECORDED
    failed = view.sections[SectionName.PROBLEMS]
    assert failed.message.startswith("Could not load problems from Riverside Surgery: HTTP 500")
    assert failed.retry_button is not None and failed.table is None
    labels = [w.text() for w in failed.findChildren(QLabel)]
    assert not any(NONE_RECORDED in t for t in labels)
    assert view.sections[SectionName.IMMUNISATIONS].message == NOT_PROVIDED
    withheld = view.sections[SectionName.ENCOUNTERS]
    assert withheld.message == WITHHELD_FOR_ROLE and withheld.retry_button is None
    assert not any(t.startswith("Could not load") for t in (w.text() for w in withheld.findChildren(QLabel)))
    research = dataclasses.replace(record, patient=patient(pseudonym="R-AAAA-BBBB-CCCC"))
    other = shown(qtbot, host, research)
    assert other.sections[SectionName.ENCOUNTERS].message == WITHHELD_FOR_STUDY
    titles = [w.text() for w in other.sections[SectionName.ENCOUNTERS].findChildren(QLabel)]
    assert "Consultations" in titles and "encounters" not in " ".join(titles), "named in words, not its key"


def test_retry_asks_for_the_one_section_and_shows_it_in_place(qtbot, host) -> None:
    parts = sections()
    parts[SectionName.MEDICATIONS] = Section.failed(SectionName.MEDICATIONS, "the practice timed out")
    view = shown(qtbot, host, dataclasses.replace(sample_record(), sections=parts))
    block = view.sections[SectionName.MEDICATIONS]
    allergies = view.sections[SectionName.ALLERGIES]
    with qtbot.waitSignal(view.section_retry_requested, timeout=1000) as asked:
        qtbot.mouseClick(block.retry_button, Qt.MouseButton.LeftButton)
    assert asked.args == [view, SectionName.MEDICATIONS]
    assert not block.retry_button.isEnabled(), "pressed once until it answers"
    view.section_retry_failed(SectionName.MEDICATIONS)
    assert block.retry_button.isEnabled()
    view.replace_section(Section.loaded(SectionName.MEDICATIONS, [Entry("Metformin 500mg tablets", "2026-01-01",
                                                                        "active", group="repeat")]))
    new = view.sections[SectionName.MEDICATIONS]
    assert new is not block and new.table is not None and new.message == ""
    assert view.sections[SectionName.ALLERGIES] is allergies, "the rest of the record stays as it was"
    assert view.record.sections[SectionName.MEDICATIONS].status == "loaded"
    order = [view.sections[name] for name in BODY_ORDER]
    qtbot.waitUntil(lambda: all(a.y() < b.y() for a, b in itertools.pairwise(order)), timeout=2000)


@pytest.mark.parametrize("width", [1300, 660, 460])
def test_no_table_scrolls_sideways_and_the_description_keeps_its_room(qtbot, host, width: int) -> None:
    """Narrow (a third of a laptop screen), the fitted columns (date, value, flag, range) share the width and wrap
    rather than push the test's name out of sight or make the table scroll sideways; wide, they fit their text."""
    host.resize(width, 700)
    view = shown(qtbot, host, sample_record())
    tables = [table for block in view.sections.values() for table in block.tables]

    def misfits() -> list[tuple[str, int, int]]:
        found = []
        for table in tables:
            used = sum(table.columnWidth(c) for c in range(table.model().columnCount()) if not table.isColumnHidden(c))
            if used > table.viewport().width() + 1 or table.horizontalScrollBar().isVisible():
                found.append((table.accessibleName(), used, table.viewport().width()))
            texts = [table.model().index(r, 1).data() or "" for r in range(table.row_count())
                     if table.columnSpan(r, 1) == 1]
            metrics = QFontMetrics(table.font())
            widest = max((metrics.horizontalAdvance(t) for t in texts), default=0)
            if table.columnWidth(1) < min(widest, table.viewport().width() * 0.25):  # squeezed out of sight
                found.append((table.accessibleName() + " description", table.columnWidth(1), table.viewport().width()))
        return found

    qtbot.waitUntil(lambda: not misfits(), timeout=3000)
    results = view.sections[SectionName.OBSERVATIONS].table
    value = next(r for r in range(results.row_count()) if results.model().index(r, 2).data() == "61 mmol/mol")
    name = results.model().index(value, 1).data()
    if width >= 1300:  # room enough: one line each, the value right after its test's name (not across the screen)
        assert results.rowHeight(value) == results.rowHeight(0)
        assert results.columnWidth(1) < QFontMetrics(results.font()).horizontalAdvance(name) * 3
    else:
        assert results.rowHeight(value) >= results.rowHeight(0)


def test_only_past_medication_says_there_is_none_current(qtbot, host) -> None:
    parts = sections()
    stopped = [e for e in parts[SectionName.MEDICATIONS].entries if e.group == "past"]
    parts[SectionName.MEDICATIONS] = Section.loaded(SectionName.MEDICATIONS, stopped)
    view = shown(qtbot, host, dataclasses.replace(sample_record(), sections=parts))
    groups = view.sections[SectionName.MEDICATIONS].groups
    assert [g.group.title for g in groups] == ["Current medication", "Past medication"]
    assert groups[0].message == NO_CURRENT_MEDICATION and groups[1].toggle is not None
