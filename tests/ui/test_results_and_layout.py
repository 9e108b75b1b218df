"""Search results and the window's layout (issue 11): the Age column, sorting by any heading with a person's
registrations kept together, honest counts, Open at every practice, the results folding away while a record is
open (back with Ctrl+F), the practices panel folding to a strip while every practice is well, and one reason for
the same patient at two practices."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from app.core.audit.model import Action
from app.core.model import PatientSummary, Practice
from app.core.nhs_number import format_nhs_number
from app.core.search import PracticeResults
from app.core.sessions import PracticeStatus
from app.ui.access_dialogs import ReasonDialog
from app.ui.result_cells import age_cell, age_sort_key
from app.ui.results_model import (
    AGE_COLUMN,
    COLUMNS,
    KEY_ROLE,
    NAME_COLUMN,
    POSTCODE_COLUMN,
    SORT_ROLE,
    AccessMark,
    ResultsModel,
)
from app.ui.search_panel import SearchPanel
from tests.ui.test_access_dialogs import (
    REASONS,
    accept,
    ask_to_open,
    find_result,
    journal,
    policy,
    policy_window,
    restricted_window,
    tick,
)
from tests.ui.test_faults import opened
from tests.ui.test_window import open_from_results, search, select_row, shared_patient

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000
__all__ = ["policy_window"]  # a fixture, used by name

PRACTICES = [Practice(f"p{i}", f"Practice {i}", f"A{i:05d}", "fhir-r4", f"http://127.0.0.1:1/p{i}", colour=colour)
             for i, colour in enumerate(("#005eb8", "#007f3b", "#ae2573", "#ffb81c", "#330072"))]
TODAY = date.today()


def person(practice: int, local: str, family: str, given: str, born: date | None, nhs: str | None = None,
           postcode: str | None = "LS1 1AA", sex: str = "female", **more) -> PatientSummary:
    return PatientSummary(f"p{practice}", local, nhs, family, (given,), born, sex, postcode, **more)


ADULT = person(0, "a", "Saunders", "Abena", date(1974, 3, 12), "9434765919")
CHILD = person(0, "c", "Saunders", "Abena Deborah", TODAY - timedelta(days=7 * 365 + 30), "9434765870")
INFANT = person(1, "i", "Brown", "Cy", TODAY - timedelta(days=300), postcode="WF1 2AB", sex="male")
DEAD = person(2, "d", "Ahmed", "Bob", date(1931, 5, 6), deceased=date(2024, 2, 1), postcode="HD1 1XX", sex="male")
UNDATED = person(3, "u", "Jones", "Ann", None, postcode=None)
SAME_A = person(1, "s1", "Zed", "Al", date(1980, 1, 2), "9434765900")
SAME_B = person(4, "s2", "Zed", "Al", date(1980, 1, 2), "9434765900", postcode="ZZ9 9ZZ")
EVERYONE = [ADULT, CHILD, INFANT, DEAD, UNDATED, SAME_A, SAME_B]


def shown_panel(qtbot, answers: list[PracticeResults]) -> SearchPanel:
    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 500)
    panel.set_practices(PRACTICES)
    panel.show()
    panel.begin()
    done: list[bool] = []
    for answer in answers:
        panel.add_result(answer)
    panel.finish(then=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT_MS)
    return panel


def answers_for(patients: list[PatientSummary]) -> list[PracticeResults]:
    return [PracticeResults(p.id, tuple(x for x in patients if x.practice_id == p.id)) for p in PRACTICES]


# --- the Age column ----------------------------------------------------------------------------------------

def test_age_is_in_years_months_under_two_and_deceased_instead_of_an_age() -> None:
    today = date(2026, 12, 3)
    assert age_cell(person(0, "x", "A", "B", date(1974, 3, 12)), today) == ("52y", "52 years")
    assert age_cell(person(0, "x", "A", "B", date(2025, 12, 4)), today) == ("11m", "11 months")
    assert age_cell(person(0, "x", "A", "B", date(2024, 12, 4)), today) == ("23m", "23 months")
    assert age_cell(person(0, "x", "A", "B", date(2024, 12, 3)), today) == ("2y", "2 years")
    assert age_cell(person(0, "x", "A", "B", date(2026, 11, 10)), today) == ("3w", "3 weeks")
    assert age_cell(person(0, "x", "A", "B", date(2026, 12, 2)), today) == ("1d", "1 day")
    dead = person(0, "x", "A", "B", date(1931, 5, 6), deceased=date(2024, 2, 1))
    assert age_cell(dead, today) == ("Deceased", "Died 01-Feb-2024, aged 92 years")
    assert age_cell(person(0, "x", "A", "B", date(1931, 5, 6), deceased=True), today) == (
        "Deceased", "Deceased (date of death not recorded)")
    assert age_cell(person(0, "x", "A", "B", None), today) == ("", "Not known")
    research = PatientSummary("p0", "R-1", None, "", (), None, None, None, pseudonym="R-1", birth_year=1974)
    assert age_cell(research, today)[0] == "51–52y"
    gone = PatientSummary("p0", "R-2", None, "", (), None, None, None, pseudonym="R-2", birth_year=1931, deceased=True)
    assert age_cell(gone, today) == ("Deceased", "Deceased (the date is withheld in the research view)")
    assert age_sort_key(person(0, "x", "A", "B", date(2026, 1, 1)), today) < age_sort_key(dead, today)


def test_the_age_column_shows_infants_in_months_and_the_deceased_as_deceased(qapp) -> None:
    model = ResultsModel()
    model.set_practices(PRACTICES)
    model.add_patients(EVERYONE)
    assert COLUMNS[AGE_COLUMN] == "Age"

    def age_of(patient: PatientSummary):
        return model.index_of((patient.practice_id, patient.local_id)).siblingAtColumn(AGE_COLUMN)

    assert age_of(ADULT).data() == age_cell(ADULT)[0] and age_of(ADULT).data().endswith("y")
    assert age_of(CHILD).data() == "7y"
    infant = age_of(INFANT)
    assert infant.data() in ("9m", "10m") and infant.data(Qt.ItemDataRole.AccessibleTextRole).endswith(" months")
    dead = age_of(DEAD)
    assert dead.data() == "Deceased" and dead.data(Qt.ItemDataRole.FontRole).bold()
    assert "Died 01-Feb-2024, aged 92 years" in dead.data(Qt.ItemDataRole.ToolTipRole)
    assert age_of(UNDATED).data() == ""


def test_a_restricted_patients_address_reads_withheld_never_blank(qapp) -> None:
    withheld = person(0, "r", "Hidden", "Rae", date(1990, 1, 1), "9434765811", postcode=None)
    model = ResultsModel()
    model.set_practices(PRACTICES)
    model.set_access_check(lambda p: AccessMark("Restricted — break-glass", "why", withholds_address=True)
                           if p is withheld else None)
    model.add_patients([withheld, UNDATED])
    cell = model.index_of(("p0", "r")).siblingAtColumn(POSTCODE_COLUMN)
    assert cell.data() == "Withheld"
    assert "withheld" in cell.data(Qt.ItemDataRole.ToolTipRole)
    assert model.index_of(("p3", "u")).siblingAtColumn(POSTCODE_COLUMN).data() == "", "not recorded stays empty"


# --- sorting ---------------------------------------------------------------------------------------------

def click_heading(qtbot, panel: SearchPanel, column: int) -> None:
    header = panel.tree.header()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def top_rows(panel: SearchPanel, column: int, role=SORT_ROLE) -> list:
    model = panel.model
    return [model.index(r, column).data(role) for r in range(model.rowCount())]


def test_every_column_sorts_both_ways_and_a_persons_registrations_stay_together(qtbot) -> None:
    panel = shown_panel(qtbot, answers_for(EVERYONE))
    natural = top_rows(panel, 0, KEY_ROLE)
    assert len(natural) == 6, "six people, one of them registered at two practices"
    header = panel.tree.header()
    assert header.sortIndicatorSection() == -1, "the list's own order until a heading is clicked"
    for column in range(len(COLUMNS)):
        click_heading(qtbot, panel, column)
        assert header.sortIndicatorSection() == column and header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
        keys = top_rows(panel, column)
        assert keys == sorted(keys), COLUMNS[column]
        click_heading(qtbot, panel, column)
        assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
        keys = top_rows(panel, column)
        assert keys == sorted(keys, reverse=True), COLUMNS[column]
        group = panel.model.index_of(("group", "9434765900"))
        assert group.isValid() and not group.parent().isValid()
        assert {panel.model.index(r, 0, group).data(KEY_ROLE) for r in range(2)} == {("p1", "s1"), ("p4", "s2")}
        click_heading(qtbot, panel, column)  # a third click: the list's own order again
        assert header.sortIndicatorSection() == -1
        assert top_rows(panel, 0, KEY_ROLE) == natural

    click_heading(qtbot, panel, AGE_COLUMN)  # youngest first; the deceased after the living; unknown last
    assert top_rows(panel, 0, KEY_ROLE)[:2] == [("p1", "i"), ("p0", "c")]
    assert top_rows(panel, 0, KEY_ROLE)[-2:] == [("p2", "d"), ("p3", "u")]
    click_heading(qtbot, panel, AGE_COLUMN)
    click_heading(qtbot, panel, AGE_COLUMN)
    click_heading(qtbot, panel, NAME_COLUMN)
    names = top_rows(panel, NAME_COLUMN, Qt.ItemDataRole.DisplayRole)
    assert names[0].startswith("AHMED") and names[-1].startswith("ZED")


def test_answers_arriving_while_sorted_go_to_their_sorted_places(qtbot) -> None:
    panel = shown_panel(qtbot, answers_for([ADULT, DEAD]))
    click_heading(qtbot, panel, AGE_COLUMN)
    panel.begin()
    done: list[bool] = []
    for answer in answers_for(EVERYONE):
        panel.add_result(answer)
    panel.finish(then=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=TIMEOUT_MS)
    keys = top_rows(panel, AGE_COLUMN)
    assert len(keys) == 6 and keys == sorted(keys)
    selected = panel.model.index_of(("p2", "d"))
    panel.tree.setCurrentIndex(selected)
    assert panel.model.patient_at(panel.tree.currentIndex()) == DEAD


# --- counts ----------------------------------------------------------------------------------------------

def test_counts_say_which_practices_answered_could_not_take_the_search_or_failed(qtbot) -> None:
    eight = [person(i % 3, f"x{i}", f"Fam{i}", "Al", date(1970, 1, 1 + i)) for i in range(8)]
    only_nhs = "can only be searched by NHS number"
    answers = [*answers_for(eight)[:3],
               PracticeResults("p3", note="Practice 3 can only be searched by NHS number.", queried=False,
                               unsupported=only_nhs),
               PracticeResults("p4", note="Practice 4 can only be searched by NHS number.", queried=False,
                               unsupported=only_nhs)]
    panel = shown_panel(qtbot, answers)
    assert panel.count_line.text() == "8 patients from 3 of 5 practices; 2 can only be searched by NHS number"
    assert "Practice 3 can only be searched by NHS number." in panel.notes_label.toolTip()

    answers = [PracticeResults("p0", (ADULT,)), PracticeResults("p1"), PracticeResults("p2"),
               PracticeResults("p3", note="Practice 3 can only be searched by NHS number.", queried=False,
                               unsupported=only_nhs),
               PracticeResults("p4", error="Practice 4 did not answer the search in time.")]
    panel = shown_panel(qtbot, answers)
    assert panel.count_line.text() == ("1 patient from 3 of 5 practices; 1 can only be searched by NHS number; "
                                       "1 could not be searched: Practice 4")
    panel = shown_panel(qtbot, [PracticeResults(p.id) for p in PRACTICES[:4]]
                        + [PracticeResults("p4", error="Practice 4 was not searched: not signed in")])
    assert panel.count_line.text() == "No patients found at 4 of 5 practices; 1 could not be searched: Practice 4"


# --- open at every practice ------------------------------------------------------------------------------

def test_open_at_every_practice_is_offered_for_a_person_registered_at_several(qtbot) -> None:
    panel = shown_panel(qtbot, answers_for(EVERYONE))
    asked: list[str] = []
    panel.open_all_requested.connect(asked.append)
    panel.tree.setCurrentIndex(panel.model.index_of(("p0", "a")))
    assert panel.open_all_button.isHidden(), "one registration: nothing to open everywhere"
    panel.tree.setCurrentIndex(panel.model.index_of(("p4", "s2")))  # a registration under the group
    assert panel.open_all_button.isVisible() and panel.open_all_button.text() == "Open at all 2 practices"
    qtbot.mouseClick(panel.open_all_button, Qt.MouseButton.LeftButton)
    panel.tree.setCurrentIndex(panel.model.index_of(("group", "9434765900")))
    qtbot.mouseClick(panel.open_all_button, Qt.MouseButton.LeftButton)
    assert asked == ["9434765900", "9434765900"]


# --- layout: the results fold away while a record is open ----------------------------------------------

def test_results_fold_away_when_a_record_opens_and_come_back_with_ctrl_f(qtbot, window, network) -> None:
    win = window
    panel = win.search_panel
    number, registrations, family = shared_patient(network)
    outcome = search(qtbot, win, family)
    people = panel.model.person_count()
    assert panel.tree.isVisible() and not panel.folded
    patient = next(p for p in outcome.patients if (p.practice_id, p.local_id) == registrations[0])
    view = open_from_results(qtbot, win, patient)
    assert view.state == "loaded"
    qtbot.waitUntil(lambda: panel.folded and not panel.tree.isVisible(), timeout=TIMEOUT_MS)
    assert panel.fold_button.isVisible() and panel.fold_button.text() == f"Search results ({people})"
    assert panel.count_line.isVisible(), "the counts stay in view"

    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert not panel.folded and panel.tree.isVisible() and panel.box.hasFocus()
    assert panel.model.person_count() == people, "the same results, not searched again"

    qtbot.mouseClick(panel.fold_button, Qt.MouseButton.LeftButton)  # the visible toggle, both ways
    assert panel.folded and not panel.tree.isVisible()
    qtbot.mouseClick(panel.fold_button, Qt.MouseButton.LeftButton)
    assert not panel.folded and panel.tree.isVisible()
    qtbot.mouseClick(panel.fold_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not panel.folded and panel.tree.hasFocus(), "Go to results brings them back too"

    win.records.close_view(view)
    assert not panel.folded


def test_at_1366_by_768_an_open_record_gets_most_of_the_height(qtbot, window, network) -> None:
    win = window
    win.resize(1366, 768)
    qtbot.waitUntil(lambda: win.height() == 768, timeout=TIMEOUT_MS)
    number, registrations, family = shared_patient(network)
    outcome = search(qtbot, win, format_nhs_number(number))
    patient = next(p for p in outcome.patients if (p.practice_id, p.local_id) == registrations[0])
    view = open_from_results(qtbot, win, patient)
    qtbot.waitUntil(lambda: win.search_panel.folded, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: win.search_panel.height() < 100, timeout=TIMEOUT_MS)
    central = win.centralWidget().height()
    assert win.records.height() >= 0.8 * central, (win.records.height(), central)
    assert view.height() >= 0.75 * central
    assert not win.practices_dock.isVisible(), "every practice is well: the panel is a strip, its width is the record's"
    assert view.width() >= 0.95 * win.centralWidget().width()


# --- layout: the practices panel folds to a strip while all is well --------------------------------------

def test_the_practices_panel_is_a_strip_while_all_are_online_and_unfolds_when_one_is_not(qtbot, network) -> None:
    down = network.servers[3]
    down.faults.mode = "down"  # the network fixture resets faults after the test
    with opened(qtbot, network.practices) as win:
        strip, dock, rows = win.practices_strip, win.practices_dock, win.practices_panel.rows
        assert rows[down.spec.id].state.status is PracticeStatus.RETRYING
        assert dock.isVisible() and not strip.isVisible(), "a practice is not well: its reason is in view"
        assert rows[down.spec.id].retry_button.isVisible()
        assert [pid for pid, row in rows.items() if row.retry_button.isVisible()] == [down.spec.id], \
            "Retry only where there is something to retry"

        down.faults.mode = None
        with qtbot.waitSignal(win.practice_state_changed, timeout=TIMEOUT_MS,
                              check_params_cb=lambda s: s.status is PracticeStatus.ONLINE):
            qtbot.mouseClick(rows[down.spec.id].retry_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: strip.isVisible() and not dock.isVisible(), timeout=TIMEOUT_MS)
        assert strip.button.text() == "5 practices online"
        assert strip.height() <= 40, "one line"
        for practice in network.practices:
            assert practice.name in strip.button.toolTip()

        qtbot.mouseClick(strip.button, Qt.MouseButton.LeftButton)  # unfolded by the user: it stays
        assert dock.isVisible() and not strip.isVisible()
        win.practices_fold.refresh()
        assert dock.isVisible()
        assert not any(row.retry_button.isVisible() for row in rows.values())
        assert win.practices_panel.sign_in_button.objectName() == "secondaryButton", "not prominent: all signed in"

        dock.close()  # closed by the user: the strip stands for it
        assert strip.isVisible() and not dock.isVisible()
        down.faults.mode = "down"  # the practice drops while the panel is folded: it unfolds by itself

        async def check() -> None:
            assert win.core is not None
            win.core.sessions.check_soon(down.spec.id)

        win.bridge.submit(check())
        qtbot.waitUntil(lambda: dock.isVisible() and not strip.isVisible(), timeout=TIMEOUT_MS)
        assert rows[down.spec.id].retry_button.isVisible()


# --- one reason for the same patient at two practices ---------------------------------------------------

def test_the_same_patient_at_a_second_practice_does_not_ask_for_the_reason_again(qtbot, policy_window,
                                                                                  network) -> None:
    win = policy_window(policy(reason_required=True))
    number, registrations, _ = shared_patient(network)
    outcome = search(qtbot, win, format_nhs_number(number))
    first, second = (next(p for p in outcome.patients if (p.practice_id, p.local_id) == key) for key in registrations)

    dialog = ask_to_open(qtbot, win, first)
    assert isinstance(dialog, ReasonDialog)
    tick(qtbot, dialog.choices[1])
    accept(qtbot, win, dialog)

    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)  # the results come back
    asked: list[object] = []
    win.access_dialog_opened.connect(asked.append)
    tree = select_row(win, second)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(tree, Qt.Key.Key_Return)
    assert blocker.args[0].state == "loaded" and asked == [], "no second question for the same patient"
    reads = journal(win, actions=[Action.READ], patient_nhs_number=number)
    assert [(r.practice_id, r.purpose) for r in reads] == [(first.practice_id, REASONS[1]),
                                                            (second.practice_id, REASONS[1])]


def test_a_restricted_patients_address_reads_withheld_in_the_window(qtbot, policy_window, network) -> None:
    win, server, person = restricted_window(policy_window, network)
    patient = find_result(qtbot, win, server, person)
    assert patient.postcode is None and patient.address is None, "withheld by the core"
    cell = win.search_panel.model.index_of((patient.practice_id, patient.local_id)).siblingAtColumn(POSTCODE_COLUMN)
    assert cell.data() == "Withheld" and "restricted" in cell.data(Qt.ItemDataRole.ToolTipRole)


def test_f6_reaches_the_practices_strip_and_space_unfolds_it(qtbot, window) -> None:
    win = window
    qtbot.waitUntil(win.practices_strip.isVisible, timeout=TIMEOUT_MS)
    win.search_panel.box.setFocus()
    for _ in range(4):
        if win.practices_strip.button.hasFocus():
            break
        qtbot.keyClick(win.focusWidget(), Qt.Key.Key_F6)
    assert win.practices_strip.button.hasFocus()
    qtbot.keyClick(win.practices_strip.button, Qt.Key.Key_Space)
    assert win.practices_dock.isVisible() and win.practices_fold.pinned


def test_the_keyboard_sorts_through_the_results_menu(qtbot) -> None:
    panel = shown_panel(qtbot, answers_for(EVERYONE))
    natural = top_rows(panel, 0, KEY_ROLE)
    panel.tree.setFocus()
    panel.tree.setCurrentIndex(panel.model.index(0, 0))
    menus: list = []

    def opened_menu() -> bool:
        menus[:] = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
        return bool(menus)

    # the Menu key (or Shift+F10) as the window system delivers it: a context-menu event from the keyboard
    where = panel.tree.visualRect(panel.tree.currentIndex()).center()
    QApplication.sendEvent(panel.tree.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Keyboard, where,
                                                                          panel.tree.viewport().mapToGlobal(where)))
    qtbot.waitUntil(opened_menu, timeout=TIMEOUT_MS)
    sort = next(a.menu() for a in menus[0].actions() if a.menu() is not None)
    assert [a.text() for a in sort.actions()][:len(COLUMNS)] == list(COLUMNS)
    next(a for a in sort.actions() if a.text() == "Age").trigger()
    menus[0].close()
    assert top_rows(panel, 0, KEY_ROLE)[0] == ("p1", "i"), "youngest first"
    panel.sort_by(AGE_COLUMN)
    assert panel.tree.header().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    panel.sort_by(-1)
    assert top_rows(panel, 0, KEY_ROLE) == natural
