"""Locality insight end to end: refresh five demo FHIR practices' two years of appointment books into the
DuckDB store through Mosaic's core (sign-in, adapters, journal), refresh again incrementally, then time every
figure the Locality view and `mosaic insight show` can ask for.

The demo practices run in a child process (tests/perf/_demo_child.py: all five speak FHIR R4, each reply
delayed 100 ms), as a practice's server runs on another machine. Goals (issue 13): a full refresh of about
250,000 appointments in ≤ 30 s, an incremental refresh in ≤ 2 s, every query ≤ 200 ms.

    python -m tests.perf.bench_insight [--json FILE]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

NAME = "bench_insight"
PRACTICES = 5
REFRESH_GOAL_S = 30.0
INCREMENTAL_GOAL_S = 2.0
QUERY_GOAL_MS = 200.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def measure(network: common.ChildNetwork, store_path: Path) -> dict:
    from app.cli.insight import default_refresh_period
    from app.core.service import MosaicCore
    from app.insight.measures import CUTS, MEASURES
    from app.insight.store import InsightStore

    out: dict = {}
    core = MosaicCore(network.practices)
    store = InsightStore.open(store_path)
    try:
        states = await core.sign_in()
        out["online"] = sum(s.status.value == "online" for s in states)
        period = default_refresh_period()
        t0 = time.perf_counter()
        full = await core.refresh_insight(store, start=period.start, end=period.end, full=True)
        out["full_s"] = time.perf_counter() - t0
        out["appointments"] = sum(p.appointments for p in full.practices)
        out["slots"] = sum(p.slots for p in full.practices)
        out["encounters"] = sum(p.encounters for p in full.practices)
        out["statuses"] = sorted({p.status for p in full.practices})
        t0 = time.perf_counter()
        again = await core.refresh_insight(store, start=period.start, end=period.end)
        out["incremental_s"] = time.perf_counter() - t0
        out["incremental_appointments"] = sum(p.appointments for p in again.practices)

        timings: list[tuple[float, str]] = []
        for metric in MEASURES:
            for by in CUTS:
                for window in (None, period.text):  # the latest month, and the whole two years
                    t0 = time.perf_counter()
                    store.figures(metric, by, window)
                    what = f"{metric} by {by}, {window or 'latest month'}"
                    timings.append((common.ms(time.perf_counter() - t0), what))
        timings.sort(reverse=True)
        out["queries"] = len(timings)
        out["query_median_ms"] = common.median([t for t, _ in timings])
        out["query_slowest"] = timings[:3]
        out["store_mb"] = store_path.stat().st_size / 2**20 if store_path.exists() else 0.0
    finally:
        store.close()
        await core.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    report = common.Report(NAME)
    print(f"== {NAME}: {PRACTICES} demo FHIR practices, two years of appointment books, "
          f"{common.LATENCY_MS} ms per reply ==", flush=True)
    print(f"  before: {common.machine_load()}", flush=True)
    with common.demo_network_process(PRACTICES) as network:
        folder = Path(tempfile.mkdtemp(prefix="insight-"))
        out = asyncio.run(measure(network, folder / "insight.duckdb"))
    load = common.machine_load()
    print(f"  {out['online']} practices online; full refresh {out['full_s']:.1f} s: {out['appointments']:,} "
          f"appointments, {out['slots']:,} slots, {out['encounters']:,} encounters (statuses {out['statuses']}); "
          f"incremental {out['incremental_s']:.2f} s ({out['incremental_appointments']} appointments changed); "
          f"{out['queries']} queries, median {out['query_median_ms']:.0f} ms, slowest "
          + "; ".join(f"{what} {ms:.0f} ms" for ms, what in out["query_slowest"])
          + f"; store {out['store_mb']:.0f} MB; peak RSS {peak_rss_mb():.0f} MB", flush=True)
    print(f"  after: {load}", flush=True)
    print("figures:", flush=True)
    report.add(f"Full refresh, {PRACTICES} practices × 2 years ({out['appointments']:,} appointments)",
               out["full_s"], "s", goal=f"≤ {REFRESH_GOAL_S:.0f} s", met=out["full_s"] <= REFRESH_GOAL_S)
    report.add("Incremental refresh (nothing new)", out["incremental_s"], "s", goal=f"≤ {INCREMENTAL_GOAL_S:.0f} s",
               met=out["incremental_s"] <= INCREMENTAL_GOAL_S)
    slowest = out["query_slowest"][0][0]
    report.add(f"Slowest of {out['queries']} figure queries ({out['query_slowest'][0][1]})", slowest, "ms",
               goal=f"≤ {QUERY_GOAL_MS:.0f} ms", met=slowest <= QUERY_GOAL_MS)
    report.add("  median query", out["query_median_ms"], "ms")
    report.add("  peak RSS of the process (core, adapters, store)", peak_rss_mb(), "MB", note=load)
    report.save(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
