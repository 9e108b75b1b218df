"""The real main window against the demo practices over loopback (pytest-qt, offscreen)."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget

from app.core.display import display_name, format_date
from app.core.model import PatientSummary, SectionName
from app.core.nhs_number import format_nhs_number
from app.ui.main_window import MainWindow
from app.ui.record_rows import NO_ALLERGIES
from app.ui.record_view import BODY_ORDER, NONE_RECORDED, RecordView
from app.ui.results_model import KEY_ROLE, NUMBER_COLUMN

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


def search(qtbot, win: MainWindow, text: str):
    """Type the query and press Enter, as a person would; returns the SearchOutcome."""
    box = win.search_panel.box
    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is box
    box.clear()
    qtbot.keyClicks(box, text)
    with qtbot.waitSignal(win.search_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(box, Qt.Key.Key_Return)
    return blocker.args[0]


def select_row(win: MainWindow, patient: PatientSummary):
    """Focus the results and make the patient's row current; the results tree."""
    index = win.search_panel.model.index_of((patient.practice_id, patient.local_id))
    assert index.isValid(), "the patient should be listed in the results"
    tree = win.search_panel.tree
    tree.setFocus()
    tree.setCurrentIndex(index)
    return tree


def open_from_results(qtbot, win: MainWindow, patient: PatientSummary) -> RecordView:
    """Select the patient's row in the results and press Enter; wait for the record to arrive."""
    tree = select_row(win, patient)
    with qtbot.waitSignal(win.record_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(tree, Qt.Key.Key_Return)
    return blocker.args[0]


def shared_patient(network) -> tuple[str, list[tuple[str, str]], str]:
    """An NHS number registered at two practices, its (practice, local id) pairs, and the family name."""
    shared = network.shared_patients[0]
    pid, lid = shared.first
    family = next(p.family for p in network.server(pid).population if p.local_id == lid)
    return shared.nhs_number, [shared.first, shared.second], family


def result_keys(win: MainWindow) -> list[tuple[str, str]]:
    model = win.search_panel.model
    keys = []

    def walk(parent: QModelIndex) -> None:
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            patient = model.patient_at(index)
            if patient is not None:
                keys.append((patient.practice_id, patient.local_id))
            walk(index)

    walk(QModelIndex())
    return keys


def test_signs_in_to_every_practice_and_shows_them_online(window: MainWindow, network) -> None:
    rows = window.practices_panel.rows
    assert list(rows) == [p.id for p in network.practices]
    for practice in network.practices:
        row = rows[practice.id]
        assert row.state_label.text().endswith(" ms"), row.state_label.text()
        assert "Online · " in row.state_label.text()
        assert not row.retry_button.isEnabled()
    assert window.online_label.text() == "5 of 5 practices online"
    assert window.practices_panel.summary.text() == "5 of 5 practices online"


def test_search_by_nhs_number_groups_a_patient_registered_at_two_practices(qtbot, window, network) -> None:
    number, registrations, family = shared_patient(network)
    outcome = search(qtbot, window, format_nhs_number(number))
    assert sorted((p.practice_id, p.local_id) for p in outcome.patients) == sorted(registrations)
    model = window.search_panel.model
    assert model.rowCount() == 1, "one person, however many practices hold them"
    group = model.index(0, 0)
    assert group.data() == "Registered at 2 practices"
    assert model.rowCount(group) == 2
    assert model.index(0, NUMBER_COLUMN).data() == format_nhs_number(number)
    children = {model.index(r, 0, group).data(KEY_ROLE) for r in range(2)}
    assert children == set(registrations)
    assert window.search_panel.tree.isExpanded(group)
    assert window.search_panel.count_line.text() == "1 patient from 5 of 5 practices"
    assert not window.search_panel.problems.isVisible()


def test_search_by_family_name_lists_results_from_several_practices(qtbot, window, network) -> None:
    _, registrations, family = shared_patient(network)
    outcome = search(qtbot, window, family.lower())
    practices = {p.practice_id for p in outcome.patients}
    assert len(practices) >= 2
    assert set(registrations) <= set(result_keys(window))
    assert all(p.family.lower().startswith(family.lower()) for p in outcome.patients)
    model = window.search_panel.model
    row = next(r for r in range(model.rowCount()) if model.patient_at(model.index(r, 0)) is not None)
    patient = model.patient_at(model.index(row, 0))
    assert model.index(row, 1).data() == display_name(patient)
    assert model.index(row, 2).data() == format_date(patient.birth_date)
    assert model.index(row, NUMBER_COLUMN).data() == format_nhs_number(patient.nhs_number)
    people = model.rowCount()
    assert window.search_panel.count_line.text() == f"{people} patients from 5 of 5 practices"


def test_two_records_side_by_side_reopen_focuses_and_ctrl_w_closes(qtbot, window, network) -> None:
    number, registrations, family = shared_patient(network)
    search(qtbot, window, number)
    patients = {(p.practice_id, p.local_id): p for p in window.search_panel.model.patients}
    first = open_from_results(qtbot, window, patients[registrations[0]])
    second = open_from_results(qtbot, window, patients[registrations[1]])
    records = window.records
    assert records.views() == [first, second]
    assert len(records.panes) == 1

    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backslash, Qt.KeyboardModifier.ControlModifier)
    assert len(records.panes) == 2
    assert records.pane_of(first) is records.panes[0] and records.pane_of(second) is records.panes[1]
    assert first.isVisible() and second.isVisible(), "both records are on screen at once"
    assert first.mapTo(window, first.rect().topLeft()).x() < second.mapTo(window, second.rect().topLeft()).x()

    for view, (practice_id, _) in zip((first, second), registrations, strict=True):
        practice = next(p for p in network.practices if p.id == practice_id)
        qtbot.waitUntil(lambda v=view: v.banner is not None, timeout=TIMEOUT_MS)  # moved: laid out from the next pass
        banner = view.banner
        assert banner is not None
        qtbot.waitUntil(banner.isVisible, timeout=1000)  # Qt shows new children on the next event loop pass
        assert banner.name_text == display_name(view.patient)
        assert banner.born_text.startswith(format_date(view.patient.birth_date) + " (")
        assert banner.nhs_label.accessibleName() == f"NHS No. {format_nhs_number(number)}"
        assert banner.practice_label.full_text() == practice.name  # cut from the right when narrow
        assert banner.retrieved_text.startswith("Retrieved ")
        pane = records.pane_of(view)
        born = format_date(view.patient.birth_date)
        assert pane.tabText(pane.indexOf(view)) == f"{display_name(view.patient)} · {born} · {practice.name}"
        assert not pane.tabIcon(pane.indexOf(view)).isNull()
        qtbot.waitUntil(lambda v=view: not v.building, timeout=TIMEOUT_MS)  # a moved record is laid out again
        assert list(view.sections) == list(BODY_ORDER)

    # Opening the first registration again brings its tab forward rather than opening another.
    index = window.search_panel.model.index_of(registrations[0])
    window.search_panel.tree.setCurrentIndex(index)
    qtbot.keyClick(window.search_panel.tree, Qt.Key.Key_Return)
    assert records.views() == [first, second]
    assert records.current_view() is first

    # Ctrl+W closes the current tab; the emptied pane goes away.
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert records.views() == [second]
    assert len(records.panes) == 1
    qtbot.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert records.views() == []
    assert records.currentWidget() is records.hint


