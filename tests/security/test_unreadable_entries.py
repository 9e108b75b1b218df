"""Issue 10, class 17 — a search Bundle's unreadable entries dropped silently; a malformed Bundle read as
"0 patients" (a false "not registered here").

Unreadable entries are counted and named on the practice's results ("3 entries from Riverside Surgery
could not be read"), in the journal, in the window's search panel and in `mosaic search`; a Bundle whose
`entry` is not a list is an error naming the practice, never zero results. A real demo practice over
loopback HTTP whose search answer is changed in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.model import PatientQuery
from app.core.service import MosaicCore
from app.demo.fhir_json import Reply

try:  # `mosaic` in a subprocess, with this test's machine folder (tests/machine.py), where the suite has one
    from tests.machine import CLI as MOSAIC
except ImportError:
    MOSAIC = [sys.executable, "-m", "app.cli"]

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")
#: three entries no reader can use: not an object, no resource, a resource without a type
UNREADABLE = ["garbage", {"fullUrl": "urn:uuid:1"}, {"resource": {"id": "x"}}]


def spoiled(server: Any, monkeypatch: pytest.MonkeyPatch, change) -> None:
    """The practice's Patient search answers go through `change(bundle) -> bundle` (restored after the test)."""
    dispatch = server.api.dispatch

    def answer(request: Any) -> Any:
        reply = dispatch(request)
        if request.path.rstrip("/").endswith("/Patient") and reply.status == 200:
            return Reply(200, json.dumps(change(json.loads(reply.body))).encode(), reply.content_type)
        return reply

    monkeypatch.setattr(server.api, "dispatch", answer)


def with_unreadable(bundle: dict[str, Any]) -> dict[str, Any]:
    return {**bundle, "entry": [*(bundle.get("entry") or []), *UNREADABLE]}


def family_at(server: Any) -> str:
    return next(p.family for p in server.population if p.resource is None)


async def search(network, tmp_path, query: PatientQuery) -> tuple[Any, Journal]:
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        outcome = await core.search(query)
    finally:
        await core.close()
    return outcome, journal


async def test_unreadable_entries_are_counted_and_named(network, tmp_path, monkeypatch) -> None:
    server = network.servers[0]
    spoiled(server, monkeypatch, with_unreadable)
    outcome, journal = await search(network, tmp_path, PatientQuery(family=family_at(server)))
    result = next(r for r in outcome.results if r.practice_id == server.spec.id)
    assert result.patients and result.error is None  # the readable ones still show
    assert result.unreadable == 3
    assert result.unreadable_text == f"3 entries from {server.spec.name} could not be read"
    [entry] = journal.query(practice_id=server.spec.id, actions=[Action.SEARCH])
    assert entry.details["unreadable"] == 3
    others = [r for r in outcome.results if r.practice_id != server.spec.id]
    assert all(r.unreadable == 0 and r.unreadable_text is None for r in others)


@pytest.mark.parametrize("entry", [{"resource": {"resourceType": "Patient", "id": "p1"}}, "not a list", 7],
                         ids=["object", "string", "number"])
async def test_a_bundle_whose_entry_is_not_a_list_is_an_error_not_zero_results(network, tmp_path, monkeypatch,
                                                                              entry) -> None:
    server = network.servers[0]
    spoiled(server, monkeypatch, lambda bundle: {**bundle, "entry": entry})
    outcome, journal = await search(network, tmp_path, PatientQuery(family=family_at(server)))
    result = next(r for r in outcome.results if r.practice_id == server.spec.id)
    assert result.error and server.spec.name in result.error and "malformed" in result.error
    assert not result.patients
    [logged] = journal.query(practice_id=server.spec.id, actions=[Action.SEARCH])
    assert logged.outcome is Outcome.FAILURE and logged.details["results"] is None  # not "0 found"


def test_mosaic_search_names_the_unreadable_entries(network, tmp_path, monkeypatch) -> None:
    server = network.servers[0]
    spoiled(server, monkeypatch, with_unreadable)
    config = network.write_config(tmp_path / "demo.toml")
    family = family_at(server)
    said = f"3 entries from {server.spec.name} could not be read"
    text = subprocess.run([*MOSAIC, "search", "--config", str(config), family], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)
    assert said in text.stdout, text.stdout + text.stderr
    as_json = subprocess.run([*MOSAIC, "search", "--config", str(config), "--json", family], env=dict(os.environ),
                             capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert {"practice": server.spec.id, "unreadable": 3, "warning": said} in rows, as_json.stdout + as_json.stderr


@pytest.mark.gui
def test_the_window_names_the_unreadable_entries(qtbot, window, network, monkeypatch) -> None:
    server = network.servers[0]
    spoiled(server, monkeypatch, with_unreadable)
    window.search_panel.box.setText(family_at(server))
    with qtbot.waitSignal(window.search_finished, timeout=10_000):
        qtbot.keyClick(window.search_panel.box, Qt.Key.Key_Return)
    panel = window.search_panel
    said = f"3 entries from {server.spec.name} could not be read"
    qtbot.waitUntil(lambda: said in panel.notes_label.text(), timeout=10_000)
    assert panel.notes.isVisible()
