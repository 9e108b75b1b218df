"""Access history for a practice manager, in the real window under a real access policy (pytest-qt, offscreen):
Mark reviewed (journaled, shown), the role the status bar says, one row per federated search, and the rows read
a page at a time (none dropped or doubled, the sort kept)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core.audit.model import Action, AuditUser, is_flagged
from app.core.nhs_number import format_nhs_number
from app.ui import access_history
from app.ui.access_history import ACTION, FLAG, PATIENT, PRACTICE, ROLE, SECTIONS, USER, AccessHistoryWindow
from app.ui.history_rows import sort_rows
from tests.core.test_research_view import a_plain_patient, criteria_for, expected_pseudonym, fhir_server, leaks
from tests.ui.test_access_dialogs import (  # noqa: F401 - policy_window is a fixture
    BREAK_GLASS_REASON,
    TIMEOUT_MS,
    accept,
    activate,
    ask_to_open,
    find_result,
    journal,
    lone_patient,
    policy,
    policy_window,
    press_enter_on,
    restricted_window,
    tick,
)
from tests.ui.test_access_history import open_history, show
from tests.ui.test_research import model_texts, research_window  # noqa: F401 - research_window is a fixture
from tests.ui.test_window import open_from_results, search

NOTE = "Confirmed with the clinician: collapsed at the hub; no further action"


def select(history: AccessHistoryWindow, row: int) -> None:
    history.table.setFocus()
    history.table.selectRow(row)


def test_mark_reviewed_journals_the_reviewer_and_note_and_the_row_shows_it(qtbot, policy_window,  # noqa: F811
                                                                           network) -> None:
    win, server, person = restricted_window(policy_window, network)
    dialog = ask_to_open(qtbot, win, find_result(qtbot, win, server, person))
    qtbot.keyClicks(dialog.reason_edit, BREAK_GLASS_REASON)
    tick(qtbot, dialog.confirm)
    accept(qtbot, win, dialog)
    activate(qtbot, win)
    history = open_history(qtbot, win)
    tick(qtbot, history.flagged_check)
    [row] = show(qtbot, history)
    assert history.model.index(0, FLAG).data() == "Break-glass · not reviewed"
    assert not history.review_button.isEnabled(), "nothing selected"
    select(history, 0)
    assert not history.review_button.isEnabled(), "one's own access is reviewed by someone else (four eyes)"
    assert "your own access" in history.review_button.toolTip()
    assert history.review_selected() is None
    officer = AuditUser(login="pjones", display_name="Pat Jones")
    win.core.set_user(officer)  # the privacy officer signs in at this computer
    select(history, 0)
    history._update_review_button()
    assert history.review_button.isEnabled()

    qtbot.mouseClick(history.review_button, Qt.MouseButton.LeftButton)
    review = history.review_dialog
    assert review is not None and review.isVisible()
    assert not review.ok_button.isEnabled(), "no note, no review"
    qtbot.keyClicks(review.note_edit, NOTE)
    # journaled, then the entries shown again
    with qtbot.waitSignal(history.loaded, timeout=TIMEOUT_MS), \
            qtbot.waitSignal(history.reviewed, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(review.ok_button, Qt.MouseButton.LeftButton)
    [journaled] = blocker.args[0]
    assert journaled.action is Action.REVIEW and journaled.details["reviewed"] == row.entry.entry_id
    assert journaled.details["note"] == NOTE and journaled.user.login == "pjones"  # the signed-in user
    assert journaled.patient_nhs_number == person.nhs_number and journaled.practice_id == server.practice.id
    assert [e.entry_id for e in journal(win, actions=["review"])] == [journaled.entry_id]
    assert not is_flagged(journaled)

    text = history.model.index(0, FLAG).data()
    assert text.startswith("Break-glass · Reviewed by ") and text.endswith(f": {NOTE}")
    assert NOTE in history.model.index(0, FLAG).data(Qt.ItemDataRole.ToolTipRole)
    select(history, 0)
    assert not history.review_button.isEnabled(), "reviewed: nothing left to review"

    tick(qtbot, history.flagged_check)  # every entry: the review is on its row, not a row of its own
    rows = show(qtbot, history)
    assert not [r for r in rows if r.kind == "review"]
    history.action_combo.setCurrentIndex(history.action_combo.findData("review"))
    [alone] = show(qtbot, history)  # Reviews: listed alone
    assert alone.kind == "review" and history.model.index(0, ACTION).data() == "Reviewed"


def test_the_role_column_says_the_role_the_status_bar_says(qtbot, policy_window, network) -> None:  # noqa: F811
    win = policy_window(policy())
    qtbot.waitUntil(lambda: win.role_label.text() == "Role: clinician", timeout=TIMEOUT_MS)
    server, person = lone_patient(network, 0)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS):
        press_enter_on(qtbot, win, find_result(qtbot, win, server, person))
    activate(qtbot, win)
    history = open_history(qtbot, win)
    roles = {history.model.index(r, ROLE).data() for r in range(history.model.rowCount())}
    assert roles == {"clinician"}, "the policy's role, not the professional role from sign-in"
    assert all(e.details.get("policy_role") == "clinician" for e in journal(win))


def test_one_row_per_federated_search_with_each_practice_in_its_tooltip(qtbot, window, network) -> None:
    shared = next(p for p in network.shared_patients if p.nhs_number)
    outcome = search(qtbot, window, format_nhs_number(shared.nhs_number))
    found_at = {p.practice_id for p in outcome.patients}
    assert len(found_at) >= 2
    history = open_history(qtbot, window)
    [row] = [r for r in history.model.rows if r.kind == "search"]
    asked = len(network.practices)
    assert history.model.index(0, SECTIONS).data() == (
        f"Search by NHS number · {len(outcome.patients)} found at {len(found_at)} of {asked} practices")
    assert history.model.index(0, PRACTICE).data() == f"{asked} practices"
    tip = history.model.index(0, SECTIONS).data(Qt.ItemDataRole.ToolTipRole).splitlines()
    assert sorted(tip) == sorted(f"{p.name}: {1 if p.id in found_at else 0} found" for p in network.practices)
    assert len(row.all_entries()) == 2 * asked, "every practice's intent and outcome, in one row"


def test_rows_read_a_page_at_a_time_are_all_there_once_and_stay_sorted(qtbot, window, network,
                                                                       monkeypatch) -> None:
    for server in network.servers[:3]:
        person = [p for p in server.population if p.nhs_number][0]
        search(qtbot, window, format_nhs_number(person.nhs_number))
        search(qtbot, window, person.family)
    everything = open_history(qtbot, window).model.rows  # one page: FIRST_PAGE is larger than the journal
    expected = sorted(sorted(e.entry_id for e in r.all_entries()) for r in everything)
    assert len(everything) == 6
    window.access_history.close()

    monkeypatch.setattr(access_history, "FIRST_PAGE", 3)  # pages cut through every search
    monkeypatch.setattr(access_history, "PAGE", 4)
    monkeypatch.setattr(access_history, "FORMAT_CHUNK", 2)  # the rows not shown are made into text 2 a turn
    activate(qtbot, window)
    history = open_history(qtbot, window)
    assert all(r.cells for r in history.model.rows), "every row made into text by the time it is loaded"
    for column in (ACTION, SECTIONS, USER):
        history.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
        rows = show(qtbot, history)
        assert sorted(sorted(e.entry_id for e in r.all_entries()) for r in rows) == expected
        in_order = list(rows)
        sort_rows(in_order, column, False)
        assert [r.cells for r in rows] == [r.cells for r in in_order], f"sorted by column {column}"
        assert history.model.rows == rows
    monkeypatch.setattr(access_history, "LIMIT", 10)
    rows = show(qtbot, history)
    assert sum(len(r.all_entries()) for r in rows) <= 10
    assert "the newest 10 matching journal entries" in history.count_line.text()


def test_the_research_view_history_names_the_pseudonym_and_nothing_identifying(qtbot, research_window,  # noqa: F811
                                                                               network) -> None:
    win = research_window
    server = fhir_server(network)
    p = a_plain_patient(server)
    outcome = search(qtbot, win, criteria_for(server, p))
    summary = next(s for s in outcome.patients if s.pseudonym == expected_pseudonym(p))
    open_from_results(qtbot, win, summary)
    activate(qtbot, win)
    history = open_history(qtbot, win)
    [read] = [r for r in range(history.model.rowCount()) if history.model.rows[r].kind == "access"]
    assert history.model.index(read, PATIENT).data() == f"Research participant {summary.pseudonym}"
    [searched] = [r for r in history.model.rows if r.kind == "search"]
    assert searched.cells[SECTIONS].startswith("Search for condition ")
    texts = "\n".join(model_texts(history.model))
    assert leaks(texts, p) == [] and p.family.upper() not in texts
