"""What the access policy and patient notifications cost: per decision, per record open, per digest sent.

- A policy decision (no request) against a locality-sized policy: 1,000 users, 20 roles, 10,000
  restricted patients. Goal: negligible beside a round trip (< 0.1 ms).
- Opening a record with a policy (reason required) and the notifier (cross-practice, queue on disk) versus
  without either, at 0 ms added latency so the overhead is not hidden by the network. Goal: < 10 ms.
- Sending due digests through the official GOV.UK Notify client to the demo Notify endpoint.

    python -m tests.perf.bench_policy_notify [--records 30] [--digests 300] [--json FILE]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

try:
    from tests.perf import _common as common
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.perf import _common as common

from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.config import NotifySettings
from app.core.notify import Access, Contact, Notifier, NotifyQueue, NotifySender, notify_client
from app.core.notify.notices import PatientNotices
from app.core.policy import Policy, parse_policy
from app.core.secrets import env_name
from app.core.service import MosaicCore
from app.demo.nhs_numbers import NhsNumberAllocator
from app.demo.notify_server import start_demo_notify

NAME = "bench_policy_notify"
USER = AuditUser(login="user0", display_name="Dr User Nought")
RESEARCHER = AuditUser(login="researcher0", display_name="Dr Research Nought")
STUDY = "bench-study"


def locality_policy(practice_ids: list[str], restricted: int = 10_000, users: int = 1000, roles: int = 20) -> Policy:
    numbers = restricted_numbers(restricted)
    lines = []
    for r in range(roles):
        lines += [f"[roles.role{r}]", 'practices = ["*"]', "reason_required = true",
                  'reasons = ["Direct care", "Extended access"]', ""]
    lines += ["[roles.researcher]", 'practices = ["*"]', "research = true", f'study = "{STUDY}"', "",
              f"[studies.{STUDY}]", f"consented = {json.dumps(numbers[:1000])}", "",
              "[users.researcher0]", 'role = "researcher"', ""]
    for u in range(users):
        lines += [f"[users.user{u}]", f'role = "role{u % roles}"', ""]
    per_practice = max(1, len(numbers) // max(1, len(practice_ids)))
    for i, pid in enumerate(practice_ids):
        chunk = numbers[i * per_practice:(i + 1) * per_practice]
        lines += [f"[practices.{pid}]", "restricted = [" + ", ".join(f'"{n}"' for n in chunk) + "]", ""]
    return parse_policy("\n".join(lines))


def restricted_numbers(count: int) -> list[str]:
    allocator = NhsNumberAllocator(7)
    return [allocator.next() for _ in range(count)]


def bench_decisions(report: common.Report, policy: Policy, practice_id: str, numbers: list[str]) -> None:
    t0 = time.perf_counter()
    runs = 0
    for n in numbers:
        policy.decide("user7", practice_id, n, purpose="Direct care")
        runs += 1
    per_us = (time.perf_counter() - t0) / runs * 1e6
    report.add("Policy decision (1,000 users, 10,000 restricted)", round(per_us, 1), "µs",
               goal="< 100 µs", met=per_us < 100)


async def open_many(core: MosaicCore, practice_id: str, patients: list, purpose: str | None) -> list[float]:
    walls = []
    for p in patients:
        await core.resolve_patient(practice_id, p.nhs_number)
        t0 = time.perf_counter()
        await core.open_record(practice_id, p.local_id, purpose=purpose)
        walls.append(common.ms(time.perf_counter() - t0))
    return walls


async def bench_opens(report: common.Report, network, policy: Policy, records: int) -> None:
    server = network.servers[0]
    patients = [p for p in server.population if p.nhs_number][:records]
    home = common.isolate()
    notify = start_demo_notify()
    try:
        plain = MosaicCore(network.practices, journal=Journal.open(home / "plain.sqlite"), user=USER, policy=None,
                           notify=None)
        settings = NotifySettings(rule="cross-practice", sms_template_id=notify.sms_template,
                                  base_url=notify.base_url, ods_code="Y77777", organisation="Bench hub")
        governed = MosaicCore(network.practices, journal=Journal.open(home / "governed.sqlite"), user=USER,
                              policy=policy, notify=None)
        governed.use_notices(PatientNotices(settings, is_restricted=governed.withholds_notice,
                                            queue_path=home / "notify.sqlite",
                                            client=lambda: notify_client(settings, notify.api_key)))
        for core in (plain, governed):
            await core.sign_in()
        await open_many(plain, server.spec.id, patients[:3], None)  # warm both paths
        await open_many(governed, server.spec.id, patients[:3], "Direct care")
        os.environ[env_name(f"study-{STUDY}")] = "bench-study-key-" + "k" * 32
        research = MosaicCore(network.practices, journal=Journal.open(home / "research.sqlite"), user=RESEARCHER,
                              policy=policy, notify=None)
        await research.sign_in()
        await open_many(research, server.spec.id, patients[:3], None)
        without, with_both, pseudonymised = [], [], []
        for patient in patients:  # interleaved, so that drift (the outboxes' deliveries) falls on all three alike
            without += await open_many(plain, server.spec.id, [patient], None)
            with_both += await open_many(governed, server.spec.id, [patient], "Direct care")
            pseudonymised += await open_many(research, server.spec.id, [patient], None)
        for core in (plain, governed, research):
            await core.close()
    finally:
        notify.stop()
    base, full = common.median(without), common.median(with_both)
    report.add(f"Open record, no policy, no notifier (median of {len(without)})", base, "ms")
    report.add("Open record, policy + notifier queueing (median)", full, "ms")
    report.add("Overhead of policy + notifier per record open", full - base, "ms", goal="< 10 ms",
               met=full - base < 10)
    research = common.median(pseudonymised)
    report.add("Open record in the research view, pseudonymised (median)", research, "ms")
    report.add("Overhead of the research view per record open", research - base, "ms", goal="< 10 ms",
               met=research - base < 10)


async def bench_digests(report: common.Report, digests: int) -> None:
    home = common.isolate()
    notify = start_demo_notify()
    try:
        settings = NotifySettings(rule="every", sms_template_id=notify.sms_template, base_url=notify.base_url)
        queue = NotifyQueue.open(home / "digests.sqlite")
        when = datetime.now(UTC) - timedelta(days=3)
        notifier = Notifier(queue, settings, clock=lambda: when)
        for i, number in enumerate(restricted_numbers(digests)):
            notifier.record_access(Access(
                entry_id=f"bench-{i}", nhs_number=number, registered_practice_id="Y91001",
                registered_practice_name="Riverside Surgery", accessor_name="Dr User Nought", accessor_org_id="Y7",
                accessor_org_name="Bench hub", accessed_at=when, purpose="Direct care",
                contact=Contact(phone=f"07700 9{i:05d}")))
        sender = NotifySender(queue, settings, notify_client(settings, notify.api_key))
        t0 = time.perf_counter()
        sent = 0
        while True:
            result = await sender.send_due()
            if not (result.delivered or result.retrying):
                break
            sent += len(result.delivered)
        elapsed = time.perf_counter() - t0
    finally:
        notify.stop()
    report.add(f"Digests sent through the Notify client ({sent})", round(sent / elapsed, 1), "per s",
               note="one HTTPS-less loopback request each; GOV.UK Notify allows 3,000 per minute")


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=60, help="records to open each way (default 60)")
    p.add_argument("--digests", type=int, default=300, help="digests to send (default 300)")
    args = p.parse_args(argv)
    report = common.Report(NAME)
    print(f"== {NAME} ==", flush=True)
    with common.demo_network(5, patients=2000, latency_ms=0) as network:
        ids = [s.spec.id for s in network.servers]
        policy = locality_policy(ids)
        sample = restricted_numbers(2000)
        bench_decisions(report, policy, ids[0], sample)
        asyncio.run(bench_opens(report, network, policy, args.records))
    asyncio.run(bench_digests(report, args.digests))
    report.save(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
