"""The outbox sender with the real journal and the demo practices over loopback.

Time in the sender comes from a fake clock that tests move forward, so backoff is tested without
sleeping; tests wait on the sender's status callback (each pass publishes one), never on the clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter, AdapterError
from adapters.fhir_r4 import FhirR4Adapter
from adapters.http import HttpError
from app.core.audit.balp import AUDIT_ENTRY_SYSTEM, audit_event, entry_identifier
from app.core.audit.journal import DestinationStatus, Journal, OutboxItem
from app.core.audit.model import Action, AuditUser, JournalEntry, practice_destination
from app.core.audit.outbox import (
    Backoff,
    Deliver,
    DeliveryDeferred,
    DeliveryRefused,
    OutboxSender,
    ServerLookup,
    Verdict,
    adapter_at_server,
    classify,
    default_deliverers,
    practice_delivery,
)
from app.core.model import Practice
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork

USER = AuditUser("jsmith", "Dr Jane Smith", "GP")


class FakeClock:
    """A clock a day ahead of real time (so every freshly journaled row is already due), moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Watch:
    """The sender's status listener: the latest status per destination, and a way to wait for one."""

    def __init__(self) -> None:
        self.latest: dict[str, DestinationStatus] | None = None
        self.passes = 0
        self._changed = asyncio.Event()

    def __call__(self, status: list[DestinationStatus]) -> None:
        self.latest = {s.destination: s for s in status}
        self.passes += 1
        self._changed.set()

    async def until(self, predicate: Callable[[dict[str, DestinationStatus]], bool],
                    timeout: float = 15.0) -> dict[str, DestinationStatus]:
        async with asyncio.timeout(timeout):
            while self.latest is None or not predicate(self.latest):
                self._changed.clear()
                await self._changed.wait()
        return self.latest

    async def next_pass(self, timeout: float = 15.0) -> dict[str, DestinationStatus]:
        seen = self.passes
        return await self.until(lambda _s: self.passes > seen, timeout)


def empty(status: dict[str, DestinationStatus]) -> bool:
    return not any(s.waiting for s in status.values())


@pytest.fixture(scope="module")
def demo_network() -> Iterator[DemoNetwork]:
    """Our own practices: these tests write AuditEvents, and the session's shared ones are read-only."""
    with DemoNetwork.start(practices=5, patients=30) as network:
        yield network


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[Journal]:
    with Journal.open(journal_path) as j:
        yield j


@pytest.fixture
async def adapters(demo_network: DemoNetwork) -> AsyncIterator[dict[str, Adapter]]:
    made: dict[str, Adapter] = {s.spec.id: FhirR4Adapter(s.practice, demo_network.secrets[s.spec.id])
                                for s in demo_network.servers}
    yield made
    for adapter in made.values():
        await adapter.close()


def read_entry(server: DemoServer, n: int) -> JournalEntry:
    patient = server.population.at(n % len(server.population))
    return JournalEntry(action=Action.READ, user=USER, practice_id=server.spec.id, practice_ods=server.spec.ods_code,
                        patient_local_id=patient.local_id, patient_nhs_number=patient.nhs_number,
                        sections=("problems", "medications"), purpose="TREAT", app_version="0.1.0")


def append(journal: Journal, server: DemoServer, count: int, start: int = 0) -> list[JournalEntry]:
    return [journal.append(read_entry(server, start + n), [practice_destination(server.practice)])
            for n in range(count)]


def at_server(adapters: dict[str, Adapter], practices: list[Practice] | None = None) -> ServerLookup:
    """Deliveries through these adapters, found by the server an entry was committed for (as the core does)."""
    return adapter_at_server(lambda: practices if practices is not None else [a.practice for a in adapters.values()],
                             adapters.get)


def copies(server: DemoServer, entry: JournalEntry) -> int:
    return len(server.audit.search(identifier=f"{AUDIT_ENTRY_SYSTEM}|urn:uuid:{entry.entry_id}"))


async def drive(watch: Watch, clock: FakeClock, sender: OutboxSender,
                predicate: Callable[[dict[str, DestinationStatus]], bool], timeout: float = 15.0) -> None:
    """Each time the sender falls idle, let time pass (beyond any backoff), until `predicate` holds."""
    async with asyncio.timeout(timeout):
        while True:
            status = await watch.next_pass()
            if sender.sending:
                continue  # a pass published while deliveries are in flight: wait for them
            if predicate(status):
                return
            clock.advance(Backoff().cap_s + 60)
            sender.notify()


