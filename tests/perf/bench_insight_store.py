"""The insight store's side of a refresh and its queries, on about 250,000 synthetic appointments and as many
slots (five practices x two years), built straight as Activity objects (no HTTP: this measures the store).

Reports: the time to build the Activity objects (not the store's), the full load (InsightStore.apply of each
practice: staging, upsert, one transaction each), an incremental apply of 2,000 changed appointments, and
every figures() query (each measure x each cut x a month, a 12-month range and a week, and two cross-cuts:
telephone by clinician type, GP by category), with the slowest.
Goals (issue 13): full refresh <= 30 s end to end (this is the store's part), any query <= 200 ms.

    nice -n 19 .venv/bin/python -m tests.perf.bench_insight_store [--appointments 250000] [--seed 13]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]   # the same on PostgreSQL (a schema of its own)
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from app.core.activity import Activity, ActivityAppointment, ActivitySlot
from app.insight.measures import CUTS, MEASURES
from app.insight.store import InsightStore

MODES = ("face-to-face",) * 6 + ("telephone",) * 3 + ("video", "home-visit")
TYPES = ("gp",) * 5 + ("nurse",) * 3 + ("pharmacist", "other")
CATEGORIES = ("General Consultation Routine", "General Consultation Acute", "Planned Clinics",
              "Unplanned Clinical Activity", "Home Visit", "Clinical Triage", "Structured Medication Review",
              "Care Home Visit", "Social Prescribing Service", None)
STATUSES = ("fulfilled",) * 14 + ("noshow", "booked", "cancelled", "arrived")


def synthetic(rng: random.Random, practice: str, n: int, first: date, days: int) -> Activity:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    appts, slots = [], []
    for i in range(n):
        day = rng.randrange(days)
        when = start + timedelta(days=day, hours=8 + rng.randrange(10), minutes=10 * rng.randrange(6))
        lead = rng.choice((0, 0, 0, 1, 2, 3, 5, 7, 10, 14, 21, 28))
        created = None if rng.random() < 0.02 else when - timedelta(days=lead, minutes=rng.randrange(600))
        mode, kind, category = rng.choice(MODES), rng.choice(TYPES), rng.choice(CATEGORIES)
        appts.append(ActivityAppointment(f"{practice}-a{i}", rng.choice(STATUSES), when, created, mode, kind,
                                         category, "Routine", (f"{practice}-s{i}",), when))
        slots.append(ActivitySlot(f"{practice}-s{i}", when, when + timedelta(minutes=10),
                                  rng.choice(("busy",) * 8 + ("free", "free", "busy-unavailable")), None, kind, mode,
                                  category, "Routine", when))
    return Activity(practice, first, first + timedelta(days=days - 1), datetime.now(UTC), None, tuple(slots),
                    tuple(appts), (), rng.choice((6000, 9000, 12000)))


def run(target: str, total: int, seed: int, schema: str | None) -> None:
    rng = random.Random(seed)
    practices = [f"P{i}" for i in range(1, 6)]
    first, days = date(2024, 12, 1), 730
    t = time.perf_counter()
    activities = [synthetic(rng, p, total // len(practices), first, days) for p in practices]
    built = time.perf_counter() - t
    store = InsightStore.open(target, schema=schema)
    t = time.perf_counter()
    for act in activities:
        store.apply(act)
    load = time.perf_counter() - t
    changed = [ActivityAppointment(a.id, "noshow", a.start, a.created, a.mode, a.clinician_type, a.category,
                                   a.local_type) for a in activities[0].appointments[:2000]]
    incremental = Activity("P1", first, first + timedelta(days=days - 1), datetime.now(UTC), datetime.now(UTC),
                           (), tuple(changed), (), 6000)
    t = time.perf_counter()
    store.apply(incremental)
    inc = time.perf_counter() - t
    n_appts = sum(len(a.appointments) for a in activities)
    n_slots = sum(len(a.slots) for a in activities)
    print(f"engine: {store.where}  seed={seed}")
    print(f"built {n_appts} appointments + {n_slots} slots as Activity objects in {built:.2f} s (not the store's)")
    print(f"full load (store.apply x {len(practices)}): {load:.2f} s")
    print(f"incremental apply of {len(changed)} changed appointments: {inc * 1000:.0f} ms")
    t = time.perf_counter()
    made = store.prepare("2025-04..2026-03")
    prepared = time.perf_counter() - t
    print(f"prepare(2025-04..2026-03): {made} unit tables protected in {prepared:.2f} s (cold queries below are "
          "after it, as after a refresh that calls it)")
    timings = []
    for metric in MEASURES:
        for by in CUTS:
            for period in ("2026-03", "2025-04..2026-03", "2026-W10"):
                if by == "month" and "W" in period:
                    continue
                t = time.perf_counter()
                store.figures(metric, by, period)
                timings.append((time.perf_counter() - t, metric, by, period))
        for by, cross in (("clinician-type", {"mode": "telephone"}), ("category", {"clinician-type": "gp"})):
            for period in ("2026-03", "2025-04..2026-03", "2026-W10"):
                t = time.perf_counter()
                store.figures(metric, by, period, filters=cross)
                timings.append((time.perf_counter() - t, metric, f"{by} ({next(iter(cross.values()))})", period))
    timings.sort(reverse=True)
    median = timings[len(timings) // 2][0]
    print(f"figures(): {len(timings)} queries, median {median * 1000:.0f} ms")
    for label, chosen in (("two-way cuts", [t for t in timings if "(" not in t[2]]),
                          ("cross-cuts (first asked)", [t for t in timings if "(" in t[2]])):
        print(f"  slowest {label}:")
        for seconds, metric, by, period in chosen[:3]:
            print(f"  {seconds * 1000:6.0f} ms  {metric} by {by} {period}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appointments", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL (a throw-away schema)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mosaic-bench-insight-"))
    try:
        run(str(folder / "insight.duckdb"), args.appointments, args.seed, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.postgres:
        import psycopg

        schema = f"bench_insight_{uuid.uuid4().hex[:8]}"
        try:
            run(args.postgres, args.appointments, args.seed, schema)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
