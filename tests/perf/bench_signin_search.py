"""Sign-in plus first search across 1, 5 and 20 practices, each reply delayed 100 ms.

Wall time from `MosaicCore.sign_in()` starting to the first federated search completing, with a fresh
MosaicCore (new sessions, new connections) every run; median of several runs after one warm-up run
(the demo servers build their search indexes on first use). Goals: 5 practices within 1.2x and 20
practices within 1.5x of one practice.

    python -m tests.perf.bench_signin_search [--runs 5] [--json FILE]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_signin_search.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from app.core.model import PatientQuery
from app.core.service import MosaicCore
from app.core.sessions import PracticeStatus

NAME = "bench_signin_search"
SIZES = (1, 5, 20)
FAMILY = "Smith"  # the commonest family name in the demo vocabulary


def one_run(network, query: PatientQuery) -> dict:
    """Fresh core: sign in to every practice, then search. Times in ms from the start of sign-in."""
    online_at: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_state(state) -> None:  # runs on the core's loop
        if state.status is PracticeStatus.ONLINE:
            online_at[state.practice.id] = common.ms(time.perf_counter() - t0)

    async def go() -> dict:
        nonlocal t0
        core = MosaicCore(network.practices, on_state=on_state)
        requests0 = common.requests_served(network)
        t0 = time.perf_counter()
        states = await core.sign_in()
        t1 = time.perf_counter()
        requests1 = common.requests_served(network)
        outcome = await core.search(query)
        t2 = time.perf_counter()
        requests2 = common.requests_served(network)
        await core.close()
        return {
            "total": common.ms(t2 - t0), "sign_in": common.ms(t1 - t0), "search": common.ms(t2 - t1),
            "online": sum(s.status is PracticeStatus.ONLINE for s in states), "failed_search": len(outcome.failures),
            "results": len(outcome.patients), "sign_in_requests": requests1 - requests0,
            "search_requests": requests2 - requests1, "online_at": dict(online_at),
        }

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="measured runs per size and query (default 5)")
    args = p.parse_args(argv)
    report = common.Report(NAME)
    budget = common.Budget(100)
    print(f"== {NAME}: sign-in + first search, {common.LATENCY_MS} ms per reply ==", flush=True)
    medians: dict[tuple[str, int], float] = {}
    sign_in_medians: dict[int, float] = {}
    for size in SIZES:
        with common.demo_network(size, patients=2000) as network:
            connections = common.count_connections(network)
            auth_of = {s.spec.id: s.spec.auth for s in network.servers}
            shared = network.shared_patients[0].nhs_number if network.shared_patients else None
            nhs = shared or network.servers[0].population.at(0).nhs_number
            queries = {"family name": PatientQuery(family=FAMILY), "NHS number": PatientQuery(nhs_number=nhs)}
            for label, query in queries.items():
                one_run(network, query)  # warm-up: server-side indexes, imports, certificate store
                runs = []
                conns0 = connections()
                for _ in range(args.runs):
                    if budget.expired() and runs:
                        break
                    runs.append(one_run(network, query))
                conns_per_run = (connections() - conns0) / len(runs)
                bad = [r for r in runs if r["online"] != size or r["failed_search"]]
                total = common.median([r["total"] for r in runs])
                medians[(label, size)] = total
                last = runs[-1]
                print(f"  {size:>2} practices, {label:<11}: total {total:6.0f} ms (sign-in "
                      f"{common.median([r['sign_in'] for r in runs]):.0f} + search "
                      f"{common.median([r['search'] for r in runs]):.0f}), runs {len(runs)}, "
                      f"results {last['results']}, requests sign-in {last['sign_in_requests']} "
                      f"search {last['search_requests']}, TCP connections/run {conns_per_run:.0f}"
                      + (f", {len(bad)} runs with failures!" if bad else ""), flush=True)
                if label == "family name":
                    sign_in_medians[size] = common.median([r["sign_in"] for r in runs])
                    by_auth: dict[str, list[float]] = defaultdict(list)
                    for r in runs:
                        for pid, at in r["online_at"].items():
                            by_auth[auth_of[pid]].append(at)
                    print("      time to online by sign-in method (median over practices and runs): "
                          + ", ".join(f"{k} {common.median(v):.0f} ms (n={len(v) // len(runs)})"
                                      for k, v in sorted(by_auth.items())), flush=True)
                    order = sorted(last["online_at"].items(), key=lambda kv: kv[1])
                    print(f"      last run, first online {order[0][1]:.0f} ms, last online {order[-1][1]:.0f} ms "
                          f"({order[-1][0]}, {auth_of[order[-1][0]]})", flush=True)

    print("figures:", flush=True)
    goals = {5: 1.2, 20: 1.5}
    for label, query_text in (("family name", f"'{FAMILY}'"), ("NHS number", "an NHS number")):
        base = medians[(label, 1)]
        for size in SIZES:
            report.add(f"Sign-in + search {query_text}, {size} practice{'s' if size > 1 else ''} (median)",
                       medians[(label, size)], "ms")
        for size in (5, 20):
            ratio = medians[(label, size)] / base
            report.add(f"  ratio {size} practices / 1 practice ({label})", ratio, "x", goal=f"≤ {goals[size]}×",
                       met=ratio <= goals[size])
    for size in SIZES:
        report.add(f"  of which sign-in alone, {size} practice{'s' if size > 1 else ''} (median)",
                   sign_in_medians[size], "ms")
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
