"""How long the FHIR R4 adapter takes to read the demo practices' appointment books (issue 13).

    nice -n 19 .venv/bin/python -m tests.perf.bench_activity_read [--practices 5] [--latency-ms 100]

The demo practices run in a child process (as a real practice's server runs elsewhere), every one on FHIR
R4 (no GP Connect), 2,000 patients each: ~50,000 appointments a practice over two years. The benchmark
reads every practice's two years at once, as a full refresh does, then an incremental read since the full
read's as_of, and prints wall time, this process's CPU time, and what was read. The store's goal for a
full refresh end to end is 30 s for 250,000 appointments; this is the read alone.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from tests.perf import _common as common


def _read(practices: list, secrets: dict[str, str | None], since: dict | None = None) -> tuple[list, float, float]:
    """Read every practice at once. The results are handed back outside the event loop: asyncio.run's exit
    would otherwise repr the main task's result (all 250,000 appointments) through signal.getsignal."""
    out: list = []
    asyncio.run(_read_into(out, practices, secrets, since))
    return out[0], out[1], out[2]


async def _read_into(out: list, practices: list, secrets: dict[str, str | None], since: dict | None) -> None:
    from adapters.fhir_r4 import FhirR4Adapter

    adapters = [FhirR4Adapter(p, secrets.get(p.id)) for p in practices]
    try:
        for adapter in adapters:
            await adapter.connect()
        end = _reference_date()
        start = end.replace(year=end.year - 2) + timedelta(days=1)
        wall, cpu = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(a.activity(start, end, (since or {}).get(a.practice.id))
                                         for a in adapters))
        out.extend([list(results), time.perf_counter() - wall, time.process_time() - cpu])
    finally:
        for adapter in adapters:
            await adapter.close()


def _reference_date():  # type: ignore[no-untyped-def]
    from datetime import date

    return date.today()  # the demo child's reference date (DemoNetwork.start's default)


def main() -> int:
    p = common.parser(__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--practices", type=int, default=5)
    p.add_argument("--patients", type=int, default=2000)
    p.add_argument("--latency-ms", type=float, default=common.LATENCY_MS)
    args = p.parse_args()
    from app.core.secrets import env_name

    print(f"machine load: {common.machine_load()}")
    with common.demo_network_process(args.practices, args.patients, args.latency_ms) as child:
        fhir = [pr for pr in child.practices if pr.adapter == "fhir-r4"]
        import os

        secrets = {pr.id: os.environ.get(env_name(pr.id)) for pr in fhir}
        results, wall, cpu = _read(fhir, secrets)
        appointments = sum(len(a.appointments) for a in results)
        slots = sum(len(a.slots) for a in results)
        encounters = sum(len(a.encounters) for a in results)
        print(f"full read: {len(fhir)} FHIR practices x 2 years, latency {args.latency_ms:g} ms: "
              f"{appointments:,} appointments, {slots:,} slots, {encounters:,} encounters, "
              f"unreadable {sum(a.unreadable for a in results)}")
        again, wall2, cpu2 = _read(fhir, secrets, {a.practice_id: a.as_of for a in results})
        changed = sum(len(a.appointments) + len(a.slots) + len(a.encounters) for a in again)
        report = common.Report("bench_activity_read")
        report.add(f"Read {appointments:,} appointments (+ slots, encounters), wall", wall, "s",
                   goal="well under 30 s (the store's whole refresh)", met=wall < 20)
        report.add("  the same, this process's CPU", cpu, "s")
        report.add(f"Incremental read ({changed} changed), wall", wall2, "s", goal="≤ 2 s", met=wall2 <= 2)
        report.save(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
