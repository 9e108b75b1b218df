"""Opening a full record: round trips on the critical path, HTTP requests, and wall time at 100 ms per reply.

For a practice offering Patient/$everything and one that must be searched type by type, open several
different patients through `MosaicCore.open_record` (signed in once beforehand, as the window is) and
report PatientRecord.round_trips, the requests and new TCP connections the demo server saw, and the
wall time. Goal: at most 3 round trips, i.e. about 300-400 ms.

    python -m tests.perf.bench_open_record [--patients 10] [--json FILE]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_open_record.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from app.core.service import MosaicCore
from app.core.sessions import PracticeStatus

NAME = "bench_open_record"
MAX_ROUND_TRIPS = 3
MAX_WALL_MS = 400


def pick_patients(population, count: int) -> list:
    """Every n-th patient, plus the oldest (the longest record) as the last one."""
    patients = list(population)
    step = max(1, len(patients) // count)
    chosen = patients[::step][: count - 1]
    oldest = min((p for p in patients if p.birth_date), key=lambda p: p.birth_date)
    return [*chosen, oldest]


async def measure(network, practice_ids: dict[str, str], count: int) -> dict[str, list[dict]]:
    connections = common.count_connections(network)
    core = MosaicCore(network.practices)
    states = await core.sign_in()
    assert all(s.status is PracticeStatus.ONLINE for s in states), [s.detail for s in states]
    results: dict[str, list[dict]] = {}
    try:
        for label, pid in practice_ids.items():
            server = network.server(pid)
            rows = []
            for patient in pick_patients(server.population, count):
                requests0, conns0 = server.requests, connections()
                t0 = time.perf_counter()
                record = await core.open_record(pid, patient.local_id)
                wall = common.ms(time.perf_counter() - t0)
                rows.append({
                    "wall": wall, "round_trips": record.round_trips, "requests": server.requests - requests0,
                    "connections": connections() - conns0,
                    "entries": sum(len(s.entries) for s in record.sections.values()),
                    "loaded": sum(s.status == "loaded" for s in record.sections.values()),
                })
            results[label] = rows
    finally:
        await core.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=10, help="records to open per practice kind (default 10)")
    args = p.parse_args(argv)
    report = common.Report(NAME)
    print(f"== {NAME}: open a full record, {common.LATENCY_MS} ms per reply ==", flush=True)
    with common.demo_network(5, patients=2000) as network:
        everything = next(s.spec.id for s in network.servers if s.spec.supports_everything)
        by_type = next(s.spec.id for s in network.servers if not s.spec.supports_everything)
        kinds = {"$everything": everything, "per-type search": by_type}
        results = asyncio.run(measure(network, kinds, args.patients))
    print("figures:", flush=True)
    for label, rows in results.items():
        pid = kinds[label]
        walls = [r["wall"] for r in rows]
        worst_rt = max(r["round_trips"] for r in rows)
        print(f"  {label} ({pid}): opened {len(rows)} records, {min(r['entries'] for r in rows)}-"
              f"{max(r['entries'] for r in rows)} entries, sections loaded {min(r['loaded'] for r in rows)}/6; "
              f"wall ms first {walls[0]:.0f}, median {common.median(walls):.0f}, max {max(walls):.0f}; "
              f"new TCP connections first {rows[0]['connections']}, later "
              f"{common.median([r['connections'] for r in rows[1:]]):.0f}", flush=True)
        report.add(f"Open record, {label}: round trips (max)", worst_rt, goal=f"≤ {MAX_ROUND_TRIPS}",
                   met=worst_rt <= MAX_ROUND_TRIPS)
        report.add(f"Open record, {label}: HTTP requests per record (max)", max(r["requests"] for r in rows))
        report.add(f"Open record, {label}: wall time (median of {len(rows)})", common.median(walls), "ms",
                   goal=f"≲ {MAX_WALL_MS} ms", met=common.median(walls) <= MAX_WALL_MS)
        report.add(f"Open record, {label}: wall time (slowest)", max(walls), "ms",
                   goal=f"≲ {MAX_WALL_MS} ms", met=max(walls) <= MAX_WALL_MS,
                   note=f"largest record {max(r['entries'] for r in rows)} entries")
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
