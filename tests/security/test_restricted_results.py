"""Issue 10, class 18 — restricted patients' postcodes showed in search results before break-glass.

The core withholds the address fields of every result whose record needs break-glass (or is denied) when it
decides the access on each result (MosaicCore._with_access, on the core's thread): the window's results (blank,
as the research view leaves them), `mosaic search` and its --json all get the withheld summary; the core keeps
the full one, so break-glass still opens the right record and the record then shows the address. Real demo
practices over loopback HTTP, a real policy file named by this test's machine-wide file, a real `mosaic`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.model import PatientQuery
from app.core.os_account import os_login
from app.core.policy import parse_policy
from app.core.search import PracticeResults
from app.core.service import MosaicCore
from tests.core.test_policy import write_policy

try:  # `mosaic` in a subprocess, with this test's machine folder (tests/machine.py), where the suite has one
    from tests.machine import CLI as MOSAIC
except ImportError:
    MOSAIC = [sys.executable, "-m", "app.cli"]

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")


def policy(login: str, practice_id: str, nhs_number: str) -> str:
    return f"""
[roles.clinician]
practices = ["*"]
[users.{login}]
role = "clinician"
[practices.{practice_id}]
restricted = ["{nhs_number}"]
"""


def two_patients(server):
    """A patient to restrict and one not to, each with an NHS number and a postcode."""
    found = [p for p in server.population if p.nhs_number and p.postcode and p.resource is None]
    return found[0], found[1]


async def test_the_core_withholds_a_restricted_results_address_until_break_glass(network, tmp_path) -> None:
    server = network.servers[0]
    restricted, other = two_patients(server)
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=USER, notify=None,
                      policy=parse_policy(policy("jbloggs", server.spec.id, restricted.nhs_number)))
    heard: list[PracticeResults] = []  # what the window is handed, as each practice answers
    try:
        await core.sign_in()
        outcome = await core.search(PatientQuery(nhs_number=restricted.nhs_number), on_result=heard.append)
        plain = await core.search(PatientQuery(nhs_number=other.nhs_number))
        [result] = [r for r in outcome.results if r.practice_id == server.spec.id]
        [found] = result.patients
        assert result.access[found.local_id].needs == "break-glass"
        assert (await core.decided(server.spec.id, found)).needs == "break-glass"
        record = await core.open_record(server.spec.id, found.local_id, break_glass=True,
                                        purpose="Safeguarding referral from the health visitor")
    finally:
        await core.close()
    assert found.nhs_number == restricted.nhs_number and found.family == restricted.family  # still recognisable
    assert found.birth_date == restricted.birth_date
    assert found.postcode is None  # withheld before break-glass
    [told] = [p for r in heard if r.practice_id == server.spec.id for p in r.patients]
    assert told.postcode is None
    [unrestricted] = [p for r in plain.results if r.practice_id == server.spec.id for p in r.patients]
    assert unrestricted.postcode == other.postcode  # only restricted results are withheld
    assert record.patient.postcode == restricted.postcode  # after break-glass, the record shows it


def test_mosaic_search_withholds_a_restricted_results_address(network, tmp_path, machine_dir, monkeypatch) -> None:
    server = network.servers[1]
    restricted, other = two_patients(server)
    write_policy(tmp_path, policy(os_login(), server.spec.id, restricted.nhs_number), monkeypatch)
    config = network.write_config(tmp_path / "demo.toml")

    def search(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*MOSAIC, "search", "--config", str(config), *args], env=dict(os.environ),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    text = search(restricted.nhs_number)
    [line] = [row for row in text.stdout.splitlines() if row.startswith(server.spec.id)]
    assert restricted.family.upper() in line.upper()  # the result is there, to break glass on
    assert restricted.postcode not in text.stdout and restricted.postcode.split()[0] not in line
    rows = [json.loads(row) for row in search("--json", restricted.nhs_number).stdout.splitlines()]
    [row] = [r for r in rows if r.get("practice") == server.spec.id and "nhs_number" in r]
    assert row["nhs_number"] == restricted.nhs_number and row["postcode"] is None
    assert restricted.postcode not in json.dumps(rows)
    assert other.postcode in search(other.nhs_number).stdout  # an unrestricted result keeps its postcode