def sender_for(journal: Journal, deliverers: dict[str, Deliver], watch: Watch, clock: FakeClock,
               **options: Any) -> OutboxSender:
    return OutboxSender(journal, deliverers, clock=clock, rng=random.Random(7), on_status=watch, **options)


# --- delivery --------------------------------------------------------------------------------------------


async def test_each_entry_reaches_its_own_practice_exactly_once(demo_network: DemoNetwork, journal: Journal,
                                                                adapters: dict[str, Adapter]) -> None:
    first, second = demo_network.servers[0], demo_network.servers[1]
    entries = append(journal, first, 12) + append(journal, second, 8)
    watch, clock = Watch(), FakeClock()
    sender = sender_for(journal, default_deliverers(at_server(adapters)), watch, clock)
    sender.start()
    try:
        await watch.until(empty)
    finally:
        await sender.stop()
    for entry in entries:
        owner, other = (first, second) if entry.practice_id == first.spec.id else (second, first)
        assert copies(owner, entry) == 1
        assert copies(other, entry) == 0
    # the practice can answer "who looked at this patient?" from its own AuditEvents
    entry = entries[0]
    [event] = [e for e in first.audit.search(patient=entry.patient_local_id)
               if {"system": AUDIT_ENTRY_SYSTEM, "value": f"urn:uuid:{entry.entry_id}"}
               in [x.get("what", {}).get("identifier") for x in e["entity"]]]
    assert event["action"] == "R" and event["subtype"][0]["code"] == "read"
    assert any(a.get("who", {}).get("identifier", {}).get("value") == "jsmith" for a in event["agent"])
    assert journal.outbox_status() == []


@pytest.mark.parametrize("mode", ["down", "http-503"])
async def test_outage_then_recovery_every_entry_arrives_once(demo_network: DemoNetwork, journal: Journal,
                                                             adapters: dict[str, Adapter], mode: str) -> None:
    server = demo_network.servers[2]
    destination = practice_destination(server.practice)
    watch, clock = Watch(), FakeClock()
    sender = sender_for(journal, default_deliverers(at_server(adapters)), watch, clock)
    with server.faults.override(mode=mode, match="/AuditEvent") as faults:
        before = faults.counts[mode]
        entries = append(journal, server, 5)
        sender.start()
        try:
            status = await watch.until(lambda s: destination in s and s[destination].last_error is not None)
            assert status[destination].waiting == 5
            tried = faults.counts[mode] - before
            assert 1 <= tried <= 4  # one batch, at most `concurrency` in flight when the first failed
            # more records opened during the outage: journaled and counted, but the practice is resting
            entries += append(journal, server, 5, start=5)
            sender.notify()
            await watch.until(lambda s: s[destination].waiting == 10)
            sender.notify()
            await watch.next_pass()  # one more look: still resting
            assert faults.counts[mode] - before == tried  # no hammering a practice that is down
        except BaseException:
            await sender.stop()
            raise
    try:
        clock.advance(Backoff().cap_s + 60)  # past any backoff
        sender.notify()
        await watch.until(empty)
    finally:
        await sender.stop()
    assert [copies(server, e) for e in entries] == [1] * 10


async def test_retry_after_a_lost_reply_does_not_duplicate(demo_network: DemoNetwork, journal: Journal,
                                                           adapters: dict[str, Adapter]) -> None:
    """The practice stored the event but the reply never arrived: the retry's conditional create finds it."""
    server = demo_network.servers[3]
    entries = append(journal, server, 6)
    real = practice_delivery(at_server(adapters))
    lost: set[int] = set()

    async def reply_lost_once(item: OutboxItem) -> None:
        await real(item)  # the practice stores it...
        if item.id not in lost:
            lost.add(item.id)
            raise HttpError("Practice closed the connection before its reply was complete.", "network")

    watch, clock = Watch(), FakeClock()
    sender = sender_for(journal, {"practice:": reply_lost_once}, watch, clock)
    sender.start()
    try:
        await drive(watch, clock, sender, empty)
    finally:
        await sender.stop()
    assert len(lost) == 6
    assert [copies(server, e) for e in entries] == [1] * 6


