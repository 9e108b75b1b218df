"""The insight store: the same figures from a DuckDB file and from PostgreSQL, incremental upserts, a full
read that drops what the practice no longer holds, the file's privacy, data quality, the mapping check,
national figures and the Parquet export."""

from __future__ import annotations

import os
import random
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from app.core.activity import Activity, ActivityAppointment, ActivitySlot
from app.insight.measures import CUTS, MEASURES
from app.insight.national_model import NationalFigure, PracticeAttributes
from app.insight.store import InsightStore, default_path
from tests.insight._activity import activity, appointments, slots, utc

MARCH = utc(2026, 3, 10, 9)
STATUSES = ("booked", "arrived", "fulfilled", "fulfilled", "fulfilled", "noshow", "cancelled", "checked-in")
MODES = ("face-to-face", "telephone", "video", "home-visit", None)
TYPES = ("gp", "nurse", "pharmacist", "other", None)
CATEGORIES = ("General Consultation Routine", "Planned Clinics", "Home Visit", "Unplanned Clinical Activity", None)


def random_activity(rng: random.Random, practice_id: str, n: int) -> Activity:
    """n appointments and n slots spread over 2025-10..2026-03 at any minute (both clock changes included)."""
    start = datetime(2025, 10, 1, tzinfo=UTC)
    span = int((datetime(2026, 4, 1, tzinfo=UTC) - start).total_seconds() // 60)
    appts, slot_list = [], []
    for i in range(n):
        when = start + timedelta(minutes=rng.randrange(span))
        created = None if rng.random() < 0.05 else when - timedelta(minutes=rng.randrange(0, 30 * 24 * 60))
        appts.append(ActivityAppointment(f"a{i}", rng.choice(STATUSES), when, created, rng.choice(MODES),
                                         rng.choice(TYPES), rng.choice(CATEGORIES), rng.choice(("Routine", "Urgent"))))
        slot_list.append(ActivitySlot(f"s{i}", when, when + timedelta(minutes=10),
                                      rng.choice(("free", "busy", "busy", "busy-unavailable")), None,
                                      rng.choice(TYPES), rng.choice(MODES), rng.choice(CATEGORIES), "Routine"))
    return Activity(practice_id, date(2025, 10, 1), date(2026, 3, 31), datetime(2026, 4, 1, tzinfo=UTC), None,
                    tuple(slot_list), tuple(appts), (), rng.choice((3000, 8000, 12000)))


def test_duckdb_and_postgresql_give_identical_figures(duck_store: InsightStore, pg_store: InsightStore,
                                                      rng_seed: int) -> None:
    rng = random.Random(rng_seed)
    for pid, n in (("P1", 3000), ("P2", 1500), ("P3", 400)):
        act = random_activity(rng, pid, n)
        duck_store.apply(act)
        pg_store.apply(act)
    for store in (duck_store, pg_store):
        store.set_status("P4", "Four", "failed", "connection refused")
    compared = 0
    for metric in MEASURES:
        for by in CUTS:
            for period in ("2026-03", "2025-10..2026-03", "2026-W13", "2025-W44"):
                if by == "month" and "W" in period:
                    continue
                duck = duck_store.figures(metric, by, period)
                pg = pg_store.figures(metric, by, period)
                assert duck == pg, (metric, by, period)
                compared += len(duck)
    assert compared > 1000
    assert duck_store.quality() == pg_store.quality()
    assert duck_store.mapping_consistency() == pg_store.mapping_consistency()


def test_the_file_is_the_users_alone(tmp_path: Path) -> None:
    store = InsightStore.open()  # the default: the per-user data folder (MOSAIC_HOME in tests)
    store.apply(activity("P1", appts=appointments(5, start=MARCH, status="fulfilled")))
    store.close()
    path = default_path()
    assert path.exists() and str(path).startswith(os.environ["MOSAIC_HOME"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    reopened = InsightStore.open(path)
    assert reopened.figures("appointments", "practice", "2026-03")[0].value == 5
    reopened.close()


def test_incremental_upsert_and_cursor(store: InsightStore) -> None:
    first = appointments(10, start=MARCH, status="booked", prefix="inc")
    store.apply(activity("P1", appts=first))
    assert store.cursor("P1") == utc(2026, 12, 1)
    assert store.cursor("P9") is None
    [dna] = store.figures("dna_rate", "practice", "2026-03")
    assert (dna.numerator, dna.denominator) == (0, 0)
    # since: 6 of them changed (5 attended, 1 not), 5 new were booked; the 4 unchanged ones are not resent
    changed = [ActivityAppointment(a.id, "fulfilled" if i < 5 else "noshow", a.start, a.created, a.mode,
                                   a.clinician_type, a.category, a.local_type) for i, a in enumerate(first[:6])]
    new = appointments(5, start=MARCH + timedelta(days=1), status="fulfilled", prefix="inc")
    later = Activity("P1", date(2026, 1, 1), date(2026, 12, 31), utc(2026, 12, 2), utc(2026, 12, 1),
                     (), tuple(changed + new), (), 2000)
    store.apply(later)
    assert store.cursor("P1") == utc(2026, 12, 2)
    [count] = store.figures("appointments", "practice", "2026-03")
    assert count.value == 15
    [dna] = store.figures("dna_rate", "practice", "2026-03")
    assert dna.suppressed and dna.suppression == "primary"  # noshow 1 of 11: shown as "<5"


def test_a_full_read_drops_what_the_practice_no_longer_holds(store: InsightStore) -> None:
    kept = appointments(7, start=MARCH, status="fulfilled")
    gone = appointments(6, start=MARCH, status="fulfilled")
    outside = appointments(8, start=utc(2025, 6, 1, 9), status="fulfilled")
    store.apply(activity("P1", appts=kept + gone + outside, first=date(2025, 1, 1)))
    assert store.figures("appointments", "practice", "2026-03")[0].value == 13
    store.apply(activity("P1", appts=kept))  # a full read of 2026 only
    assert store.figures("appointments", "practice", "2026-03")[0].value == 7
    assert store.figures("appointments", "practice", "2025-06")[0].value == 8  # outside the read: kept


def test_apply_is_one_transaction(store: InsightStore) -> None:
    store.apply(activity("P1", appts=appointments(6, start=MARCH, status="fulfilled"),
                         slot_list=slots(5, start=MARCH, status="free")))
    # the slots go in first; then an appointment without an id breaks the appointments' primary key
    nameless = ActivityAppointment(None, "fulfilled", MARCH)  # type: ignore[arg-type]
    broken = activity("P1", appts=[*appointments(5, start=MARCH, status="fulfilled"), nameless],
                      slot_list=slots(9, start=MARCH, status="free"), since=utc(2026, 11, 1))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the engine's own constraint error
        store.apply(broken)
    assert store.figures("appointments", "practice", "2026-03")[0].value == 6
    assert store.figures("slots_per_1000", "practice", "2026-03")[0].numerator == 5  # the slots rolled back


def test_status_rows(store: InsightStore) -> None:
    store.apply(activity("P1", appts=appointments(5, start=MARCH, status="fulfilled"), list_size=4321))
    store.set_status("P1", "Practice One", "ok", refreshed_at=utc(2026, 12, 1, 8))
    store.set_status("P2", "Practice Two", "failed", "HTTP 503")
    rows = {r.id: r for r in store.practices()}
    assert (rows["P1"].name, rows["P1"].status, rows["P1"].list_size) == ("Practice One", "ok", 4321)
    assert rows["P1"].refreshed_at == utc(2026, 12, 1, 8)
    assert (rows["P2"].status, rows["P2"].error) == ("failed", "HTTP 503")
    with pytest.raises(ValueError, match="status"):
        store.set_status("P3", "x", "zero")


def test_quality_shares(store: InsightStore) -> None:
    appts = (appointments(6, start=MARCH, status="fulfilled", category=None)
             + appointments(4, start=MARCH, status="fulfilled", mode=None, clinician=None)
             + appointments(5, start=MARCH, status="nonsense", created_days_before=None)
             + appointments(5, start=MARCH, status="fulfilled"))
    store.apply(Activity("P1", date(2026, 1, 1), date(2026, 12, 31), utc(2026, 12, 1), None, (), tuple(appts), (),
                         1000, unreadable=3, not_provided=("Encounter",)))
    store.set_status("P2", "Two", "not provided")
    rows = {q.practice_id: q for q in store.quality()}
    q = rows["P1"]
    assert q.appointments == 20
    assert (q.unmapped_category, q.unmapped_mode, q.unmapped_clinician_type) == (0.3, 0.2, 0.2)
    assert (q.missing_status, q.missing_created) == (0.25, 0.25)
    assert (q.unreadable, q.not_provided) == (3, ("Encounter",))
    assert rows["P2"].appointments == 0 and rows["P2"].unmapped_category is None
    assert rows["P2"].not_provided == ("Appointment", "Slot")


def test_mapping_consistency(store: InsightStore) -> None:
    store.apply(activity("P1", slot_list=slots(5, start=MARCH, status="free", local_type="Nurse Clinic",
                                               category="Planned Clinics")
                         + slots(2, start=MARCH, status="free", local_type="Duty Doctor",
                                 category="Unplanned Clinical Activity")))
    store.apply(activity("P2", slot_list=slots(3, start=MARCH, status="busy", local_type="nurse  clinic",
                                               category="General Consultation Routine")
                         + slots(4, start=MARCH, status="busy", local_type="Duty Doctor",
                                 category="Unplanned Clinical Activity")
                         + slots(1, start=MARCH, status="busy", local_type="Blood test", category=None)
                         + slots(1, start=MARCH, status="busy", local_type="Blood test",
                                 category="Planned Clinics")))
    issues = {i.local_type.casefold(): i for i in store.mapping_consistency()}
    assert set(issues) == {"nurse clinic", "blood test"}  # Duty Doctor is mapped alike at both
    nurse = issues["nurse clinic"]
    assert nurse.categories == ("General Consultation Routine", "Planned Clinics")
    assert {(u.practice_id, u.category, u.slots) for u in nurse.uses} == {
        ("P1", "Planned Clinics", 5), ("P2", "General Consultation Routine", 3)}
    assert issues["blood test"].categories == ("Planned Clinics", None)  # within one practice


def test_national_figures_and_attributes(store: InsightStore) -> None:
    figures = [NationalFigure(f"A8100{i}", f"Practice {i}", date(2026, 3, 1), "appointments", 1000.0 + i, None)
               for i in range(5)]
    figures.append(NationalFigure("A81000", "Practice 0", date(2026, 3, 1), "dna_rate", 40, 1000, "telephone"))
    assert store.replace_national(figures) == 6
    assert store.replace_national(figures[:5]) == 5  # replaced, not added
    got = store.national("appointments", date(2026, 3, 1))
    assert [f.numerator for f in got] == [1000, 1001, 1002, 1003, 1004]
    assert store.national("dna_rate") == []
    attrs = [PracticeAttributes("A81001", 9000, 3, 0.2, 0.21, "urban"),
             PracticeAttributes("A81002", 4000, None, None, None, None)]
    assert store.replace_attributes(attrs) == 2
    assert store.attributes() == attrs


def test_export_parquet(store: InsightStore, tmp_path: Path) -> None:
    store.apply(activity("P1", appts=appointments(30, start=MARCH, status="fulfilled")
                         + appointments(3, start=MARCH, status="noshow")))
    store.apply(activity("P2", appts=appointments(40, start=MARCH, status="fulfilled")
                         + appointments(9, start=MARCH, status="noshow")))
    store.set_status("P3", "Three", "not provided")
    store.replace_national([NationalFigure("A81001", "X", date(2026, 3, 1), "appointments", 99, None)])
    out = tmp_path / "export"
    written = store.export_parquet(out)
    assert sorted(p.name for p in written) == ["attributes.parquet", "figures.parquet", "national.parquet",
                                               "practices.parquet"]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no work files left
    con = duckdb.connect()
    rows = con.execute(f"SELECT practice_id, value, numerator, suppressed, suppression, status FROM "
                       f"'{out / 'figures.parquet'}' WHERE metric = 'dna_rate' AND cut = 'month' "
                       "ORDER BY practice_id NULLS FIRST").fetchall()
    assert rows[0] == (None, 14.63, 12.0, False, None, "ok")  # 12 / 82; both practices hidden, the total shown
    assert ("P1", None, None, True, "primary", "ok") in rows
    assert ("P2", None, None, True, "secondary", "ok") in rows
    assert ("P3", None, None, False, None, "not provided") in rows
    assert con.execute(f"SELECT COUNT(*) FROM '{out / 'national.parquet'}'").fetchone() == (1,)
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{out / 'figures.parquet'}'").fetchall()}
    assert "id" not in names and "start_utc" not in names  # aggregates only


def test_prepare_makes_the_same_figures(store: InsightStore) -> None:
    store.apply(activity("P1", appts=appointments(30, start=MARCH, status="fulfilled")
                         + appointments(3, start=MARCH, status="noshow")))
    store.apply(activity("P2", appts=appointments(40, start=MARCH, status="fulfilled")))
    cold = store.figures("dna_rate", "practice", "2026-03")
    assert store.prepare("2026-01..2026-06") > 0
    assert store.figures("dna_rate", "practice", "2026-03") == cold
    store.apply(activity("P2", appts=appointments(2, start=MARCH, status="noshow")))  # the data changed
    after = {f.practice_id: f for f in store.figures("dna_rate", "practice", "2026-03")}
    assert after["P2"].suppressed  # 2 noshows: not the cached answer
