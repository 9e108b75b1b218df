"""Audit outbox delivery rate: journaled entries to one demo practice as AuditEvents, entries per second.

A fresh journal gets N read entries for one practice (one transaction), then an OutboxSender with
the real clock drains them through the FHIR adapter (conditional-create POSTs) while each delivery
is marked in the journal (one durable SQLite commit per entry). Measured with the demo practice
answering at once (0 ms) and after 100 ms, at the default concurrency (4 per destination) and at 16.

    python -m tests.perf.bench_outbox [--entries 1000] [--json FILE]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_outbox.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from adapters.fhir_r4 import FhirR4Adapter
from app.core.audit.balp import AUDIT_ENTRY_SYSTEM
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, JournalEntry, practice_destination
from app.core.audit.outbox import OutboxSender, adapter_at_server, default_deliverers

NAME = "bench_outbox"


def entries(server, count: int) -> list[JournalEntry]:
    user = AuditUser("bench", "Benchmark User", "GP")
    people = list(server.population)
    return [JournalEntry(action=Action.READ, user=user, practice_id=server.spec.id, practice_ods=server.spec.ods_code,
                         patient_local_id=p.local_id, patient_nhs_number=p.nhs_number,
                         sections=("problems", "medications", "allergies"), purpose="TREAT", app_version="bench")
            for p in (people[i % len(people)] for i in range(count))]


async def drain(journal: Journal, adapter: FhirR4Adapter, concurrency: int, timeout_s: float) -> float:
    """Seconds from start until nothing waits."""
    done = asyncio.Event()
    at_server = adapter_at_server(lambda: [adapter.practice], {adapter.practice.id: adapter}.get)
    sender = OutboxSender(journal, default_deliverers(at_server), concurrency=concurrency,
                          on_status=lambda status: done.set() if not any(s.waiting for s in status) else None)
    started = time.perf_counter()
    sender.start()
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        await sender.stop()
    return time.perf_counter() - started


def run_case(network, latency_ms: float, concurrency: int, count: int, workdir: Path) -> tuple[float, float, int]:
    server = network.servers[0]
    server.faults.latency_ms = latency_ms
    stored_before = len(server.audit.all())
    path = workdir / f"journal-{latency_ms:g}-{concurrency}.sqlite"
    with Journal.open(path) as journal:
        made = entries(server, count)
        t0 = time.perf_counter()
        journal.append_many(made, [practice_destination(server.practice)])
        append_s = time.perf_counter() - t0

        async def go() -> float:
            adapter = FhirR4Adapter(server.practice, network.secrets[server.spec.id])
            try:
                return await drain(journal, adapter, concurrency, timeout_s=300)
            finally:
                await adapter.close()

        seconds = asyncio.run(go())
        assert journal.outbox_status() == [], journal.outbox_status()
    stored = len(server.audit.all()) - stored_before
    sample = made[:: max(1, count // 20)]
    dupes = [e.entry_id for e in sample
             if len(server.audit.search(identifier=f"{AUDIT_ENTRY_SYSTEM}|urn:uuid:{e.entry_id}")) != 1]
    assert stored == count and not dupes, (stored, count, dupes)
    return count / seconds, seconds, int(append_s * 1000)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1000,
                   help="entries per run at 0 ms (default 1000; a third as many at 100 ms)")
    args = p.parse_args(argv)
    report = common.Report(NAME)
    print(f"== {NAME}: journal -> outbox -> one demo practice (FHIR AuditEvent, conditional create) ==", flush=True)
    cases = [(0, 4, args.entries), (0, 16, args.entries), (100, 4, max(40, args.entries // 3)),
             (100, 16, max(40, args.entries // 3))]
    with tempfile.TemporaryDirectory(prefix="mosaic-bench-outbox-") as tmp:
        for latency, concurrency, count in cases:
            # a fresh practice per case: the demo's audit store scans every stored event on each
            # conditional create, so a store filled by the previous case would slow this one
            with common.demo_network(1, patients=500, latency_ms=0) as network:
                rate, seconds, append_ms = run_case(network, latency, concurrency, count, Path(tmp))
            report.add(f"Outbox delivery, {latency} ms replies, {concurrency} in flight", round(rate, 1),
                       "entries/s", note=f"{count} entries in {seconds:.2f} s; each stored once")
            print(f"    (journaling the {count} entries took {append_ms} ms in one transaction)", flush=True)
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
