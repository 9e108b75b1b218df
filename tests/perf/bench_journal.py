"""The local audit journal: durable append, the two key questions at 1,000,000 entries, verify throughput.

Durable append: one entry with two outbox rows per transaction (WAL, synchronous=FULL), p50/p99.
Then a journal of 1,000,000 entries (200 users, 100,000 patients, 5 practices, over a year) is built in
one transaction with `append_many` (the chain computed as by `append`), and "whose records did this
user open" / "who opened this patient's record" are timed through `Journal.query` (newest 500, as the
Access history view asks), p50/p99 over random users and patients. Finally `verify()` walks it all.

    python -m tests.perf.bench_journal [--entries 1000000] [--appends 500] [--queries 300] [--json FILE]
"""

from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script: python tests/perf/bench_journal.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, JournalEntry, Outcome

NAME = "bench_journal"
USERS, PATIENTS, PRACTICES = 200, 100_000, 5
GOAL_MS = 50.0
SECTIONS = ("summary", "medications", "problems", "allergies", "encounters")


class PeakRss:
    """How much the process's resident memory grew at most while the block ran (sampled every 20 ms)."""

    def __enter__(self) -> PeakRss:
        import psutil

        self._process = psutil.Process()
        self._base = self._peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def grew_mb(self) -> float:
        return (self._peak - self._base) / 2**20


def shown_ms(value: float) -> str:
    return f"{value:.2f} ms"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def nhs(i: int) -> str:
    return f"9{i:09d}"


def synthetic(count: int, rng: random.Random, start: datetime) -> Iterator[JournalEntry]:
    """Reads and searches by 200 users over a year, time always moving forward."""
    users = [AuditUser(f"user{u:03d}", f"User {u:03d}", role="GP") for u in range(USERS)]
    step = timedelta(days=365) / count
    for i in range(count):
        practice = f"P{rng.randrange(PRACTICES)}"
        draw = rng.random()
        search, broke_glass = draw < 0.2, draw > 0.995  # 0.5% of opens are break-glass (flagged for review)
        yield JournalEntry(
            action=Action.SEARCH if search else Action.BREAK_GLASS if broke_glass else Action.READ,
            user=users[rng.randrange(USERS)],
            outcome=Outcome.SUCCESS, practice_id=practice, practice_ods=practice,
            patient_local_id=None if search else str(rng.randrange(PATIENTS)),
            patient_nhs_number=None if search else nhs(rng.randrange(PATIENTS)),
            sections=() if search else SECTIONS[: rng.randint(1, 5)], purpose="Direct care",
            details={"results": rng.randint(0, 20)} if search else
            {"flagged": True, "flag": "break-glass"} if broke_glass else {}, workstation="PC-042", app_version="0.1.0",
            entry_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), recorded_at=start + step * i)


def timed_queries(journal: Journal, kind: str, keys: list[str]) -> tuple[list[float], int]:
    times, rows = [], 0
    for key in keys:
        t0 = time.perf_counter()
        found = journal.query(user=key, limit=500) if kind == "user" else journal.query(patient_nhs_number=key,
                                                                                       limit=500)
        times.append(common.ms(time.perf_counter() - t0))
        rows += len(found)
    return times, rows


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--appends", type=int, default=500)
    p.add_argument("--queries", type=int, default=300)
    args = p.parse_args(argv)
    report = common.Report(NAME)
    home = common.isolate()
    import keyring  # the journal's key lives in the OS keyring: a keyring in memory (no D-Bus round trip)

    from tests.core.test_secrets import MemoryKeyring

    keyring.set_keyring(MemoryKeyring())
    rng = random.Random(20250312)
    print(f"== {NAME}: durable appends, then {args.entries:,} entries ==", flush=True)

    # durable append, one at a time, as the window does before showing a record
    with Journal.open(home / "append.sqlite") as journal:
        times = []
        for entry in synthetic(args.appends, rng, datetime.now(UTC)):
            t0 = time.perf_counter()
            journal.append(entry, destinations=["practice:P0", "central"])
            times.append(common.ms(time.perf_counter() - t0))
    report.add("Durable append (entry + 2 outbox rows), p50", shown_ms(percentile(times, 50)))
    report.add("Durable append (entry + 2 outbox rows), p99", shown_ms(percentile(times, 99)))

    # a big journal
    path = home / "big.sqlite"
    with Journal.open(path) as journal:
        t0 = time.perf_counter()
        journal.append_many(synthetic(args.entries, rng, datetime(2024, 4, 1, tzinfo=UTC)))
        build_s = time.perf_counter() - t0
    report.add(f"Build {args.entries:,} entries (append_many, one transaction)", build_s, "s",
               note=f"{args.entries / build_s:,.0f} entries/s, file {path.stat().st_size / 2**20:,.0f} MB")

    with Journal.open(path) as journal:  # a fresh open: nothing cached by the build
        users = [f"user{rng.randrange(USERS):03d}" for _ in range(args.queries)]
        patients = [nhs(rng.randrange(PATIENTS)) for _ in range(args.queries)]
        for kind, keys, label in (("user", users, "Entries by this user"), ("patient", patients,
                                                                            "Entries for this patient")):
            times, rows = timed_queries(journal, kind, keys)
            note = f"newest 500, {rows / len(keys):,.0f} entries per answer, {len(keys)} {kind}s"
            for p in (50, 99):
                value = percentile(times, p)
                report.add(f"{label} among {args.entries:,}, p{p}", shown_ms(value), note=note if p == 50 else "",
                           goal=f"≤ {GOAL_MS:.0f} ms", met=value <= GOAL_MS)

        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            found = journal.query(flagged=True, limit=500)
            times.append(common.ms(time.perf_counter() - t0))
        report.add(f"Flagged for review among {args.entries:,} (newest 500), median of 5",
                   shown_ms(common.median(times)), note=f"{len(found)} returned; 0.5% of opens are break-glass")

        with PeakRss() as rss:
            t0 = time.perf_counter()
            result = journal.verify()
            verify_s = time.perf_counter() - t0
        assert result.ok and result.checked == args.entries, result
        report.add(f"Verify {args.entries:,} entries", verify_s, "s",
                   note=f"{args.entries / verify_s:,.0f} entries/s; memory grew {rss.grew_mb:,.0f} MB")
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
