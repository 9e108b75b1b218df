"""The window's GUI-thread work in small steps: search answers merged as they arrive (grouped and sorted as
if rebuilt from scratch), callbacks from the core run a few per pass, records put on screen section by
section with the banner first, and record tables sized as Qt's own ResizeToContents would size them."""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt, QTimer

from app.core.model import SECTION_TITLES, Entry, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.core.search import PracticeResults, group_by_person
from app.ui import style
from app.ui.bridge import AsyncBridge
from app.ui.record_view import BODY_ORDER, NONE_RECORDED, RecordView
from app.ui.results_model import KEY_ROLE, NUMBER_COLUMN, ResultsModel
from app.ui.search_panel import APPLY_ROWS_PER_PASS, SearchPanel

pytestmark = pytest.mark.gui

PRACTICES = [Practice(f"p{i}", f"Practice {i}", f"A{i:05d}", "fhir-r4", f"http://127.0.0.1:1/p{i}",
                      colour=colour)
             for i, colour in enumerate(("#005eb8", "#007f3b", "#ae2573", "#ffb81c"))]


def patient(practice: int, local: str, family: str, given: str, born: date | None,
            nhs: str | None) -> PatientSummary:
    return PatientSummary(f"p{practice}", local, nhs, family, (given,), born, "female", "LS1 1AA")


def population(seed: int) -> list[list[PatientSummary]]:
    """Each practice's answer: shared NHS numbers, people without one, and people who sort equal."""
    rng = random.Random(seed)
    families = ["Smith", "SMITH", "Jones", "Ahmed", "Brown"]
    people = [(rng.choice(families), rng.choice(["Ann", "Bob", "Cy"]),
               rng.choice([date(1970, 1, 2), date(1980, 5, 6), None]),
               rng.choice([f"94{n:08d}" for n in range(12)] + [None, None])) for _ in range(40)]
    answers: list[list[PatientSummary]] = [[] for _ in PRACTICES]
    for n, (family, given, born, nhs) in enumerate(people):
        for p in rng.sample(range(len(PRACTICES)), rng.choice([1, 1, 2, 3])):
            answers[p].append(patient(p, f"L{n}", family, given, born, nhs))
    return answers


def expected_tree(patients: list[PatientSummary]) -> list[tuple[tuple[str, ...], list[tuple[str, str]]]]:
    """What the model showed before it merged answers: everything so far grouped and sorted afresh."""
    def sort_key(group):
        lead = group.members[0]
        return (lead.family.upper(), " ".join(lead.given).upper(), lead.birth_date.isoformat() if lead.birth_date
                else "")

    tree = []
    for group in sorted(group_by_person(patients), key=sort_key):
        children = [(m.practice_id, m.local_id) for m in group.members] if len(group.members) > 1 else []
        key = ("group", group.nhs_number) if children else (group.members[0].practice_id, group.members[0].local_id)
        tree.append((key, children))
    return tree


def model_tree(model: ResultsModel) -> list[tuple[tuple[str, ...], list[tuple[str, str]]]]:
    tree = []
    for row in range(model.rowCount()):
        top = model.index(row, 0)
        children = [model.index(r, 0, top).data(KEY_ROLE) for r in range(model.rowCount(top))]
        tree.append((top.data(KEY_ROLE), children))
    return tree


@pytest.mark.parametrize("seed", range(6))
def test_results_merged_answer_by_answer_match_a_fresh_grouping(qapp, seed: int) -> None:
    answers = population(seed)
    rng = random.Random(seed)
    batches: list[list[PatientSummary]] = []
    for answer in answers:  # some practices' answers arrive together, some alone, in any order
        if batches and rng.random() < 0.4:
            batches[-1].extend(answer)
        else:
            batches.append(list(answer))
    rng.shuffle(batches)
    model = ResultsModel()
    model.set_practices(PRACTICES)
    seen: list[PatientSummary] = []
    for batch in batches:
        model.add_patients(batch)
        seen.extend(batch)
        assert model_tree(model) == expected_tree(seen)
        assert model.person_count() == len(expected_tree(seen))
    for p in seen:
        index = model.index_of((p.practice_id, p.local_id))
        assert model.patient_at(index) == p
        assert model.patient_at(index.siblingAtColumn(3)) == p
    for row in range(model.rowCount()):
        top = model.index(row, 0)
        if model.rowCount(top):
            assert model.patient_at(top) is None
            assert top.data() == f"Registered at {model.rowCount(top)} practices"
            assert top.data(Qt.ItemDataRole.FontRole).bold()
    model.clear_results()
    assert model.rowCount() == 0 and model.person_count() == 0 and model.patients == []


