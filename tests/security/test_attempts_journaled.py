"""Issue 10, class 11 — attempts that leave no journal entry.

An intent entry is committed before any request for patient data leaves; the outcome follows, naming it.
Whatever an adapter raises while reading a practice's reply (RecursionError from deeply nested JSON,
KeyError, TypeError, ValueError, a JSON decode error) comes out of the core as an AdapterError naming the
practice — journaled, never a traceback. And a `mosaic show` killed with SIGKILL while the practice is
still serving the record leaves its intent in the journal.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.base import AdapterError, available_adapters
from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.model import PatientQuery, PatientRecord
from app.core.service import MosaicCore
from app.demo.fhir_json import Reply
from app.demo.network import DemoNetwork

try:  # `mosaic` in a subprocess, with this test's machine folder (tests/machine.py), where the suite has one
    from tests.machine import CLI as MOSAIC
except ImportError:
    MOSAIC = [sys.executable, "-m", "app.cli"]

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")
EVERYTHING, PER_TYPE = 0, 1
DEPTH = 100_000


def nested(depth: int = DEPTH) -> Reply:
    """A FHIR reply nested far deeper than any resource: `{"a":[[[[…]]]]}`."""
    return Reply(200, b'{"resourceType":"Bundle","entry":' + b"[" * depth + b"]" * depth + b"}")


def answering(server: Any, monkeypatch: pytest.MonkeyPatch, needle: str, reply: Reply) -> None:
    """The practice answers every request whose path contains `needle` with `reply` (restored after the test)."""
    dispatch = server.api.dispatch
    monkeypatch.setattr(server.api, "dispatch", lambda request: reply if needle in request.path else dispatch(request))


def linked(journal: Journal, practice_id: str, action: Action) -> tuple[Any, Any]:
    """The one intent and the one outcome entry of `action` at this practice; the outcome names the intent."""
    [intent] = journal.query(practice_id=practice_id, actions=[Action.INTENT])
    [outcome] = journal.query(practice_id=practice_id, actions=[action])
    assert outcome.details["intent"] == intent.entry_id and intent.seq < outcome.seq
    assert intent.details["doing"] == str(action)
    return intent, outcome


async def failed_open(network: Any, journal: Journal, practice_id: str, local_id: str) -> AdapterError:
    """Open a record that cannot be read, through a core journaling to `journal`; the error it raised."""
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        with pytest.raises(AdapterError) as info:
            await core.open_record(practice_id, local_id)
    finally:
        await core.close()
    return info.value


@pytest.mark.parametrize("index", [EVERYTHING, PER_TYPE], ids=["fhir-everything", "fhir-per-type"])
async def test_a_deeply_nested_record_is_a_named_error_and_journaled(network, tmp_path, monkeypatch, index) -> None:
    server = network.servers[index]
    patient = next(p for p in server.population if p.nhs_number)
    answering(server, monkeypatch, f"/Patient/{patient.local_id}", nested())  # the read and $everything
    journal = Journal.open(tmp_path / "j.sqlite")
    error = await failed_open(network, journal, server.spec.id, patient.local_id)
    assert server.spec.name in error.message and error.kind == "bad-reply"
    intent, outcome = linked(journal, server.spec.id, Action.READ)
    assert intent.patient_local_id == outcome.patient_local_id == patient.local_id
    assert outcome.outcome is Outcome.FAILURE and server.spec.name in (outcome.outcome_detail or "")


@pytest.mark.parametrize("failure", [RecursionError("maximum recursion depth exceeded"), KeyError("entry"),
                                     TypeError("'NoneType' object is not subscriptable"), ValueError("bad date"),
                                     json.JSONDecodeError("Expecting value", "{", 1)],
                         ids=lambda e: type(e).__name__)
async def test_any_parser_failure_of_an_adapter_is_a_named_error(network, tmp_path, monkeypatch, failure) -> None:
    """A third-party adapter that lets its parser's exception out: the core names the practice and journals it."""
    import app.core.service as service

    def make(practice: Any, secret: str | None) -> Any:
        base = available_adapters()[practice.adapter]

        class Fragile(base):  # type: ignore[misc, valid-type]
            async def fetch_record(self, local_id: str) -> PatientRecord:
                raise failure

        return Fragile(practice, secret)

    monkeypatch.setattr(service, "adapter_for", make)
    server = network.servers[PER_TYPE]
    patient = next(iter(server.population))
    journal = Journal.open(tmp_path / "j.sqlite")
    error = await failed_open(network, journal, server.spec.id, patient.local_id)
    assert server.spec.name in error.message and error.kind == "bad-reply"
    _intent, outcome = linked(journal, server.spec.id, Action.READ)
    assert outcome.outcome is Outcome.FAILURE


async def test_a_deeply_nested_search_answer_is_a_named_error_and_journaled(network, tmp_path, monkeypatch) -> None:
    server = network.servers[EVERYTHING]
    answering(server, monkeypatch, "/Patient", nested())
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(family="a"))
    finally:
        await core.close()
    result = next(r for r in outcome.results if r.practice_id == server.spec.id)
    assert result.error and server.spec.name in result.error and not result.patients
    _intent, entry = linked(journal, server.spec.id, Action.SEARCH)
    assert entry.outcome is Outcome.FAILURE


def journal_rows(path: Path) -> list[tuple[str, str | None, str]]:
    """(action, patient_local_id, outcome) of every row, read straight from the file (no key needed)."""
    with sqlite3.connect(path) as con:
        return con.execute("SELECT action, patient_local_id, outcome FROM journal ORDER BY seq").fetchall()


def test_a_cli_killed_while_the_practice_serves_the_record_leaves_its_intent(tmp_path, monkeypatch) -> None:
    from app.core.audit.journal import default_path
    from app.core.secrets import env_name

    network = DemoNetwork.start(practices=1, patients=40)
    try:
        server = network.servers[0]
        patient = next(p for p in server.population if p.nhs_number)
        config = network.write_config(tmp_path / "demo.toml")
        env = {**os.environ, **{env_name(pid): secret for pid, secret in network.secrets.items()}}
        with server.faults.override(mode="hang", match=f"Patient/{patient.local_id}", hang_s=120):
            proc = subprocess.Popen([*MOSAIC, "show", "--config", str(config), server.spec.id, patient.local_id],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if not server.faults.wait_for_hanging(1, timeout=60):  # the request is at the practice now
                    proc.kill()
                    pytest.fail(f"`mosaic show` never asked for the record: {proc.communicate()[1]!r}")
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        network.stop()
    rows = journal_rows(default_path())
    assert ("intent", patient.local_id, "success") in rows, f"no trace of the attempt in the journal: {rows}"
    assert not [r for r in rows if r[0] == "read"]  # no outcome: the attempt never finished
