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


def test_parts_staged_in_batches_stay_invisible_until_applied_and_go_with_a_dropped_read(
        store: InsightStore, monkeypatch) -> None:
    monkeypatch.setattr("app.insight.store.STAGE_BATCH_ROWS", 4)  # parts reach the staging tables mid-read
    store.apply(activity("p1", appts=appointments(12, start=utc(2026, 3, 2, 9), status="fulfilled")))
    book = appointments(11, start=utc(2026, 3, 3, 9), status="booked")
    for i in range(0, len(book), 3):  # 3 + 3 staged together, 3 + 2 left pending
        store.stage_part("p1", ActivityPart(appointments=tuple(book[i:i + 3])))
    assert counted(store) == {"p1": 12.0}
    store.discard_staged("p1")  # the read failed: neither the staged nor the pending rows are applied later
    store.apply_staged(activity("p1", appts=[], since=utc(2026, 3, 1)))
    assert counted(store) == {"p1": 12.0}
    for i in range(0, len(book), 3):
        store.stage_part("p1", ActivityPart(appointments=tuple(book[i:i + 3])))
    store.apply_staged(activity("p1"))  # full: the staged and the pending rows, and nothing else
    assert counted(store) == {"p1": 11.0}


def test_duckdb_keeps_each_instant_as_its_own_cast_would(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from app.insight.store_engine import DuckDbEngine

    engine = DuckDbEngine(str(tmp_path / "t.duckdb"))
    engine.execute("CREATE TABLE t (n BIGINT, moment TIMESTAMPTZ)")
    columns = (("n", "BIGINT"), ("moment", "TIMESTAMPTZ"))
    times = [datetime(2026, 3, 29, 0, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1))),  # not UTC
             datetime(1900, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))),  # before the epoch
             datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None]
    engine.append("t", columns, [(i, t) for i, t in enumerate(times)])
    engine.append("t", columns, [(9, "2026-03-01 10:00:00+00")])  # not a datetime: DuckDB's own cast
    kept = dict(engine.query("SELECT n, moment FROM t"))
    assert [kept[i] for i in range(len(times))] == times  # the same instants (aware times compare as instants)
    assert kept[9] == datetime(2026, 3, 1, 10, tzinfo=UTC)
    engine.close()
