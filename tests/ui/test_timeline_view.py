"""The All practices tab in the real window: a person registered at two demo practices opened at both from the
results' "Open at every practice", one journal entry per practice, the differences at the top, the timeline with
each row's practice, a reason asked once under a policy, a failing practice named (pytest-qt, offscreen)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QPushButton, QWidget

from app.core.audit.model import Action, Outcome
from app.core.model import SectionName
from app.core.nhs_number import format_nhs_number
from app.core.timeline import date_key
from app.ui.access_dialogs import BreakGlassDialog, ReasonDialog
from app.ui.main_window import MainWindow
from app.ui.timeline_view import ALL_PRACTICES_ID, AllPracticesView, TimelineModel
from tests.ui.test_access_dialogs import REASONS, journal, policy, policy_window  # noqa: F401 - a fixture
from tests.ui.test_window import search

pytestmark = pytest.mark.gui
TIMEOUT_MS = 15_000


def shared(network, pair: tuple[str, str] | None = None):
    """A person registered at two demo practices (by default the first such pair)."""
    return next(s for s in network.shared_patients if pair is None or {s.first[0], s.second[0]} == set(pair))


def names(network, *ids: str) -> list[str]:
    return [network.server(i).practice.name for i in ids]


def open_from_results(qtbot, win: MainWindow, number: str) -> AllPracticesView:
    """Search by NHS number, select the person's group and press Open at every practice; wait for the tab."""
    search(qtbot, win, format_nhs_number(number))
    panel = win.search_panel
    panel.tree.setFocus()
    panel.tree.setCurrentIndex(panel.model.index_of(("group", number)))
    assert panel.open_all_button.isVisible()
    qtbot.mouseClick(panel.open_all_button, Qt.MouseButton.LeftButton)
    return shown_view(qtbot, win, number)


def shown_view(qtbot, win: MainWindow, number: str) -> AllPracticesView:
    qtbot.waitUntil(lambda: isinstance(win.records.find_view((ALL_PRACTICES_ID, number)), AllPracticesView),
                    timeout=TIMEOUT_MS)
    view = win.records.find_view((ALL_PRACTICES_ID, number))
    assert isinstance(view, AllPracticesView)
    qtbot.waitUntil(lambda: view.state == "error" or (view.state == "loaded" and not view.building),
                    timeout=TIMEOUT_MS)
    if view.state == "loaded":  # a widget added to a shown one is shown in the next pass of the event loop
        qtbot.waitUntil(lambda: view.table is not None and view.table.isVisible(), timeout=TIMEOUT_MS)
    return view


def model_of(view: AllPracticesView) -> TimelineModel:
    assert view.table is not None
    model = view.table.model()
    assert isinstance(model, TimelineModel)
    return model


def cell(model: TimelineModel, row: int, column: int, role=Qt.ItemDataRole.DisplayRole):
    return model.data(model.index(row, column, QModelIndex()), role)


