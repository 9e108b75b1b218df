"""Protected tables kept in the store (app/insight/kept_protections.py): worked out once, read by any later
process instead of worked out again, and never used once the data they were worked out over has changed (a
changed unit, a practice that failed): every figure then is what a store holding only the new data gives."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.core.activity import Activity, ActivityAppointment
from app.insight.measures import MEASURES
from app.insight.store import InsightStore
from tests.insight._activity import activity, appointments, slots, utc

PERIOD = "2026-01..2026-03"
MARCH = utc(2026, 3, 10, 9)
MODES = ("face-to-face", "telephone", "video", None)
TYPES = ("gp", "nurse", "pharmacist", None)
CATEGORIES = ("General Consultation Routine", "Planned Clinics", "Home Visit", None)
STATUSES = ("fulfilled", "fulfilled", "fulfilled", "noshow", "booked", "cancelled")


def book(rng: random.Random, practice_id: str, n: int) -> Activity:
    """n appointments and 2n slots at random times of 2026-01..2026-03, with every mode, type and category."""
    appts = []
    for i in range(n):
        when = utc(2026, 1, 1, 8) + timedelta(minutes=rng.randrange(89 * 24 * 60))
        appts.append(ActivityAppointment(f"{practice_id}-r{i}", rng.choice(STATUSES), when,
                                         when - timedelta(days=rng.randrange(15)), rng.choice(MODES), rng.choice(TYPES),
                                         rng.choice(CATEGORIES), "Routine"))
    slot_list = [s for month in (1, 2, 3) for s in slots(n // 3, start=utc(2026, month, 5, 8),
                                                         status=rng.choice(("free", "busy")))]
    return activity(practice_id, appts=appts, slot_list=slot_list)


def every_figure(store: InsightStore) -> list[object]:
    """Every measure by each cut that reads the kept two-way tables, and two cross-cuts, over months and weeks."""
    out: list[object] = []
    for metric in MEASURES:
        for by in ("practice", "mode", "category", "week", "month", "locality"):
            out += store.figures(metric, by, PERIOD)
        out += store.figures(metric, "practice", "2026-W10")
        out += store.figures(metric, "clinician-type", PERIOD, filters={"mode": "telephone"})
    return out


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """Where a store is (a DuckDB file, or a PostgreSQL schema), to open it more than once as processes do."""
    if request.param == "duckdb":
        yield str(tmp_path / "insight.duckdb"), None
    else:
        from tests.insight.conftest import PG_URL

        yield PG_URL, request.getfixturevalue("pg_schema")


def opened(where: tuple[str, str | None]) -> InsightStore:
    return InsightStore.open(where[0], schema=where[1])


@pytest.mark.parametrize("target", ["duckdb", "postgresql"], indirect=True)
def test_a_new_process_reads_the_kept_tables_and_works_nothing_out(target: tuple[str, str | None],
                                                                   tmp_path: Path) -> None:
    rng = random.Random(13)
    books = [book(rng, pid, n) for pid, n in (("P1", 900), ("P2", 400), ("P3", 120))]
    first = opened(target)
    for one in books:
        first.apply(one)
    assert first.prepare(PERIOD) > 0
    kept = every_figure(first)
    first.close()
    again = opened(target)  # as the CLI, or the window opened later, opens it
    try:
        assert again.prepare(PERIOD) == 0  # every unit's tables are kept and still current
        assert every_figure(again) == kept
    finally:
        again.close()
    reference = InsightStore.open(tmp_path / "reference.duckdb")  # the same data, worked out on the spot
    try:
        for one in books:
            reference.apply(one)
        assert every_figure(reference) == kept
    finally:
        reference.close()


@pytest.mark.parametrize("target", ["duckdb", "postgresql"], indirect=True)
def test_protections_follow_the_data_in_every_process(target: tuple[str, str | None], tmp_path: Path) -> None:
    noshows = appointments(6, start=MARCH, status="noshow", mode="telephone")
    p1 = activity("P1", appts=appointments(30, start=MARCH, status="fulfilled") + noshows
                  + appointments(20, start=utc(2026, 1, 12, 9), status="fulfilled"))
    p2 = activity("P2", appts=appointments(40, start=MARCH, status="fulfilled", mode="telephone")
                  + appointments(7, start=MARCH, status="noshow"))
    writer, reader = opened(target), opened(target)  # the refreshing process and one that shows figures
    try:
        writer.apply(p1)
        writer.apply(p2)
        made = writer.prepare(PERIOD)
        [before] = [f for f in reader.figures("dna_rate", "practice", "2026-03") if f.practice_id == "P1"]
        assert not before.suppressed and before.numerator == 6

        # four of P1's noshows turn out to have been seen: two are left, a count under 5
        seen = [ActivityAppointment(a.id, "fulfilled", a.start, a.created, a.mode, a.clinician_type, a.category,
                                    a.local_type) for a in noshows[:4]]
        writer.apply(activity("P1", appts=seen, since=utc(2026, 11, 1)))
        # asked before the refresh has made anything ahead: the kept tables of March are stale, never used
        [after] = [f for f in reader.figures("dna_rate", "practice", "2026-03") if f.practice_id == "P1"]
        assert after.suppressed and after.suppression == "primary" and after.numerator is None
        remade = writer.prepare(PERIOD)
        assert 0 < remade < made  # only March and its weeks, not January's or February's
        final = [activity("P1", appts=appointments(30, start=MARCH, status="fulfilled") + seen + noshows[4:]
                          + appointments(20, start=utc(2026, 1, 12, 9), status="fulfilled")), p2]
        assert every_figure(reader) == _reference(tmp_path / "after-change.duckdb", final)

        writer.set_status("P2", "Two", "failed", "connection refused")  # the practices protected together change
        assert every_figure(reader) == _reference(tmp_path / "after-failure.duckdb", final, failed="P2")
        later = opened(target)
        try:
            assert every_figure(later) == every_figure(reader)
        finally:
            later.close()
    finally:
        writer.close()
        reader.close()


def _reference(path: Path, books: list[Activity], failed: str | None = None) -> list[object]:
    """Every figure of a new store holding only `books` (worked out on the spot, nothing kept before)."""
    store = InsightStore.open(path)
    try:
        for one in books:
            store.apply(one)
        if failed:
            store.set_status(failed, "Two", "failed", "connection refused")
        return every_figure(store)
    finally:
        store.close()


def test_a_full_memory_cache_is_emptied_between_queries_never_inside_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tables held in memory are dropped when over the limit before a query or a prepare: dropped in the
    middle of one (January held from an earlier query, February and March worked out), the query then gathered
    January's tables, gone, and failed with a KeyError."""
    import app.insight.store as store_module

    rng = random.Random(17)
    books = [book(rng, pid, n) for pid, n in (("P1", 600), ("P2", 300))]
    reference = InsightStore.open(tmp_path / "reference.duckdb")
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        for one in books:
            reference.apply(one)
            store.apply(one)
        expected = reference.figures("dna_rate", "practice", PERIOD)
        monkeypatch.setattr(store_module, "UNIT_CACHE_LIMIT", 1)  # over the limit as soon as a unit is held
        store.figures("dna_rate", "practice", "2026-01")  # January's tables held in memory
        assert store.figures("dna_rate", "practice", PERIOD) == expected
        store.prepare(PERIOD)
        assert store.figures("dna_rate", "practice", PERIOD) == expected
    finally:
        store.close()
        reference.close()


def test_tables_kept_by_another_version_of_mosaic_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen bundle ships no source to hash: Mosaic's version is in the fingerprint, so an upgrade that changes
    how protections are decided never reads tables an older build kept."""
    import app
    from app.insight import kept_protections

    kept_protections.algorithm_version.cache_clear()
    now = kept_protections.algorithm_version()
    monkeypatch.setattr(app, "installed_version", lambda: "99.0")
    kept_protections.algorithm_version.cache_clear()
    try:
        assert kept_protections.algorithm_version() != now
    finally:
        monkeypatch.undo()
        kept_protections.algorithm_version.cache_clear()
    assert kept_protections.algorithm_version() == now