def test_a_later_practice_turns_a_listed_patient_into_a_group(qtbot) -> None:
    """Coalesced answers: the second practice's answer arrives after the first is on screen."""
    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.set_practices(PRACTICES[:2])
    panel.show()
    panel.begin()
    first = patient(0, "a1", "Smith", "Ann", date(1970, 1, 2), "9434765919")
    other = patient(0, "a2", "Smyth", "Bob", date(1980, 5, 6), None)
    panel.add_result(PracticeResults("p0", (first, other)))
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2, timeout=2000)
    assert panel.pending() == ["p1"]
    assert "waiting for Practice 1" in panel.count_line.text()
    panel.tree.setCurrentIndex(panel.model.index_of(("p0", "a1")))

    second = patient(1, "b7", "SMITH", "Ann", date(1970, 1, 2), "9434765919")
    done: list[bool] = []
    panel.add_result(PracticeResults("p1", (second,)))
    panel.finish(then=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=2000)
    model = panel.model
    assert model.rowCount() == 2 and model.person_count() == 2
    group = model.index(0, 0)
    assert group.data() == "Registered at 2 practices"
    assert [model.index(r, 0, group).data(KEY_ROLE) for r in range(2)] == [("p0", "a1"), ("p1", "b7")]
    assert model.index(1, 0).data(KEY_ROLE) == ("p0", "a2")
    assert panel.tree.isExpanded(group)
    assert panel.model.patient_at(panel.tree.currentIndex()) == first, "the selection follows the patient"
    assert panel.pending() == []
    assert panel.count_line.text() == "2 patients from 2 of 2 practices"


def test_a_backlog_of_answers_is_shown_over_several_passes_before_the_search_finishes(qtbot) -> None:
    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.set_practices(PRACTICES)
    panel.begin()
    per_practice = APPLY_ROWS_PER_PASS // 2 + 1  # two answers never fit in one pass
    answers = [PracticeResults(p.id, tuple(patient(i, f"x{n}", f"Fam{n:03d}", "Al", None, None)
                                           for n in range(per_practice)))
               for i, p in enumerate(PRACTICES)]
    for answer in answers:
        panel.add_result(answer)
    done: list[int] = []
    panel.finish(then=lambda: done.append(panel.model.rowCount()))
    assert done == [], "not finished before its answers are on screen"
    assert panel.model.rowCount() < len(PRACTICES) * per_practice
    qtbot.waitUntil(lambda: bool(done), timeout=2000)
    assert done == [len(PRACTICES) * per_practice]
    assert panel.count_line.text() == f"{len(PRACTICES) * per_practice} patients from 4 of 4 practices"


def test_a_new_search_drops_answers_not_shown_yet(qtbot) -> None:
    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.set_practices(PRACTICES[:1])
    panel.begin()
    panel.add_result(PracticeResults("p0", (patient(0, "old", "Old", "Al", None, None),)))
    panel.begin()
    assert panel.model.rowCount() == 0 and panel.pending() == ["p0"]
    # The new search's own answer goes through the same pass: once it is on screen, the old one had its chance.
    done: list[bool] = []
    panel.add_result(PracticeResults("p0", (patient(0, "new", "New", "Al", None, None),)))
    panel.finish(then=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=2000)
    assert [panel.model.index(r, 0).data(KEY_ROLE) for r in range(panel.model.rowCount())] == [("p0", "new")]


def test_bridge_callbacks_keep_their_order_and_let_the_event_loop_in_between(qtbot) -> None:
    bridge = AsyncBridge()
    try:
        ran: list[object] = []

        def slow(n: int) -> None:
            time.sleep(0.002)
            ran.append(n)

        worker = threading.Thread(target=lambda: [bridge.post(lambda n=n: slow(n)) for n in range(20)])
        worker.start()
        worker.join()
        QTimer.singleShot(0, lambda: ran.append("timer"))  # queued after every callback
        qtbot.waitUntil(lambda: len(ran) == 21, timeout=2000)
        assert [x for x in ran if x != "timer"] == list(range(20))
        assert ran.index("timer") < 20, "the event loop ran between two passes of 2 ms callbacks"
    finally:
        bridge.shutdown()


