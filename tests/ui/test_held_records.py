"""A record nobody can see is not laid out: one that arrives behind another tab is held until its tab is
brought forward, and one moved to another pane is laid out again there from the record it holds (issue 9:
re-styling and laying out whole records out of sight held the GUI thread for 100 ms and more)."""

from __future__ import annotations

from app.core.audit.model import Action
from app.core.display import display_name
from app.core.model import Entry, Section, SectionName
from app.ui.record_view import BODY_ORDER, RecordView, watch_building
from tests.ui.test_access_dialogs import journal
from tests.ui.test_responsiveness import PRACTICES, full_record
from tests.ui.test_window import TIMEOUT_MS, search, shared_patient


def laid_out(qtbot, view: RecordView) -> None:
    qtbot.waitUntil(lambda: view.state == "loaded" and not view.building and not view.held, timeout=TIMEOUT_MS)
    assert list(view.sections) == list(BODY_ORDER)
    assert view.banner is not None and view.banner.name_text == display_name(view.patient)


def two_registrations(qtbot, window, network):
    number, registrations, _ = shared_patient(network)
    search(qtbot, window, number)
    patients = {(p.practice_id, p.local_id): p for p in window.search_panel.model.patients}
    return number, [patients[key] for key in registrations]


def test_a_record_arriving_behind_another_tab_is_laid_out_when_brought_forward(qtbot, window, network) -> None:
    number, (first, second) = two_registrations(qtbot, window, network)
    with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS) as opened:
        window.open_patient(first)
    front = opened.args[0]
    laid_out(qtbot, front)

    # The second tab opens in front; bringing the first back in the same pass puts it behind before its
    # request has even gone out (requests leave in the next pass), so its record arrives out of sight.
    with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS) as arrived:
        behind = window.open_patient(second)
        window.records.focus_view(front)
    assert arrived.args[0] is behind and behind is not None
    assert behind.held and behind.record is not None and behind.record.patient.nhs_number == number
    assert behind.banner is None and behind.sections == {}, "nothing laid out while nobody can see it"
    assert window.records.current_view() is front and not front.held

    window.records.focus_view(behind)
    laid_out(qtbot, behind)
    assert behind.isVisible() and not front.isVisible()


def test_a_moved_record_is_laid_out_again_without_asking_the_practice_or_journaling(qtbot, window, network,
                                                                                   demo_requests) -> None:
    number, (first, second) = two_registrations(qtbot, window, network)
    views = []
    for patient in (first, second):
        with qtbot.waitSignal(window.record_finished, timeout=TIMEOUT_MS) as opened:
            window.open_patient(patient)
        views.append(opened.args[0])
    moving = views[1]
    laid_out(qtbot, moving)
    old_banner = moving.banner
    reads = len(journal(window, actions=[Action.READ], patient_nhs_number=number))
    asked = demo_requests(*(network.server(p.practice_id) for p in (first, second)))

    window.split_view()
    assert len(window.records.panes) == 2 and window.records.pane_of(moving) is window.records.panes[1]
    laid_out(qtbot, moving)
    assert moving.banner is not old_banner, "laid out again where it landed"
    assert moving.isVisible() and views[0].isVisible()
    assert asked.about(first.local_id, second.local_id, number) == [], "the practice was not asked again"
    assert len(journal(window, actions=[Action.READ], patient_nhs_number=number)) == reads


def test_a_section_read_again_while_its_record_is_held_is_shown_once_laid_out(qtbot, host) -> None:
    """A retried section whose answer arrives while its record moves pane is kept, not dropped."""
    view = RecordView(full_record().patient, PRACTICES[0], host)
    view.show()
    view.show_record(full_record())
    qtbot.waitUntil(lambda: not view.building, timeout=TIMEOUT_MS)
    view.unload()  # on its way to another pane
    assert view.held and view.sections == {}
    again = Section(SectionName.ALLERGIES, "loaded", (Entry("Penicillin — rash", "2020-01-02"),))
    view.replace_section(again)
    view.lay_out_if_held()  # from the next pass of the event loop
    qtbot.waitUntil(lambda: not view.held and not view.building, timeout=TIMEOUT_MS)
    assert view.record is not None and view.record.sections[SectionName.ALLERGIES] is again
    assert view.sections[SectionName.ALLERGIES].section is again


def test_a_held_record_brought_forward_is_laid_out_from_the_next_pass_and_not_if_hidden_again(qtbot, host) -> None:
    """The pass that brings a tab forward (a split, a move, a click) lays out and paints the panes; the record
    follows in the next pass, banner first. Hidden again before then, it stays held (nobody can see it)."""
    view = RecordView(full_record().patient, PRACTICES[0], host)
    view.show()
    view.show_record(full_record())
    qtbot.waitUntil(lambda: not view.building, timeout=TIMEOUT_MS)
    view.unload()
    told: list[bool] = []
    stop_watching = watch_building(told.append)  # told False once every queued build step has run
    view.lay_out_if_held()
    assert view.held and view.banner is None, "not in the pass that brought it forward"
    view.hide()  # behind another tab again before the next pass
    qtbot.waitUntil(lambda: told[-1:] == [False], timeout=TIMEOUT_MS)
    stop_watching()
    assert view.held and view.banner is None, "hidden again: still held"
    view.show()
    view.lay_out_if_held()
    qtbot.waitUntil(lambda: not view.held and not view.building, timeout=TIMEOUT_MS)
    assert view.banner is not None and list(view.sections) == list(BODY_ORDER)