def test_invalid_nhs_number_is_flagged_while_typing(qtbot, window) -> None:
    panel = window.search_panel
    qtbot.keyClicks(panel.box, "943 476 591")
    assert not panel.field_error.isVisible(), "not while the tenth digit may still be on its way"
    qtbot.waitUntil(panel.field_error.isVisible, timeout=2000)  # but once the typing pauses
    assert "10 digits" in panel.field_error.text()
    qtbot.keyClicks(panel.box, "8")
    assert panel.field_error.isVisible()
    assert "check digit" in panel.field_error.text()
    assert panel.box.property("invalid") is True
    assert "check digit" in panel.box.accessibleDescription()
    qtbot.keyClick(panel.box, Qt.Key.Key_Backspace)
    qtbot.keyClicks(panel.box, "9")
    assert not panel.field_error.isVisible()
    assert panel.box.property("invalid") is False


def test_query_errors_are_shown_inline_without_searching(qtbot, window, monkeypatch) -> None:
    panel = window.search_panel
    searches: list[object] = []
    search = window.core.search
    monkeypatch.setattr(window.core, "search", lambda *a, **kw: searches.append(a) or search(*a, **kw))
    with qtbot.assertNotEmitted(window.search_finished):
        qtbot.keyClicks(panel.box, "smith 31/02/1990x")
        qtbot.keyClick(panel.box, Qt.Key.Key_Return)
    assert searches == [], "no search was started"
    assert panel.field_error.isVisible() and panel.field_error.text()
    panel.box.clear()
    qtbot.keyClicks(panel.box, "smith")  # while a search that is started is seen
    with qtbot.waitSignal(window.search_finished, timeout=TIMEOUT_MS):
        qtbot.keyClick(panel.box, Qt.Key.Key_Return)
    assert len(searches) == 1 and not panel.field_error.isVisible()


