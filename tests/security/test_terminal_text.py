"""Issue 10, class 14 — server text reached the terminal raw (escape sequences set the title, cleared the screen).

Every string a practice's server sends is cleaned of control characters (C0 but line feed and tab, DEL,
C1) and bidirectional controls before it reaches the model, and so the terminal, a widget or the journal
(app/core/text.py): at the core's one door to adapters (app/core/boundary.py), whichever adapter decoded the
reply, and in every AdapterError's message. Real demo practices over loopback HTTP — FHIR R4 with and
without $everything, and GP Connect — whose replies are made hostile in-process: patient names and
addresses, record entries' text, codes' display text and notes, and an OperationOutcome's diagnostics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.base import AdapterError
from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.model import PatientQuery, PatientRecord, PatientSummary
from app.core.service import MosaicCore
from app.demo.fhir_json import Reply

try:  # `mosaic` in a subprocess, with this test's machine folder (tests/machine.py), where the suite has one
    from tests.machine import CLI as MOSAIC
except ImportError:
    MOSAIC = [sys.executable, "-m", "app.cli"]

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")

#: what a hostile server appends to its text: clear the screen, set the window title (OSC ... BEL), a colour
#: (CSI), a C1 CSI and a C1 OSC ended by a C1 ST, a carriage return, DEL, NUL, a right-to-left override, an
#: isolate, and the direction marks
HOSTILE = ("\x1b[2J\x1b]0;pwned\x07\x1b[31m\x9b2J\x9d0;title\x9c\r\x7f\x00\u202eexe.gnp\u202c"
           "\u2066x\u2069\u200e\u200f\u061c")
#: what it puts before its text: set the icon title, ended by ESC backslash (ST), and a right-to-left override
HOSTILE_PREFIX = "\x1b]2;owned\x1b\\\u202e"
#: every character that must not survive
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: the same, as UTF-8 bytes on a terminal
UNSAFE_BYTES = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]"
                          rb"|\xe2\x81[\xa6-\xa9]")
#: the server's strings made hostile (names, address lines, postcodes, text, display text, notes)
TAINTED_KEYS = {"family", "given", "prefix", "line", "city", "postalCode", "text", "display", "diagnostics",
                "comment", "note"}


def taint(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: (HOSTILE_PREFIX + v + HOSTILE if isinstance(v, str) and k in TAINTED_KEYS
                    else [HOSTILE_PREFIX + x + HOSTILE if isinstance(x, str) else taint(x) for x in v]
                    if isinstance(v, list) and k in TAINTED_KEYS else taint(v))
                for k, v in data.items()}
    if isinstance(data, list):
        return [taint(x) for x in data]
    return data


def hostile(server: Any, monkeypatch: pytest.MonkeyPatch, *, fail_search: bool = False) -> None:
    """The practice's JSON answers go through `taint` (restored after the test); with `fail_search`, its
    patient searches fail with an OperationOutcome whose diagnostics carry the sequences."""
    dispatch = server.api.dispatch

    def answer(request: Any) -> Any:
        path = request.path.rstrip("/")
        if fail_search and (path.endswith("/Patient") or path.endswith("$gpc.getstructuredrecord")):
            outcome = {"resourceType": "OperationOutcome", "issue": [{
                "severity": "error", "code": "exception", "diagnostics": f"Database is down{HOSTILE}"}]}
            return Reply(500, json.dumps(outcome).encode(), "application/fhir+json")
        reply = dispatch(request)
        if reply.status == 200 and reply.body and not path.endswith("/metadata"):
            return Reply(200, json.dumps(taint(json.loads(reply.body))).encode(), reply.content_type, reply.headers)
        return reply

    monkeypatch.setattr(server.api, "dispatch", answer)


def strings(value: Any) -> Iterator[str]:
    """Every string in a model object (a record, a summary, an error)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from strings(v)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            yield from strings(getattr(value, name))


def assert_clean(value: Any) -> None:
    dirty = [s for s in strings(value) if UNSAFE.search(s)]
    assert not dirty, f"control or bidi characters reached the model: {dirty[:3]!r}"


def someone(server: Any) -> Any:
    return next(p for p in server.population if p.nhs_number and p.resource is None)


def local_id_of(server: Any, patient: Any) -> str:
    return patient.nhs_number if server.gpconnect is not None else patient.local_id


KINDS = pytest.mark.parametrize("index", [0, 1, 2], ids=["fhir-everything", "fhir-per-type", "gp-connect"])


