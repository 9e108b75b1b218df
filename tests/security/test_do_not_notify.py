"""Issue 10, class 4 — the patient's wishes ignored.

The do-not-notify mark is read on every path a record arrives by — FHIR $everything, the per-type
fetch (which must ask for `Flag`), GP Connect's structured record — and in every form (a Patient
extension, an active Flag). When the mark cannot be read (the Flag search failed, the server does not
offer Flag), nobody is told: decided once, where the core queues the access for the patient's digest.
Real demo practices over loopback HTTP; the demo is changed in-process to keep the mark only as a Flag,
as many practice systems do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.config import NotifySettings
from app.core.notify.notices import PatientNotices
from app.core.service import MosaicCore
from app.demo.fhir_api import FhirApi
from app.demo.network import DemoNetwork
from app.demo.notify_server import DemoNotify
from app.demo.population import Population
from app.demo.records import do_not_notify_demo

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")
HUB_ODS = "Y77777"  # not any demo practice: under "cross-practice" every open is one the patient is told of
EVERYTHING, PER_TYPE = 0, 1  # the demo's first practice offers $everything, the second does not


@pytest.fixture
def notify():
    """A local GOV.UK Notify (no digest is due during a test: they go the next evening)."""
    server = DemoNotify()
    server.sms_template = server.add_template("((practice)): on ((date)) your GP record was opened:\n((accesses))")
    with server:
        yield server


def settings(notify: DemoNotify) -> NotifySettings:
    return NotifySettings(rule="cross-practice", sms_template_id=notify.sms_template, base_url=notify.base_url,
                          ods_code=HUB_ODS, organisation="Leeds Central extended-access hub")


@pytest.fixture
def flag_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The practices keep the do-not-notify mark as a Flag only: the Patient resource carries no extension."""
    original = Population.patient_resource

    def without_extension(self: Population, patient: Any) -> dict[str, Any]:
        resource = dict(original(self, patient))
        resource.pop("extension", None)
        return resource

    monkeypatch.setattr(Population, "patient_resource", without_extension)


def patient(server, *, marked: bool) -> Any:
    return next(p for p in server.population if p.nhs_number and p.resource is None
                and p.phone.startswith("07") and do_not_notify_demo(p) == marked)


async def digest_rows(network, tmp_path: Path, opens: list[tuple[int, Any]], notify: DemoNotify
                      ) -> list[tuple[str, int]]:
    """Open each (practice index, patient) through the core; the digest rows queued: (NHS number, suppressed)."""
    from app.core.notify.sender import notify_client

    journal = Journal.open(tmp_path / "journal.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=None, notify=None)
    config = settings(notify)
    notices = PatientNotices(config, is_restricted=core.withholds_notice, queue_path=tmp_path / "notify.sqlite",
                             client=lambda: notify_client(config, notify.api_key))
    core.use_notices(notices)
    try:
        await core.sign_in()
        for index, p in opens:
            server = network.servers[index]
            await core.resolve_patient(server.spec.id, p.nhs_number)
            local_id = p.nhs_number if server.gpconnect is not None else p.local_id
            await core.open_record(server.spec.id, local_id)
        await core.settle_notices()
    finally:
        await core.close()
    with sqlite3.connect(tmp_path / "notify.sqlite") as con:
        return sorted(con.execute("SELECT nhs_number, do_not_notify FROM digest").fetchall())


async def test_per_type_fetch_reads_the_mark_held_as_a_flag(network, flag_only, tmp_path, notify) -> None:
    server = network.servers[PER_TYPE]
    assert not server.api.supports_everything
    marked, unmarked = patient(server, marked=True), patient(server, marked=False)
    rows = await digest_rows(network, tmp_path, [(PER_TYPE, marked), (PER_TYPE, unmarked)], notify)
    assert dict(rows) == {marked.nhs_number: 1, unmarked.nhs_number: 0}  # told: only the unmarked patient


async def test_everything_reads_the_mark_held_as_a_flag(network, flag_only, tmp_path, notify) -> None:
    server = network.servers[EVERYTHING]
    assert server.api.supports_everything
    marked, unmarked = patient(server, marked=True), patient(server, marked=False)
    rows = await digest_rows(network, tmp_path, [(EVERYTHING, marked), (EVERYTHING, unmarked)], notify)
    assert dict(rows) == {marked.nhs_number: 1, unmarked.nhs_number: 0}


async def test_a_failed_flag_search_tells_nobody(network, flag_only, tmp_path, notify) -> None:
    """The Flag search fails: the mark is unknown, so even a patient without it is not told today."""
    server = network.servers[PER_TYPE]
    unmarked = patient(server, marked=False)
    with server.faults.override(mode="http-500", match="/Flag"):
        rows = await digest_rows(network, tmp_path, [(PER_TYPE, unmarked)], notify)
    assert rows == [(unmarked.nhs_number, 1)]


async def test_a_server_without_flag_tells_nobody(network, flag_only, tmp_path, monkeypatch, notify) -> None:
    """A practice whose server does not offer Flag at all: the mark cannot be read, nobody is told."""
    searchable = FhirApi.searchable_types
    monkeypatch.setattr(FhirApi, "searchable_types", lambda self: searchable(self) - {"Flag"})
    server = network.servers[PER_TYPE]
    unmarked = patient(server, marked=False)
    rows = await digest_rows(network, tmp_path, [(PER_TYPE, unmarked)], notify)
    assert rows == [(unmarked.nhs_number, 1)]


async def test_the_mark_as_a_patient_extension_on_every_path(tmp_path, monkeypatch, notify) -> None:
    """The extension form, on $everything, per-type and GP Connect (whose record carries no Flags)."""
    from app.core.secrets import env_name

    network = DemoNetwork.start(practices=3, patients=80, gp_connect=(2,))
    try:
        for practice_id, secret in network.secrets.items():
            monkeypatch.setenv(env_name(practice_id), secret)
        opens = [(i, patient(network.servers[i], marked=m)) for i in (0, 1, 2) for m in (True, False)]
        rows = await digest_rows(network, tmp_path, opens, notify)
    finally:
        network.stop()
    assert dict(rows) == {p.nhs_number: int(do_not_notify_demo(p)) for _i, p in opens}