def record(sections: dict[SectionName, Section], family: str = "Smith") -> PatientRecord:
    return PatientRecord(patient(0, "r1", family, "Ann", date(1970, 1, 2), "9434765919"), sections,
                         datetime(2026, 3, 1, 9, 30, tzinfo=UTC))


LONG = "An unusually long clinical description that needs several lines in a narrow column " * 3


def full_record() -> PatientRecord:
    sections: dict[SectionName, Section] = {}
    for n, name in enumerate(SECTION_TITLES):
        entries = [Entry(f"{name.value} entry {i}" + (f" {LONG}" if i % 3 == 0 else ""), f"20{10 + i:02d}-03-04",
                         "active" if i % 2 else None, LONG if i == 1 else ("Dose: 1 tablet" if i % 2 else None))
                   for i in range(n * 3)]
        sections[name] = Section.loaded(name, entries)
    sections[SectionName.ALLERGIES] = Section.failed(SectionName.ALLERGIES, "HTTP 500")
    return record(sections)


def laid_out(qtbot, wrong: Callable[[], list[Any]], timeout_ms: int = 3000) -> None:
    """Wait for the layout passes Qt has queued (they run as posted events, not at a known time) until
    `wrong()` finds nothing; then fail with what it still finds."""
    with contextlib.suppress(qtbot.TimeoutError):
        qtbot.waitUntil(lambda: not wrong(), timeout=timeout_ms)
    assert wrong() == []



def test_a_record_is_shown_banner_first_then_section_by_section(qtbot, host) -> None:
    view = RecordView(record({}).patient, PRACTICES[0], host)
    view.resize(host.size())
    view.show()
    shown: list[RecordView] = []
    view.record_shown.connect(shown.append)
    rec = full_record()
    view.show_record(rec)
    assert view.banner is not None and view.state == "loaded" and view.building
    assert view.sections == {}, "no section before the banner is on screen"
    qtbot.waitUntil(lambda: bool(shown), timeout=3000)
    assert shown == [view] and not view.building
    assert list(view.sections) == list(BODY_ORDER)
    blocks = [view.sections[name] for name in BODY_ORDER]
    assert all(block.parentWidget() is not None for block in blocks)
    banner = view.banner

    def out_of_order() -> list[int]:
        """The tops of the banner and every section, when they are not strictly top to bottom."""
        ys = [w.mapTo(view, w.rect().topLeft()).y() for w in (banner, *blocks)]
        return [] if all(a < b for a, b in itertools.pairwise(ys)) else ys

    laid_out(qtbot, out_of_order)  # once Qt has run the layout the sections' arrival asked for
    allergies = view.sections[SectionName.ALLERGIES]
    assert allergies.section.status == "failed" and allergies.table is None
    assert NONE_RECORDED not in allergies.message and allergies.message.endswith("none are recorded.")
    assert view.sections[SectionName.PROBLEMS].message == NONE_RECORDED  # loaded, and really empty


def test_a_record_abandoned_while_it_is_put_on_screen_stops(qtbot, host) -> None:
    view = RecordView(record({}).patient, PRACTICES[0], host)
    view.show()
    shown: list[RecordView] = []
    view.record_shown.connect(shown.append)
    view.show_record(full_record())
    view.show_error("The practice did not answer")
    # Every view's build steps run in one queue, in order: once a record shown after this one is on screen,
    # whatever was queued for the abandoned record has run (and must have done nothing).
    later = RecordView(record({}).patient, PRACTICES[1], host)
    with qtbot.waitSignal(later.record_shown, timeout=3000):
        later.show_record(record({}))
    assert shown == [] and view.sections == {} and view.banner is None and view.state == "error"
    view.show_record(full_record())  # a retry that succeeds is shown in full
    qtbot.waitUntil(lambda: bool(shown), timeout=3000)
    assert list(view.sections) == list(BODY_ORDER)


