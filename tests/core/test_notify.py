"""Telling the patient: daily digests through the official GOV.UK Notify client to the demo Notify server."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.config import ConfigError, NotifySettings, load_notify_settings
from app.core.notify import (
    Access,
    Contact,
    Decision,
    Notifier,
    NotifyQueue,
    NotifySender,
    contact_from_patient,
    do_not_notify,
    notify_client,
)
from app.demo.notify_server import DemoNotify
from app.demo.population import Population
from app.demo.practices import practice_specs

T0 = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)  # 09:30 in London (GMT)
NHS = "9434765919"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def notify():
    server = DemoNotify()
    server.sms_template = server.add_template("((practice)): on ((date)) your record was opened ((count)) "
                                              "time(s):\n((accesses))")
    server.email_template = server.add_template("Dear patient,\n((accesses))", subject="Who opened your record")
    with server:
        yield server


def setup(tmp_path: Path, notify: DemoNotify, rule: str = "cross-practice", **kw):
    clock = Clock(T0)
    settings = NotifySettings(rule=rule, sms_template_id=notify.sms_template, email_template_id=notify.email_template,
                              base_url=notify.base_url, digest_hour=18)
    queue = NotifyQueue.open(tmp_path / "notify.sqlite")
    notifier = Notifier(queue, settings, clock=clock, **kw)
    sender = NotifySender(queue, settings, notify_client(settings, notify.api_key), clock=clock, **kw)
    return clock, queue, notifier, sender


def access(n: int, *, org: str = "B82002", minutes: int = 0, nhs: str = NHS, contact: Contact | None = None,
           dnn: bool = False, purpose: str | None = "direct care") -> Access:
    return Access(entry_id=f"e{n}", nhs_number=nhs, registered_practice_id="A81001",
                  registered_practice_name="Riverside Surgery", accessor_name=f"Dr User {n}", accessor_org_id=org,
                  accessor_org_name="Hillside Medical Centre" if org != "A81001" else "Riverside Surgery",
                  accessed_at=T0 + timedelta(minutes=minutes), purpose=purpose,
                  contact=contact or Contact(phone="07700 900123", email="pat@example.org"), do_not_notify=dnn)


def rows(tmp_path: Path) -> list[sqlite3.Row]:
    con = sqlite3.connect(tmp_path / "notify.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM digest ORDER BY created_at, digest_id").fetchall()
    finally:
        con.close()


async def test_digest_goes_at_digest_hour_next_day_with_every_access(tmp_path, notify) -> None:
    clock, queue, notifier, sender = setup(tmp_path, notify)
    assert notifier.record_access(access(1)) is Decision.QUEUED
    assert notifier.record_access(access(2, minutes=200, purpose=None)) is Decision.QUEUED
    assert notifier.record_access(access(2, minutes=200)) is Decision.ALREADY_QUEUED  # same entry: once
    assert notifier.record_access(access(3, minutes=60, nhs="9000000009")) is Decision.QUEUED
    assert len(rows(tmp_path)) == 2  # one digest per patient per day, not one message per click

    for now in (T0 + timedelta(hours=12), datetime(2025, 3, 13, 17, 59, tzinfo=UTC)):
        clock.now = now
        assert (await sender.send_due()).delivered == []
    assert notify.received == []
    clock.now = datetime(2025, 3, 13, 18, 0, tzinfo=UTC)  # 18:00 London the next day
    result = await sender.send_due()
    assert len(result.delivered) == 2 and len(notify.received) == 2
    # the first patient's digest (two accesses); the two digests share a creation time, so pick by content
    sms = next(r for r in notify.received if r["request"]["personalisation"]["count"] == "2")
    assert sms["request"]["reference"] in {row["digest_id"] for row in rows(tmp_path)}
    assert sms["type"] == "sms" and sms["to"] == "07700 900123"
    assert sms["request"]["template_id"] == notify.sms_template
    values = sms["request"]["personalisation"]
    assert values["accesses"] == ["09:30: Dr User 1, Hillside Medical Centre, for direct care",
                                  "12:50: Dr User 2, Hillside Medical Centre, for reason not given"]
    assert values["date"] == "12 March 2025" and values["count"] == "2" and values["practice"] == "Riverside Surgery"
    assert values["who"] == "Dr User 1, Dr User 2" and values["organisation"] == "Hillside Medical Centre"
    assert "Riverside Surgery: on 12 March 2025 your record was opened 2 time(s):\n* 09:30" in \
        sms["response"]["content"]["body"]
    assert (await sender.send_due()).delivered == []  # nothing twice


async def test_digest_hour_is_local_time_in_summer(tmp_path, notify) -> None:
    clock, _queue, notifier, sender = setup(tmp_path, notify)
    summer = datetime(2025, 7, 1, 22, 30, tzinfo=UTC)  # 23:30 BST on 1 July: still 1 July locally
    notifier.record_access(Access(**{**access(1).__dict__, "accessed_at": summer}))
    clock.now = datetime(2025, 7, 2, 16, 59, tzinfo=UTC)
    assert (await sender.send_due()).delivered == []
    clock.now = datetime(2025, 7, 2, 17, 0, tzinfo=UTC)  # 18:00 BST
    assert len((await sender.send_due()).delivered) == 1
    assert notify.received[0]["request"]["personalisation"]["date"] == "1 July 2025"


@pytest.mark.parametrize(("rule", "same", "other"), [("every", True, True), ("cross-practice", False, True),
                                                     ("never", False, False)])
async def test_rules(tmp_path, notify, rule, same, other) -> None:
    _clock, _queue, notifier, _sender = setup(tmp_path, notify, rule=rule)
    assert (notifier.record_access(access(1, org="A81001")) is Decision.QUEUED) is same
    assert (notifier.record_access(access(2, org="B82002", nhs="9000000009")) is Decision.QUEUED) is other
    assert len(rows(tmp_path)) == same + other


async def test_do_not_notify_suppresses_the_whole_day_and_keeps_no_contact(tmp_path, notify) -> None:
    clock, _queue, notifier, sender = setup(tmp_path, notify)
    assert notifier.record_access(access(1)) is Decision.QUEUED
    assert notifier.record_access(access(2, minutes=5, dnn=True)) is Decision.DO_NOT_NOTIFY  # marked since
    assert notifier.record_access(access(3, minutes=9)) is Decision.QUEUED  # a later access still can't send
    (row,) = rows(tmp_path)
    assert row["phone"] is None and row["email"] is None and row["do_not_notify"] == 1
    clock.now = T0 + timedelta(days=2)
    result = await sender.send_due()
    assert result.suppressed == [row["digest_id"]] and notify.received == []
    assert rows(tmp_path)[0]["status"] == "suppressed"


async def test_restricted_patients_only_when_the_policy_says_so(tmp_path, notify) -> None:
    restricted = {NHS}
    clock, _queue, notifier, sender = setup(tmp_path, notify, is_restricted=restricted.__contains__)
    assert notifier.record_access(access(1)) is Decision.RESTRICTED
    assert rows(tmp_path)[0]["phone"] is None
    clock.now = T0 + timedelta(days=2)
    assert len((await sender.send_due()).suppressed) == 1 and notify.received == []

    tmp2 = tmp_path / "allowed"
    tmp2.mkdir()
    clock, _queue, notifier, sender = setup(tmp2, notify, is_restricted=restricted.__contains__,
                                            notify_restricted=True)
    assert notifier.record_access(access(1)) is Decision.QUEUED
    clock.now = T0 + timedelta(days=2)
    assert len((await sender.send_due()).delivered) == 1


async def test_restricted_after_queueing_is_suppressed_at_send_time(tmp_path, notify) -> None:
    restricted: set[str] = set()
    clock, _queue, notifier, sender = setup(tmp_path, notify, is_restricted=restricted.__contains__)
    notifier.record_access(access(1))
    restricted.add(NHS)
    clock.now = T0 + timedelta(days=2)
    assert len((await sender.send_due()).suppressed) == 1 and notify.received == []
    assert rows(tmp_path)[0]["phone"] is None


async def test_outage_then_delivered_exactly_once_and_contact_removed(tmp_path, notify) -> None:
    clock, queue, notifier, sender = setup(tmp_path, notify)
    notifier.record_access(access(1, contact=Contact(phone="0113 496 0000", email="pat@example.org")))  # landline
    clock.now = datetime(2025, 3, 13, 18, 0, tzinfo=UTC)
    notify.down = True
    for _ in range(3):
        result = await sender.send_due()
        assert len(result.retrying) == 1
        clock.now += timedelta(hours=2)  # past any backoff (cap 1 h)
    row = rows(tmp_path)[0]
    assert row["status"] == "sending" and row["attempts"] == 3 and row["email"] == "pat@example.org"
    assert "503" in row["last_error"]
    notify.down = False
    result = await sender.send_due()
    assert len(result.delivered) == 1
    assert [(r["type"], r["to"]) for r in notify.received] == [("email", "pat@example.org")]
    clock.now += timedelta(days=3)
    assert (await sender.send_due()).delivered == [] and len(notify.received) == 1
    row = rows(tmp_path)[0]
    assert row["status"] == "delivered" and row["notify_id"] == notify.received[0]["response"]["id"]
    assert row["phone"] is None and row["email"] is None  # not kept after delivery
    assert row["channel"] == "email" and notify.received[0]["request"]["reference"] == row["digest_id"]
    assert queue.counts() == {"delivered": 1}


async def test_a_lost_201_is_not_sent_twice(tmp_path, notify, monkeypatch) -> None:
    clock, _queue, notifier, sender = setup(tmp_path, notify)
    notifier.record_access(access(1))
    clock.now = datetime(2025, 3, 14, tzinfo=UTC)
    client = sender._get_client()
    real = client.send_sms_notification

    def reached_notify_but_reply_lost(*args, **kwargs):
        real(*args, **kwargs)
        raise ConnectionError("connection reset")

    monkeypatch.setattr(client, "send_sms_notification", reached_notify_but_reply_lost)
    assert len((await sender.send_due()).retrying) == 1
    monkeypatch.setattr(client, "send_sms_notification", real)
    clock.now += timedelta(hours=2)
    assert len((await sender.send_due()).delivered) == 1
    assert len(notify.received) == 1  # found by its reference, not sent again
    assert rows(tmp_path)[0]["notify_id"] == notify.received[0]["response"]["id"]


async def test_bad_request_is_refused_for_good_and_forgets_contact(tmp_path, notify) -> None:
    clock, _queue, notifier, sender = setup(tmp_path, notify)
    sender.settings = NotifySettings(rule="every", sms_template_id="00000000-0000-0000-0000-000000000000",
                                     base_url=notify.base_url)
    notifier.record_access(access(1))
    clock.now = T0 + timedelta(days=2)
    assert len((await sender.send_due()).refused) == 1
    row = rows(tmp_path)[0]
    assert row["status"] == "refused" and row["phone"] is None and "Template not found" in row["outcome_detail"]


async def test_demo_notify_checks_the_jwt(notify) -> None:
    from notifications_python_client.errors import HTTPError
    from notifications_python_client.notifications import NotificationsAPIClient

    wrong = NotificationsAPIClient(f"x-{notify.service_id}-{'0' * 36}", base_url=notify.base_url)
    with pytest.raises(HTTPError) as err:
        wrong.send_sms_notification("07700900123", notify.sms_template, {"practice": "", "date": "", "count": "",
                                                                         "accesses": []})
    assert err.value.status_code == 403 and notify.received == []


def test_demo_patients_carry_the_do_not_notify_mark() -> None:
    population = Population.generate(practice_specs(1)[0], 200)
    marked = [p for p in (population.at(i) for i in range(len(population)))
              if do_not_notify(population.patient_resource(p))]
    assert 5 < len(marked) < 60
    again = Population.generate(practice_specs(1)[0], 200)
    assert [p.local_id for p in marked] == [p.local_id for p in (again.at(i) for i in range(len(again)))
                                            if do_not_notify(again.patient_resource(p))]
    unmarked = next(p for p in (population.at(i) for i in range(len(population))) if p not in marked)
    resource = population.patient_resource(unmarked)
    assert not do_not_notify(resource)
    assert contact_from_patient(resource).phone == unmarked.phone
    flag = {"resourceType": "Flag", "status": "active", "code": {"coding": [
        {"system": "https://fhir.mosaic.example.nhs.uk/CodeSystem/contact-restriction",
         "code": "do-not-contact-sms-email"}]}}
    assert do_not_notify(resource, [flag])


def test_notify_settings(tmp_path, machine_dir) -> None:
    assert load_notify_settings() == NotifySettings(rule="never")
    machine_dir.mkdir()
    file = machine_dir / "practices.toml"  # the machine-wide file: the only place [notify] is read from
    file.write_text('[notify]\nrule = "cross-practice"\nsms_template_id = "t1"\ndigest_hour = 9\n')
    settings = load_notify_settings()
    assert (settings.rule, settings.sms_template_id, settings.digest_hour) == ("cross-practice", "t1", 9)
    assert settings.base_url == "https://api.notifications.service.gov.uk"
    mine = tmp_path / "mine.toml"
    mine.write_text('[notify]\nrule = "never"\n')
    with pytest.raises(ConfigError, match="machine-wide"):  # a --config file cannot turn notices off
        load_notify_settings(mine)
    for bad in ('rule = "sometimes"', 'digest_hour = 24', 'api_key = "x"', 'rule = "every"', 'ods_code = "Y!"'):
        file.write_text(f"[notify]\n{bad}\n")
        with pytest.raises(ConfigError):
            load_notify_settings()