def test_newer_search_replaces_the_older_one(qtbot, window, network) -> None:
    number, registrations, family = shared_patient(network)
    window.run_search("a")  # a broad search, superseded at once
    with qtbot.waitSignal(window.search_finished, timeout=TIMEOUT_MS) as blocker:
        window.run_search(number)
    assert sorted(p.local_id for p in blocker.args[0].patients) == sorted(lid for _, lid in registrations)
    # Anything still queued from the first search must not reappear. Answers reach the window in one queue,
    # in order, from the core's loop: once a task started after this point has answered, they have all come.
    settled: list[bool] = []
    window.bridge.submit(asyncio.sleep(0), lambda _: settled.append(True))
    qtbot.waitUntil(lambda: bool(settled), timeout=TIMEOUT_MS)
    assert sorted(result_keys(window)) == sorted(registrations)


def test_every_interactive_widget_has_an_accessible_name(qtbot, window, network) -> None:
    number, registrations, _ = shared_patient(network)
    search(qtbot, window, number)
    for key in registrations:
        index = window.search_panel.model.index_of(key)
        window.search_panel.tree.setCurrentIndex(index)
        with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS):
            window.search_panel.tree.activated.emit(index)
    window.split_view()
    unnamed = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible():
            continue
        interactive = isinstance(widget, QAbstractButton) or widget.focusPolicy() != Qt.FocusPolicy.NoFocus
        if interactive and not widget.accessibleName().strip():
            unnamed.append(f"{type(widget).__name__} in {type(widget.parentWidget()).__name__}")
    assert unnamed == []
    # Every menu command has a keyboard path: a shortcut, or a menu mnemonic (Alt+letter).
    for menu_action in window.menuBar().actions():
        assert "&" in menu_action.text()
        for action in menu_action.menu().actions():
            assert "&" in action.text() or not action.shortcut().isEmpty(), action.text()


def test_record_sections_render_loaded_empty_and_failed_distinctly(qtbot, window, network) -> None:
    # A practice that fetches sections one by one (no $everything), so one section can fail alone.
    server = next(s for s in network.servers if not s.spec.supports_everything)
    patient = next(iter(server.population))
    search(qtbot, window, patient.nhs_number)
    summary = next(p for p in window.search_panel.model.patients if p.practice_id == server.spec.id)
    with server.faults.override(mode="http-500", match="Medication"):
        view = open_from_results(qtbot, window, summary)
    assert view.state == "loaded"
    block = view.sections[SectionName.MEDICATIONS]
    assert block.section.status == "failed"
    assert block.message.startswith(f"Could not load medications from {server.practice.name}: ")
    assert block.message.endswith("This does not mean none are recorded.")
    texts = [label.text() for label in block.findChildren(QWidget) if hasattr(label, "text")]
    assert not any(NONE_RECORDED in t for t in texts)
    assert block.table is None
    for name, other in view.sections.items():
        if name is SectionName.MEDICATIONS:
            continue
        assert other.section.status == "loaded"
        if other.section.entries:
            assert other.table is not None and other.message == ""
            shown = sum(g.group.count for g in other.groups)
            assert shown == len(other.section.entries) or name is SectionName.OBSERVATIONS  # results: by report
        else:
            assert other.message in (NONE_RECORDED, NO_ALLERGIES)


def test_a_record_that_cannot_be_opened_shows_the_error_and_retry(qtbot, window, network) -> None:
    server = network.servers[0]
    patient = next(iter(server.population))
    search(qtbot, window, patient.nhs_number)
    summary = next(p for p in window.search_panel.model.patients if p.practice_id == server.spec.id)
    with server.faults.override(mode="http-500"):
        view = open_from_results(qtbot, window, summary)
    assert view.state == "error"
    assert view.banner is None and view.record is None and view.sections == {}
    assert server.practice.name in view.error_label.text() or "500" in view.error_label.text()
    qtbot.waitUntil(view.retry_button.isVisible, timeout=1000)
    with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(view.retry_button, Qt.MouseButton.LeftButton)
    assert view.state == "loaded" and view.banner is not None
