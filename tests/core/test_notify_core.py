"""Telling the patient, end to end: a record opened through the core reaches the patient's daily digest
and the demo GOV.UK Notify server, from the real demo practices (FHIR R4 and GP Connect) over loopback."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.base import AdapterError
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.audit.outbox import Backoff
from app.core.config import NotifySettings
from app.core.notify.notices import PatientNotices
from app.core.notify.queue import DELIVERED, SUPPRESSED, NotifyQueue
from app.core.policy import PolicyError, parse_policy
from app.core.service import MosaicCore
from app.demo.notify_server import DemoNotify
from app.demo.records import do_not_notify_demo

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")
HUB_ODS = "Y77777"  # the extended-access hub this workstation belongs to: not any demo practice


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def notify():
    server = DemoNotify()
    server.sms_template = server.add_template("((practice)): on ((date)) your GP record was opened:\n((accesses))")
    with server:
        yield server


def settings_for(notify: DemoNotify, rule: str = "cross-practice", **kw) -> NotifySettings:
    values = {"ods_code": HUB_ODS, "organisation": "Leeds Central extended-access hub", **kw}
    return NotifySettings(rule=rule, sms_template_id=notify.sms_template, base_url=notify.base_url, **values)


async def open_core(network, tmp_path: Path, notify: DemoNotify, *, policy=None, **kw
                    ) -> tuple[MosaicCore, PatientNotices, Clock, Journal]:
    clock = Clock()
    settings = settings_for(notify, **kw)
    journal = Journal.open(tmp_path / "journal.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=policy, notify=None)
    notices = PatientNotices(settings, is_restricted=core.withholds_notice, queue_path=tmp_path / "notify.sqlite",
                             client=lambda: _client(settings, notify), clock=clock, poll_s=0.2)
    core.use_notices(notices)
    await core.sign_in()
    return core, notices, clock, journal


def _client(settings: NotifySettings, notify: DemoNotify):
    from app.core.notify.sender import notify_client

    return notify_client(settings, notify.api_key)


def patient(server, *, mobile: bool = True, marked: bool = False):
    return next(p for p in server.population if p.nhs_number and p.resource is None
                and p.phone.startswith("07") == mobile and do_not_notify_demo(p) == marked)


def restricting(practice_id: str, nhs_number: str, *, notify_restricted: bool = False):
    """A policy under which jbloggs (a clinician) needs break-glass for this one patient."""
    return parse_policy(f"""