def test_every_practice_in_one_tab_with_differences_first_and_one_journal_entry_each(qtbot, window, network) -> None:
    person = shared(network)
    first, second = person.first[0], person.second[0]
    view = open_from_results(qtbot, window, person.nhs_number)
    assert view.state == "loaded", view.error
    assert window.records.current_view() is view
    pane = window.records.pane_of(view)
    assert pane is not None and pane.tabText(pane.indexOf(view)).endswith("· All practices")

    # the banner says it is several practices, and every practice's part is named
    assert view.patient_banner is not None
    registered = "Registered at: " + ", ".join(names(network, first, second))
    assert registered in view.patient_banner.text()
    assert view.patient_banner.nhs_text == format_nhs_number(person.nhs_number)
    assert view.patient_banner.copy_button is not None
    qtbot.mouseClick(view.patient_banner.copy_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == person.nhs_number
    text = view.text()
    for name in names(network, first, second):
        assert f"{name}: Opened" in text

    # the demo makes the two records disagree: an allergy, a repeat and a problem, each naming both practices
    differences = [label.accessibleName() for label in view.difference_labels]
    kinds = {d.split("  ")[0].lstrip("⚠ ") for d in differences}
    assert {"Allergy", "Medication", "Problem"} <= kinds
    assert all(all(n in d for n in names(network, first, second)) for d in differences)

    # the timeline: newest first, every row marked with its practice (colour and name)
    model = model_of(view)
    assert model.rowCount() > 10
    shown_ids = {i for r in model.shown for i in r.practice_ids}
    assert shown_ids == {first, second}
    assert [date_key(r.date) for r in view.prepared.timeline.items if r.date] == sorted(
        (date_key(r.date) for r in view.prepared.timeline.items if r.date), reverse=True)
    for row in range(model.rowCount()):
        assert cell(model, row, 1) and cell(model, row, 1, Qt.ItemDataRole.DecorationRole) is not None
    both = next(r for r, shown in enumerate(model.shown) if len(shown.practice_ids) == 2)
    assert cell(model, both, 1) == "Both practices"
    assert all(n in cell(model, both, 1, Qt.ItemDataRole.ToolTipRole) for n in names(network, first, second))

    reads = journal(window, actions=[Action.READ], patient_nhs_number=person.nhs_number)
    assert sorted(e.practice_id for e in reads) == sorted([first, second])  # one entry per practice
    assert all(e.outcome is Outcome.SUCCESS for e in reads)

    # a difference's "Show in timeline" shows that item's history at both practices, and only that
    medication = next(i for i, d in enumerate(view.prepared.timeline.differences) if d.kind == "medication")
    item = view.prepared.timeline.differences[medication].item
    label = next(label for label in view.difference_labels if item in label.accessibleName())
    label.linkActivated.emit(str(medication))
    assert view.only_bar.isVisibleTo(view) and item in view.only_label.text()
    assert model.rowCount() >= 2 and all(item.split(" ")[0] in r.words for r in model.shown)
    assert {i for r in model.shown for i in r.practice_ids} == {first, second}
    unnamed = [type(w).__name__ for w in view.findChildren(QWidget) if w.isVisible()
               and (isinstance(w, QAbstractButton) or w.focusPolicy() != Qt.FocusPolicy.NoFocus)
               and not w.accessibleName().strip()]
    assert unnamed == [], "every control of the tab has an accessible name"

    # Enter on a row opens that practice's record in a tab of its own (the window's normal path)
    only_second = next(r for r, shown in enumerate(model.shown) if shown.practice_ids == (second,))
    view.table.setCurrentIndex(model.index(only_second, 0))
    with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS) as blocker:
        view.table.activated.emit(model.index(only_second, 0))
    single = blocker.args[0]
    assert single is not view and single.key == (second, person.second[1]) and single.state == "loaded"
    window.records.focus_view(view)

    # opening it again brings the same tab forward; the filters narrow the timeline
    assert window.open_all_practices(person.nhs_number) is view
    assert view.kind_filter is not None and view.practice_filter is not None
    view.kind_filter.setCurrentIndex(view.kind_filter.findData(SectionName.MEDICATIONS.value))
    assert model.rowCount() > 0 and {r.section for r in model.shown} == {SectionName.MEDICATIONS}
    view.practice_filter.setCurrentIndex(view.practice_filter.findData(second))
    assert all(second in r.practice_ids for r in model.shown)


def test_at_1366_by_768_the_banner_differences_and_timeline_are_in_view(qtbot, window, network) -> None:
    window.resize(1366, 768)
    person = shared(network)
    view = open_from_results(qtbot, window, person.nhs_number)
    qtbot.waitUntil(lambda: view.table is not None and view.table.isVisible(), timeout=TIMEOUT_MS)
    assert view.patient_banner is not None and view.differences is not None and view.table is not None
    visible = view.rect()
    for part in (view.patient_banner, view.parts, view.differences):
        assert part is not None
        top_left = part.mapTo(view, QPoint(0, 0))
        assert visible.contains(top_left) and top_left.y() + part.height() <= visible.height(), part.accessibleName()
    table = view.table
    assert table.viewport().height() >= 5 * table.rowHeight(0), "at least five timeline rows without scrolling"
    assert table.mapTo(view, QPoint(0, table.height())).y() <= visible.height()