@KINDS
async def test_names_addresses_and_record_text_reach_the_model_clean(practices, monkeypatch, tmp_path, index) -> None:
    server = practices.servers[index]
    hostile(server, monkeypatch)
    patient = someone(server)
    core = MosaicCore(practices.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=USER, policy=None,
                      notify=None)
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(nhs_number=patient.nhs_number))
        record: PatientRecord = await core.open_record(server.spec.id, local_id_of(server, patient))
    finally:
        await core.close()
    [found] = [p for p in outcome.patients if p.practice_id == server.spec.id]
    assert isinstance(found, PatientSummary)
    assert_clean(outcome.results)
    assert found.family.startswith("]2;owned") and "[2J]0;pwned[31m2J0;title" in found.family  # the rest kept
    assert patient.family in found.family
    assert_clean(record)
    texts = [e.text for s in record.sections.values() for e in s.entries]
    assert texts and any("[2J" in t for t in texts)  # the entries arrived, tainted by the server, and cleaned


@KINDS
async def test_an_operation_outcomes_diagnostics_reach_the_error_clean(practices, monkeypatch, tmp_path,
                                                                       index) -> None:
    server = practices.servers[index]
    hostile(server, monkeypatch, fail_search=True)
    patient = someone(server)
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(nhs_number=patient.nhs_number))
        if server.gpconnect is not None:  # GP Connect's search is its structured record: it fails too
            with pytest.raises(AdapterError) as info:
                await core.open_record(server.spec.id, local_id_of(server, patient))
            assert "Database is down" in info.value.message
            assert_clean((info.value.message, str(info.value)))
    finally:
        await core.close()
    [result] = [r for r in outcome.results if r.practice_id == server.spec.id]
    assert result.error and "Database is down" in result.error, result
    assert_clean(result.error)
    assert_clean(journal.query(practice_id=server.spec.id))  # the failure as journaled


def test_adapter_errors_are_clean_whoever_made_them() -> None:
    error = AdapterError(f"Riverside Surgery said: {HOSTILE}", "server")
    assert_clean((error.message, str(error), error.args))


def run_mosaic(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*MOSAIC, *args], env=dict(os.environ), capture_output=True, timeout=120)


def assert_terminal_clean(done: subprocess.CompletedProcess[bytes]) -> None:
    for name, output in (("stdout", done.stdout), ("stderr", done.stderr)):
        found = UNSAFE_BYTES.search(output)
        where = output[max(0, found.start() - 80):found.end() + 20] if found else b""
        assert found is None, f"{name} carries {found.group() if found else ''!r}: {where!r}"


@pytest.mark.parametrize("index", [0, 1, 2], ids=["fhir-everything", "fhir-per-type", "gp-connect"])
def test_mosaic_search_and_show_print_no_control_characters(practices, monkeypatch, tmp_path, index) -> None:
    server = practices.servers[index]
    hostile(server, monkeypatch)
    patient = someone(server)
    config = practices.write_config(tmp_path / "demo.toml")
    searched = run_mosaic("search", "--config", str(config), patient.nhs_number)
    assert patient.family.upper() in searched.stdout.decode().upper(), searched.stdout + searched.stderr
    assert b"[2J" in searched.stdout  # the server's text was printed, without its control characters
    assert_terminal_clean(searched)
    as_json = run_mosaic("search", "--config", str(config), "--json", patient.nhs_number)
    rows = [json.loads(line) for line in as_json.stdout.decode().splitlines() if line.startswith("{")]
    assert rows, as_json.stdout + as_json.stderr
    assert_clean(rows)
    shown = run_mosaic("show", "--config", str(config), server.spec.id, local_id_of(server, patient))
    assert shown.returncode in (0, 1), shown.stdout + shown.stderr
    assert patient.family.upper() in shown.stdout.decode().upper(), shown.stdout + shown.stderr
    assert b"[2J" in shown.stdout  # the record's text, tainted by the server, printed clean
    assert_terminal_clean(shown)
    shown_json = run_mosaic("show", "--config", str(config), "--json", server.spec.id, local_id_of(server, patient))
    assert_clean(json.loads(shown_json.stdout))


def test_mosaic_search_prints_a_servers_diagnostics_without_control_characters(practices, monkeypatch,
                                                                               tmp_path) -> None:
    server = practices.servers[0]
    hostile(server, monkeypatch, fail_search=True)
    config = practices.write_config(tmp_path / "demo.toml")
    searched = run_mosaic("search", "--config", str(config), someone(server).nhs_number)
    assert b"Database is down" in searched.stdout + searched.stderr, searched.stdout + searched.stderr
    assert_terminal_clean(searched)


def test_the_rule_keeps_lines_tabs_and_letters_and_takes_every_control_out() -> None:
    from app.core.oidc import OidcError
    from app.core.text import clean_text

    assert clean_text("O\u2019Brien\tZo\u00eb\nline two — ١٢٣ 東京") == "O\u2019Brien\tZo\u00eb\nline two — ١٢٣ 東京"
    assert clean_text("a\r\nb") == "a\nb"
    every = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F,
                                     *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
    assert clean_text(f"x{every}y") == "x\t\ny"
    assert str(OidcError(f"The sign-in service said: {HOSTILE}")) == clean_text(f"The sign-in service said: {HOSTILE}")