[roles.clinician]
practices = ["*"]
[users.jbloggs]
role = "clinician"
[practices.{practice_id}]
restricted = ["{nhs_number}"]
notify_restricted = {str(notify_restricted).lower()}
""")


async def queue_of(notices: PatientNotices, core: MosaicCore | None = None) -> NotifyQueue:
    """The queue, once what the core is still queueing has landed."""
    if core is not None:
        await core.settle_notices()
    return (await notices.notifier()).queue


async def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_cross_practice_open_reaches_the_patient_in_the_next_days_digest(secrets_env, tmp_path, notify):
    core, notices, clock, _journal = await open_core(secrets_env, tmp_path, notify)
    server = secrets_env.servers[0]
    p = patient(server)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        record = await core.open_record(server.spec.id, p.local_id, purpose="Extended-access appointment")
        assert record.contact is None  # contact details never leave the core
        queue = await queue_of(notices, core)
        assert queue.counts() == {"collecting": 1}
        assert notify.received == []  # a digest, not a message per click
        due = queue.next_due()
        assert due is not None and due > clock.now, "not due until the digest's time, however often the sender looks"
        clock.now += timedelta(days=2)  # past 18:00 the next day
        notices.sender.wake()
        await wait_for(lambda: notify.received)
    finally:
        await core.close()
    [message] = notify.received
    assert message["type"] == "sms" and message["to"] == p.phone
    body = message["response"]["content"]["body"]
    assert server.spec.name in body
    assert "Dr Jo Bloggs, Leeds Central extended-access hub, for Extended-access appointment" in body
    digest = queue.get(message["request"]["reference"])
    assert digest.status == DELIVERED and digest.phone is None and digest.email is None  # contact not kept


async def test_same_organisation_is_not_told_under_cross_practice(secrets_env, tmp_path, notify):
    server = secrets_env.servers[0]
    core, notices, _clock, _journal = await open_core(secrets_env, tmp_path, notify)
    core.notify_settings = settings_for(notify, ods_code=server.spec.ods_code.lower())
    p = patient(server)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        await core.open_record(server.spec.id, p.local_id)
        assert (await queue_of(notices, core)).counts() == {}
        core.notify_settings = settings_for(notify, rule="every", ods_code=server.spec.ods_code)
        notices.settings = notices._notifier.settings = core.notify_settings
        await core.open_record(server.spec.id, p.local_id)
        assert (await queue_of(notices, core)).counts() == {"collecting": 1}
    finally:
        await core.close()


async def test_do_not_notify_patient_is_never_messaged_and_no_contact_is_kept(secrets_env, tmp_path, notify):
    core, notices, clock, _journal = await open_core(secrets_env, tmp_path, notify)
    server = secrets_env.servers[2]
    p = patient(server, marked=True)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        await core.open_record(server.spec.id, p.local_id)
        queue = await queue_of(notices, core)
        assert queue.counts() == {"collecting": 1}
        clock.now += timedelta(days=2)
        notices.sender.wake()
        await wait_for(lambda: queue.counts() == {SUPPRESSED: 1})
    finally:
        await core.close()
    assert notify.received == []
    with NotifyQueue.open(tmp_path / "notify.sqlite")._tx() as con:
        assert con.execute("SELECT phone, email, do_not_notify FROM digest").fetchall() == [(None, None, 1)]


@pytest.mark.parametrize("tell", [False, True])
async def test_restricted_patient_is_told_only_when_the_policy_says_so(secrets_env, tmp_path, notify, tell):
    server = secrets_env.servers[1]
    p = patient(server)
    policy = restricting(server.spec.id, p.nhs_number, notify_restricted=tell)
    core, notices, clock, _journal = await open_core(secrets_env, tmp_path, notify, policy=policy)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        await core.open_record(server.spec.id, p.local_id, purpose="Safeguarding concern raised by 111",
                               break_glass=True)
        clock.now += timedelta(days=2)
        notices.sender.wake()
        queue = await queue_of(notices, core)
        await wait_for(lambda: "collecting" not in queue.counts())
    finally:
        await core.close()
    assert queue.counts() == ({DELIVERED: 1} if tell else {SUPPRESSED: 1})
    assert len(notify.received) == (1 if tell else 0)


async def test_denied_and_failed_opens_tell_nobody(secrets_env, tmp_path, notify):
    server = secrets_env.servers[1]
    p = patient(server)
    policy = restricting(server.spec.id, p.nhs_number)
    core, notices, _clock, journal = await open_core(secrets_env, tmp_path, notify, policy=policy)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        with pytest.raises(PolicyError):
            await core.open_record(server.spec.id, p.local_id)  # restricted, no break-glass
        other = patient(secrets_env.servers[0])
        await core.resolve_patient(secrets_env.servers[0].spec.id, other.nhs_number)
        with secrets_env.servers[0].faults.override(mode="http-500"), pytest.raises(AdapterError):
            await core.open_record(secrets_env.servers[0].spec.id, other.local_id)
        assert (await queue_of(notices, core)).counts() == {}
    finally:
        await core.close()
    outcomes = {e.outcome for e in journal.query(actions=[Action.READ, Action.BREAK_GLASS])}
    assert outcomes == {Outcome.DENIED, Outcome.FAILURE}  # both journaled, neither told


@pytest.mark.parametrize("how", ["read-only file", "folder in its place"])
async def test_a_queue_that_cannot_be_written_does_not_hide_the_record(secrets_env, tmp_path, notify, how):
    if how == "read-only file" and os.geteuid() == 0:
        pytest.skip("root writes through file modes")
    core, notices, _clock, journal = await open_core(secrets_env, tmp_path, notify)
    if how == "read-only file":
        (tmp_path / "notify.sqlite").chmod(stat.S_IRUSR)
    else:
        notices._notifier = None
        notices._queue_path = tmp_path / "a-folder"
        notices._queue_path.mkdir()
    server = secrets_env.servers[0]
    p = patient(server)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        record = await core.open_record(server.spec.id, p.local_id)
    finally:
        await core.close()
    assert record.sections and notices.failures == 1
    assert [e.action for e in journal.query(patient_nhs_number=p.nhs_number) if e.action is Action.READ]


async def test_gp_connect_practice_contact_and_mark_come_from_the_structured_record(gpc_network, tmp_path, notify,
                                                                                      monkeypatch):
    from app.core.secrets import env_name

    for practice_id, secret in gpc_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    core, notices, clock, _journal = await open_core(gpc_network, tmp_path, notify)
    server = gpc_network.servers[1]
    told, marked = patient(server), patient(server, marked=True)
    try:
        for p in (told, marked):
            await core.resolve_patient(server.spec.id, p.nhs_number)
            await core.open_record(server.spec.id, p.nhs_number)
        clock.now += timedelta(days=2)
        notices.sender.wake()
        queue = await queue_of(notices, core)
        await wait_for(lambda: queue.counts() == {DELIVERED: 1, SUPPRESSED: 1})
    finally:
        await core.close()
    assert [m["to"] for m in notify.received] == [told.phone]


async def test_notify_outage_at_digest_time_is_retried_until_delivered(secrets_env, tmp_path, notify):
    core, notices, clock, _journal = await open_core(secrets_env, tmp_path, notify)
    notices.sender.backoff = Backoff(base_s=0.1, cap_s=0.1)
    server = secrets_env.servers[0]
    p = patient(server)
    notify.fail_next(3)
    try:
        await core.resolve_patient(server.spec.id, p.nhs_number)
        await core.open_record(server.spec.id, p.local_id)
        clock.now += timedelta(days=2)
        queue = await queue_of(notices, core)
        for _ in range(10):  # three refusals, then delivered: each round lets the next attempt fall due
            clock.now += timedelta(seconds=1)
            notices.sender.wake()
            # the sender has dealt with the due digest: delivered, or put back for a later attempt
            await wait_for(lambda: (due := queue.next_due()) is None or due > clock.now)
            if queue.next_due() is None:
                break
        await wait_for(lambda: queue.counts() == {DELIVERED: 1})
    finally:
        await core.close()
    assert len(notify.received) == 1