async def test_conditional_create_dedups_a_repeated_post(demo_network: DemoNetwork,
                                                         adapters: dict[str, Adapter]) -> None:
    server = demo_network.servers[4]
    entry = read_entry(server, 1)
    event = audit_event(entry, server.practice, server.practice.base_url)
    adapter = adapters[server.spec.id]
    await adapter.send_audit_event(event, entry_identifier(entry))
    await adapter.send_audit_event(event, entry_identifier(entry))
    assert copies(server, entry) == 1
    # a 201 whose body arrives garbled still means the practice took it
    other = read_entry(server, 2)
    with server.faults.override(mode="malformed-json", match="/AuditEvent", times=1):
        await adapter.send_audit_event(audit_event(other, server.practice, server.practice.base_url),
                                       entry_identifier(other))
    assert copies(server, other) == 1


async def test_restart_midway_delivers_the_rest_exactly_once(demo_network: DemoNetwork, journal_path: Path,
                                                              adapters: dict[str, Adapter]) -> None:
    server = demo_network.servers[0]
    journal = Journal.open(journal_path)
    entries = append(journal, server, 30)
    real = practice_delivery(at_server(adapters))
    delivered = 0
    midway = asyncio.Event()

    async def counting(item: OutboxItem) -> None:
        nonlocal delivered
        await real(item)
        delivered += 1
        if delivered >= 8:
            midway.set()

    with server.faults.override(latency_ms=20):
        sender = sender_for(journal, {"practice:": counting}, Watch(), FakeClock(), concurrency=3)
        sender.start()
        await asyncio.wait_for(midway.wait(), 15)
        await sender.stop(timeout_s=0)  # as abrupt as it gets: deliveries in flight are cancelled
    left = journal.outbox_status()
    journal.close()
    assert left and 0 < left[0].waiting < 30

    with Journal.open(journal_path) as reopened:
        watch = Watch()
        sender = sender_for(reopened, default_deliverers(at_server(adapters)), watch, FakeClock())
        sender.start()
        try:
            await watch.until(empty)
        finally:
            await sender.stop()
    assert [copies(server, e) for e in entries] == [1] * 30


# --- refusal, deferral, backoff --------------------------------------------------------------------------


async def test_permanent_refusals_are_kept_counted_and_do_not_block_others(
        demo_network: DemoNetwork, journal: Journal, adapters: dict[str, Adapter]) -> None:
    server = demo_network.servers[1]
    good = append(journal, server, 3)
    nowhere = journal.append(read_entry(server, 9), ["nowhere:1"])
    # a practice whose directory entry points at a path with no FHIR server: HTTP 404 for AuditEvent
    broken = FhirR4Adapter(replace(server.practice, id="broken", base_url=server.url + "/nothing-here"),
                           demo_network.secrets[server.spec.id])
    missing = journal.append(read_entry(server, 10), [practice_destination(broken.practice)])
    lookup = {**adapters, "broken": broken}
    watch, clock = Watch(), FakeClock()
    sender = sender_for(journal, default_deliverers(at_server(lookup)), watch, clock)
    sender.start()
    try:
        status = await watch.until(lambda s: empty(s) and len(s) == 2)
    finally:
        await sender.stop()
        await broken.close()
    assert [copies(server, e) for e in good] == [1, 1, 1]
    assert status["nowhere:1"].refused == 1 and "does not know how to deliver" in status["nowhere:1"].last_error
    assert status[practice_destination(broken.practice)].refused == 1
    assert "HTTP 404" in status[practice_destination(broken.practice)].last_error
    kept = {item.entry.entry_id: item for item in journal.refused_items()}
    assert kept[nowhere.entry_id].entry == nowhere and kept[missing.entry_id].entry == missing
    assert journal.verify().ok


async def test_not_signed_in_waits_then_goes_when_signed_in(demo_network: DemoNetwork, journal: Journal,
                                                            adapters: dict[str, Adapter]) -> None:
    server = demo_network.servers[2]
    destination = practice_destination(server.practice)
    entries = append(journal, server, 3)
    signed_in: dict[str, Adapter] = {}
    watch, clock = Watch(), FakeClock()
    sender = sender_for(journal, default_deliverers(at_server(signed_in, [server.practice])), watch, clock)
    sender.start()
    try:
        status = await watch.until(lambda s: destination in s and s[destination].last_error is not None)
        assert status[destination].waiting == 3 and "Not signed in" in status[destination].last_error
        signed_in[server.spec.id] = adapters[server.spec.id]
        clock.advance(60)
        sender.retry_now(destination)
        await watch.until(empty)
    finally:
        await sender.stop()
    assert [copies(server, e) for e in entries] == [1, 1, 1]


