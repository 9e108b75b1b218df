"""Search at scale: 5 practices of 20,000 patients each, replies delayed 0 ms and 100 ms.

Times (through MosaicCore.search, signed in once) a family-name search (the commonest name, so the
adapter's page and result caps come into play), a family-name + given-name search, a birth-date
search and an NHS-number search across all five, median of 3 after the first search (reported apart:
it pays any one-off cost). Also times starting the network.

    python -m tests.perf.bench_search_scale [--runs 3] [--json FILE]
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_search_scale.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from app.core.model import PatientQuery
from app.core.service import MosaicCore
from app.core.sessions import PracticeStatus

NAME = "bench_search_scale"
PRACTICES, PATIENTS = 5, 20_000


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    report = common.Report(NAME)
    print(f"== {NAME}: {PRACTICES} practices x {PATIENTS:,} patients ==", flush=True)
    common.isolate()
    from app.demo.network import DemoNetwork

    t0 = time.perf_counter()
    network = DemoNetwork.start(practices=PRACTICES, patients=PATIENTS, latency_ms=0)
    start_s = time.perf_counter() - t0
    try:
        os.environ.update(common.secret_env(network))
        # One full collection now walks every demo patient: what an in-process demo (`mosaic demo
        # --patients 20000`) would pause for from time to time. Then freeze them (see common.demo_network).
        t0 = time.perf_counter()
        gc.collect()
        full_gc_ms = common.ms(time.perf_counter() - t0)
        tracked = len(gc.get_objects())
        gc.freeze()
        report.add(f"Start the {PRACTICES} x {PATIENTS:,} demo network", start_s, "s")
        report.add("  one full garbage collection with that network in-process", full_gc_ms, "ms",
                   note=f"{tracked:,} tracked objects")
        figures = asyncio.run(measure(network, args.runs))
    finally:
        network.stop()
        gc.unfreeze()
    print("figures:", flush=True)
    first_ms, first_n = figures.pop("first")
    report.add("  first search after sign-in (one-off costs included)", first_ms, "ms",
               note=f"family name, {first_n} results, 0 ms latency")
    for (label, latency), (wall, results, requests, truncated) in figures.items():
        note = f"{results} results, {requests} requests" + (", capped at the adapter's limit" if truncated else "")
        report.add(f"Search {label}, 5 x 20,000, {latency} ms latency (median)", wall, "ms", note=note)
    report.save(args.json)
    return 0


async def measure(network, runs: int) -> dict:
    core = MosaicCore(network.practices)
    states = await core.sign_in()
    assert all(s.status is PracticeStatus.ONLINE for s in states), [s.detail for s in states]
    pop = network.servers[0].population
    sample = pop.at(len(pop) // 3)
    shared = network.shared_patients[0]
    family = "Smith"
    queries = {
        f"family name '{family}'": PatientQuery(family=family),
        "family + given name": PatientQuery(family=sample.family, given=sample.given[0]),
        "birth date": PatientQuery(birth_date=sample.birth_date),
        "NHS number": PatientQuery(nhs_number=shared.nhs_number),
    }
    out: dict = {}
    try:
        t0 = time.perf_counter()
        first = await core.search(queries[f"family name '{family}'"])
        out["first"] = (common.ms(time.perf_counter() - t0), len(first.patients))
        for latency in (0, common.LATENCY_MS):
            network.set_latency(latency)
            for label, query in queries.items():
                walls = []
                for _ in range(runs):
                    requests0 = common.requests_served(network)
                    t0 = time.perf_counter()
                    outcome = await core.search(query)
                    walls.append(common.ms(time.perf_counter() - t0))
                    requests = common.requests_served(network) - requests0
                assert not outcome.failures, [f.error for f in outcome.failures]
                truncated = any(getattr(core.sessions.online_adapter(p.id), "last_search_truncated", False)
                                for p in network.practices)
                out[(label, latency)] = (common.median(walls), len(outcome.patients), requests, truncated)
                print(f"  {label:<24} {latency:>3} ms latency: {common.median(walls):6.0f} ms median "
                      f"(runs {', '.join(f'{w:.0f}' for w in walls)}), {len(outcome.patients)} results, "
                      f"{requests} requests{', truncated' if truncated else ''}", flush=True)
    finally:
        await core.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