def test_a_practice_that_fails_is_named_and_the_other_still_shown(qtbot, window, network) -> None:
    person = shared(network)
    first, second = person.first[0], person.second[0]
    search(qtbot, window, format_nhs_number(person.nhs_number))
    with network.server(second).faults.override(mode="http-500", match="/Patient/"):
        window.open_all_practices(person.nhs_number)
        view = shown_view(qtbot, window, person.nhs_number)
    assert view.state == "loaded"
    [failed_name] = names(network, second)
    text = view.text()
    assert f"{failed_name}: Could not be opened" in text
    assert view.patient_banner is not None and view.patient_banner.incomplete_label.isVisibleTo(view)
    assert f"Not known from {failed_name}" in view.patient_banner.allergies_label.accessibleName()
    assert [label.accessibleName() for label in view.difference_labels] == [
        f"⚠ Not compared  {failed_name} could not be opened, so what it records is not known.",
        f"Nothing to compare: only the record from {names(network, first)[0]} could be read."]
    assert {i for r in model_of(view).shown for i in r.practice_ids} == {first}
    retry = next(b for b in view.parts.findChildren(QPushButton) if b.text() == "Retry")
    with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(retry, Qt.MouseButton.LeftButton)  # the practice is back: both open now
    assert view.state == "loaded" and {i for r in model_of(view).shown for i in r.practice_ids} == {first, second}


def test_a_reason_is_asked_once_for_every_practice(qtbot, policy_window, network) -> None:  # noqa: F811
    win = policy_window(policy(reason_required=True))
    person = shared(network, (network.practices[1].id, network.practices[2].id))
    search(qtbot, win, format_nhs_number(person.nhs_number))
    with qtbot.waitSignal(win.access_dialog_opened, timeout=TIMEOUT_MS) as blocker:
        assert win.open_all_practices(person.nhs_number) is None  # nothing opens before the reason
    dialog = blocker.args[0]
    assert isinstance(dialog, ReasonDialog) and [b.text() for b in dialog.choices] == REASONS
    [heading] = [label for label in dialog.findChildren(QLabel) if label.objectName() == "heading"]
    assert heading.text().endswith("at every practice they are registered at?")
    assert win.records.views() == []
    dialog.choices[1].setChecked(True)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    view = shown_view(qtbot, win, person.nhs_number)
    assert view.state == "loaded" and win.access_dialog is None
    reads = journal(win, actions=[Action.READ], patient_nhs_number=person.nhs_number)
    assert len(reads) == 2 and {e.purpose for e in reads} == {"Medicines reconciliation"}
    assert len({e.practice_id for e in reads}) == 2


def test_a_restricted_registration_is_named_and_opens_alone_by_break_glass(qtbot, policy_window,  # noqa: F811
                                                                          network) -> None:
    person = shared(network, (network.practices[0].id, network.practices[3].id))
    restricted = person.second[0]
    win = policy_window(policy(restricted={restricted: [person.nhs_number]}))
    search(qtbot, win, format_nhs_number(person.nhs_number))
    win.open_all_practices(person.nhs_number)  # no reason needed for this role: no dialog
    view = shown_view(qtbot, win, person.nhs_number)
    assert win.access_dialog is None
    [name] = names(network, restricted)
    assert f"{name}: Refused under the access policy: This patient's record is restricted" in view.text()
    assert {i for r in model_of(view).shown for i in r.practice_ids} == {person.first[0]}
    [denied] = journal(win, actions=[Action.READ], practice_id=restricted, patient_nhs_number=person.nhs_number)
    assert denied.outcome is Outcome.DENIED  # the attempt is journaled; nothing was asked of the practice
    button = next(b for b in view.parts.findChildren(QPushButton) if b.text() == "Open by break-glass…")
    with qtbot.waitSignal(win.access_dialog_opened, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = blocker.args[0]
    assert isinstance(dialog, BreakGlassDialog)
    dialog.reject()