async def test_failed_delivery_is_scheduled_by_backoff_on_the_injected_clock(journal: Journal) -> None:
    entry = journal.append(JournalEntry(action=Action.READ, user=USER, practice_id="x"), ["practice:x"])
    attempts: list[datetime] = []
    clock = FakeClock()

    async def flaky(item: OutboxItem) -> None:
        attempts.append(clock())
        if len(attempts) < 3:
            raise HttpError("busy", "server", status=503)

    watch = Watch()
    sender = OutboxSender(journal, {"practice:": flaky}, clock=clock, rng=random.Random(7), on_status=watch,
                          backoff=Backoff(base_s=2, cap_s=600))
    expected = random.Random(7)
    first_delay = expected.uniform(0, 2)  # item, attempt 0
    expected.uniform(0, 2)  # the destination's rest after its first failure
    second_delay = expected.uniform(0, 4)  # item, attempt 1
    sender.start()
    try:
        await watch.until(lambda s: bool(s) and s["practice:x"].last_error is not None)
        assert len(attempts) == 1
        assert journal.due(clock.now + timedelta(seconds=first_delay - 0.001)) == []
        assert [i.entry.entry_id for i in journal.due(clock.now + timedelta(seconds=first_delay + 0.001))] == \
            [entry.entry_id]
        clock.advance(first_delay + 0.001)
        sender.notify()
        await watch.until(lambda _s: len(attempts) == 2)
        assert journal.due(clock.now + timedelta(seconds=second_delay - 0.001)) == []
        clock.advance(second_delay + 0.001)
        sender.retry_now()
        await watch.until(empty)
    finally:
        await sender.stop()
    assert len(attempts) == 3
    assert journal.outbox_status() == []


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    backoff, rng = Backoff(base_s=2, cap_s=600), random.Random(1)
    assert [backoff.ceiling(n) for n in range(10)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    assert backoff.ceiling(10_000) == 600
    for attempts in range(12):
        delays = [backoff.delay(attempts, rng) for _ in range(200)]
        assert all(0 <= d <= backoff.ceiling(attempts) for d in delays)
        assert max(delays) > backoff.ceiling(attempts) * 0.8  # full jitter uses the whole range
        assert min(delays) < backoff.ceiling(attempts) * 0.2


@pytest.mark.parametrize(("error", "verdict"), [
    (HttpError("x", "server", status=400), Verdict.REFUSED),
    (HttpError("x", "auth", status=403), Verdict.REFUSED),
    (HttpError("x", "not-found", status=404), Verdict.REFUSED),
    (HttpError("x", "server", status=422), Verdict.REFUSED),
    (HttpError("x", "server", status=412), Verdict.DELIVERED),
    (HttpError("x", "auth", status=401), Verdict.RETRY),
    (HttpError("x", "server", status=408), Verdict.RETRY),
    (HttpError("x", "server", status=429), Verdict.RETRY),
    (HttpError("x", "server", status=500), Verdict.RETRY),
    (HttpError("x", "server", status=503), Verdict.RETRY),
    (HttpError("x", "network"), Verdict.RETRY),
    (HttpError("x", "timeout"), Verdict.RETRY),
    (AdapterError("x", "unsupported"), Verdict.REFUSED),
    (DeliveryRefused("x"), Verdict.REFUSED),
    (DeliveryDeferred("x"), Verdict.RETRY),
    (TimeoutError(), Verdict.RETRY),
    (RuntimeError("a bug"), Verdict.RETRY),
])
def test_classify(error: BaseException, verdict: Verdict) -> None:
    assert classify(error) is verdict


async def test_stop_is_prompt_with_a_destination_hanging(demo_network: DemoNetwork, journal: Journal,
                                                         adapters: dict[str, Adapter]) -> None:
    server = demo_network.servers[3]
    append(journal, server, 2)
    watch = Watch()
    sender = sender_for(journal, default_deliverers(at_server(adapters)), watch, FakeClock())
    with server.faults.override(mode="hang", match="/AuditEvent", hang_s=30) as faults:
        sender.start()
        assert await asyncio.to_thread(faults.wait_for_hanging, 1, 10)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await sender.stop(timeout_s=0.2)
        assert loop.time() - started < 2
    assert journal.outbox_status()[0].waiting == 2  # nothing lost: still waiting for next time
