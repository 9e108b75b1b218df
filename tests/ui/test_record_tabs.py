"""Record tabs opened together: every tab is there at once, and the last one opened ends in front."""

from __future__ import annotations

from datetime import date

import pytest

from app.core.model import PatientSummary, Practice
from app.ui.record_tabs import RecordArea
from app.ui.record_view import RecordView

pytestmark = pytest.mark.gui

PRACTICE = Practice("p0", "Practice 0", "A00000", "fhir-r4", "http://127.0.0.1:1/p0", colour="#005eb8")


def view(number: int) -> RecordView:
    patient = PatientSummary("p0", f"L{number}", None, f"FAMILY{number}", ("Ann",), date(1970, 1, 2), "female",
                             "LS1 1AA")
    return RecordView(patient, PRACTICE)


def test_records_opened_in_one_pass_all_get_tabs_and_the_last_ends_in_front(qtbot) -> None:
    area = RecordArea()
    qtbot.addWidget(area)
    area.show()
    views = [view(n) for n in range(4)]
    for v in views:  # one pass of the event loop, as when ten records are opened at once
        area.add(v)
    assert area.views() == views
    assert area.current_view() is views[-1], "what is current is the last opened, straight away"
    qtbot.waitUntil(lambda: area.current_pane.currentWidget() is views[-1], timeout=2000)
    assert views[-1].isVisible() and not any(v.isVisible() for v in views[:-1])
    assert area.current_view() is views[-1]

    single = view(9)  # a record opened on its own is in front at once
    area.add(single)
    assert area.current_pane.currentWidget() is single and area.current_view() is single

    other = views[0]  # bringing another forward meanwhile wins over the one on its way
    area.add(view(10))
    area.add(last := view(11))
    assert area.current_view() is last
    area.focus_view(other)
    assert area.current_view() is other
    qtbot.waitUntil(lambda: not area._forward_pass, timeout=2000)
    assert area.current_pane.currentWidget() is other


def test_closing_the_current_record_while_the_last_opened_is_on_its_way_closes_that_one(qtbot) -> None:
    area = RecordArea()
    qtbot.addWidget(area)
    area.show()
    first, second = view(1), view(2)
    area.add(first)
    area.add(second)
    assert area.close_current()
    assert area.views() == [first]
    qtbot.waitUntil(lambda: not area._forward_pass, timeout=2000)
    assert area.current_view() is first and area.current_pane.currentWidget() is first
