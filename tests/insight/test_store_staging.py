"""The store's staged path for a streamed read (InsightStore.stage_part / apply_staged / discard_staged): parts are
invisible until the read that made them is applied, a read dropped part-way leaves the practice's earlier figures
as they were, and parts applied add up to what one whole apply gives. Both engines."""

from __future__ import annotations

from app.core.activity import ActivityPart
from app.insight.refresh import clean_part
from app.insight.store import InsightStore
from tests.insight._activity import activity, appointments, utc

PERIOD = "2026-03"


def counted(store: InsightStore) -> dict[str | None, float | None]:
    return {f.practice_id: f.value for f in store.figures("appointments", "practice", PERIOD) if f.status == "ok"}


def test_parts_count_only_once_the_read_is_applied_and_a_dropped_read_changes_nothing(store: InsightStore) -> None:
    first = appointments(12, start=utc(2026, 3, 2, 9), status="fulfilled")
    store.apply(activity("p1", appts=first))
    assert counted(store) == {"p1": 12.0}
    more = appointments(30, start=utc(2026, 3, 3, 9), status="booked")
    store.stage_part("p1", ActivityPart(appointments=tuple(more[:20])))
    store.stage_part("p1", ActivityPart(appointments=tuple(more[20:])))
    assert counted(store) == {"p1": 12.0}  # staged: not a figure yet
    store.discard_staged("p1")  # the read failed part-way
    store.apply_staged(activity("p1", appts=[], since=utc(2026, 3, 1)))  # nothing staged: nothing changes
    assert counted(store) == {"p1": 12.0}


def test_a_full_read_in_parts_gives_what_one_whole_apply_gives(store: InsightStore) -> None:
    store.apply(activity("p1", appts=appointments(7, start=utc(2026, 3, 2, 9), status="fulfilled")))
    book = appointments(25, start=utc(2026, 3, 4, 9), status="noshow")
    for i in range(0, len(book), 10):
        store.stage_part("p1", clean_part(ActivityPart(appointments=tuple(book[i:i + 10]))))
    store.stage_part("p1", ActivityPart(appointments=tuple(book[:3])))  # a page read twice: counted once
    store.apply_staged(activity("p1"))  # full (since None): the 7 the read no longer holds are removed
    assert counted(store) == {"p1": 25.0}


def test_a_part_holding_a_control_character_is_cleaned() -> None:
    [appointment] = appointments(1, start=utc(2026, 3, 2, 9), status="booked", local_type="Routine\u202e")
    cleaned = clean_part(ActivityPart(appointments=(appointment,)))
    assert cleaned.appointments[0].local_type != appointment.local_type
    assert "\u202e" not in (cleaned.appointments[0].local_type or "")
    clean = ActivityPart(appointments=tuple(appointments(3, start=utc(2026, 3, 2, 9), status="booked")))
    assert clean_part(clean) is clean  # nothing to clean: the same part, not a copy