@pytest.mark.parametrize("width", [900, 520, 360])
def test_record_tables_are_sized_as_resize_to_contents_would(qtbot, host, width: int) -> None:
    host.resize(width, 700)
    view = RecordView(record({}).patient, PRACTICES[0], host)
    view.resize(width, 700)
    view.show()
    with qtbot.waitSignal(view.record_shown, timeout=3000):
        view.show_record(full_record())
    tables = [block.table for block in view.sections.values() if block.table is not None]
    assert len(tables) == 4

    def misfits() -> list[tuple[int, str, int, int, int]]:
        """(table, "column"/"row", which, size, what ResizeToContents would give) wherever they differ."""
        found = []
        for n, table in enumerate(tables):
            header = table.verticalHeader()
            for column in table.spec.fit:
                if table.isColumnHidden(column):  # nothing to say there (no status but the ordinary one)
                    continue
                wanted = max(table.sizeHintForColumn(column), table.horizontalHeader().sectionSizeHint(column))
                if table.columnWidth(column) != wanted:
                    found.append((n, "column", column, table.columnWidth(column), wanted))
            for row in range(table.row_count()):
                wanted = max(table.sizeHintForRow(row), header.sectionSizeHint(row))
                if table.rowHeight(row) != wanted:
                    found.append((n, "row", row, table.rowHeight(row), wanted))
        return found

    laid_out(qtbot, misfits)  # once the layout has given the tables their widths (wrapped rows follow them)
    heights = [tables[-1].rowHeight(r) for r in range(tables[-1].row_count())]
    assert max(heights) > min(heights), "long text wraps onto more lines"


def test_results_model_cells_are_not_editable(qapp) -> None:
    model = ResultsModel()
    model.set_practices(PRACTICES)
    model.add_patients([patient(0, "a", "Smith", "Ann", None, None)])
    flags = model.flags(model.index(0, 1))
    assert flags & Qt.ItemFlag.ItemIsSelectable and flags & Qt.ItemFlag.ItemIsEnabled
    assert not flags & Qt.ItemFlag.ItemIsEditable
    assert model.index(0, NUMBER_COLUMN).data() == "Not recorded"
    assert model.index(0, NUMBER_COLUMN).data(Qt.ItemDataRole.ForegroundRole).name() == style.SECONDARY
    assert model.index_of(("nope", "x")) == QModelIndex()


def test_a_long_section_shows_its_first_entries_and_the_rest_over_several_steps_when_asked(qtbot, host,
                                                                                          monkeypatch) -> None:
    """1,300 results: the record is on screen with the first few (no scrollbar inside the table); "Show all"
    puts the rest in a few hundred rows per step of the event loop, and the table grows to hold them."""
    from app.ui import record_table
    from app.ui.record_rows import SHOW_FIRST

    steps: list[int] = []
    add_rows = record_table.RowsModel.add_rows

    def counted(model, count):
        more = add_rows(model, count)
        steps.append(model.rowCount())
        return more

    monkeypatch.setattr(record_table.RowsModel, "add_rows", counted)
    entries = [Entry(f"Observation {i}", f"2001-01-{1 + i % 28:02d}", "final", f"{i} mmol/L") for i in range(1300)]
    sections = {name: Section.loaded(name, []) for name in SECTION_TITLES}
    sections[SectionName.OBSERVATIONS] = Section.loaded(SectionName.OBSERVATIONS, entries)
    view = RecordView(record({}).patient, PRACTICES[0], host)
    view.show()
    with qtbot.waitSignal(view.record_shown, timeout=5000):
        view.show_record(record(sections))
    block = view.sections[SectionName.OBSERVATIONS]
    table = block.table
    first = SHOW_FIRST["observations"]
    assert table.row_count() == first and steps == [first]
    assert table.model().index(0, 1).data() == "Observation 27"  # most recent first
    assert table.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    button = block.groups[0].show_all_button
    assert button is not None and button.text() == "Show all 1300 results"
    height = table.sizeHint().height()
    button.click()
    assert table.row_count() == first, "not in the click's own step"
    qtbot.waitUntil(lambda: table.row_count() == len(entries), timeout=5000)
    assert steps == [first, first + 300, first + 600, first + 900, first + 1200, 1300], "a few hundred per step"
    assert button.isHidden() and table.sizeHint().height() > height * 100
