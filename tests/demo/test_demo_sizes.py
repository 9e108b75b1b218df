"""The demo at every size from 1 to 50 practices: which practices speak GP Connect, distinct practices,
real networks of 1, 2, 3 and 50 practices that answer through the core from their written config, and
`mosaic demo-server --practices 1` run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx2
import pytest

from app.cli import DEMO_FEATURES, build_parser
from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.config import load_directory, load_notify_settings
from app.core.model import PatientQuery
from app.core.nhs_number import NHS_NUMBER_SYSTEM
from app.core.service import MosaicCore
from app.core.sessions import PracticeStatus
from app.demo.network import DemoNetwork, secret_env_name
from app.demo.policy import demo_policy
from app.demo.practices import contrast_with_white, practice_specs
from app.demo.sizes import MAX_PRACTICES, MIN_PRACTICES, gp_connect_indexes
from tests.machine import CLI

MOSAIC = CLI  # `mosaic`, with the test's machine folder (tests/cli_launcher.py)
USER = AuditUser(login="clinician1", display_name="Dr Asha Patel", role="GP",
                 professional_ids={"sds_user_id": "555021935107", "sds_role_profile_id": "555021936103"})
EVERY_SIZE = range(MIN_PRACTICES, MAX_PRACTICES + 1)


def test_the_size_range_is_one_to_fifty() -> None:
    assert (MIN_PRACTICES, MAX_PRACTICES) == (1, 50)
    for outside in (0, 51, -3):
        with pytest.raises(ValueError, match="1 to 50"):
            gp_connect_indexes(outside)


def test_the_five_practice_demo_is_as_it_always_was() -> None:
    assert gp_connect_indexes(5) == (1, 3)
    assert gp_connect_indexes(1) == ()
    assert gp_connect_indexes(2) == (1,)


@pytest.mark.parametrize("count", EVERY_SIZE)
def test_gp_connect_practices_for_every_size(count: int) -> None:
    chosen = gp_connect_indexes(count)
    auth = [s.auth for s in practice_specs(count)]
    assert list(chosen) == sorted(set(chosen)) and all(0 <= i < count for i in chosen)
    assert 0 not in chosen, "practice 0 must be FHIR R4: only FHIR R4 practices can be searched by name"
    if count >= 2:
        assert chosen, f"{count} practices and no GP Connect practice"
    assert abs(len(chosen) - 0.4 * count) <= 1, f"{len(chosen)} of {count}: not about two in five"
    assert not any(i + 1 in chosen for i in chosen), f"GP Connect practices side by side: {chosen}"
    # a practice keeps its kind as the network grows
    assert set(chosen) == {i for i in gp_connect_indexes(MAX_PRACTICES) if i < count}
    # the client-credentials practices (the ones moved to SMART Backend Services) stay FHIR R4
    assert not any(auth[i] == "client-credentials" for i in chosen)
    if count >= 5:
        assert "client-credentials" in [a for i, a in enumerate(auth) if i not in chosen]


def test_fifty_practices_are_fifty_distinct_practices() -> None:
    specs = practice_specs(MAX_PRACTICES, seed=1948)
    for field in ("id", "name", "ods_code", "colour"):
        values = [getattr(s, field) for s in specs]
        assert len(set(values)) == MAX_PRACTICES, f"{field} repeats: {values}"
    assert len({secret_env_name(s.id) for s in specs}) == MAX_PRACTICES
    assert all(contrast_with_white(s.colour) >= 4.5 for s in specs)
    assert [s.index for s in specs] == list(range(MAX_PRACTICES))


@pytest.mark.parametrize("count", [1, 2, 3, 50])
async def test_a_network_of_this_size_answers_from_its_written_config(
        count: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started as `mosaic demo-server` starts it; the config it writes is loaded as the CLI loads it, and
    the core signs in to every practice; a patient at a GP Connect practice is found by NHS number."""
    with DemoNetwork.start(practices=count, patients=5, gp_connect=gp_connect_indexes(count),
                           **DEMO_FEATURES) as network:
        config = network.write_config(tmp_path / "demo.toml")
        for line in (tmp_path / "demo.toml.env").read_text().split():
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, value)
        practices = load_directory(config)
        assert [p.id for p in practices] == [s.spec.id for s in network.servers]
        gp_connect = [p.id for p in practices if p.adapter == "gp-connect"]
        assert gp_connect == [network.servers[i].spec.id for i in gp_connect_indexes(count)]
        smart = [p.id for p in practices if p.auth == "private-key-jwt"]
        assert len(smart) == count // 5
        assert network.summary() == (
            f"{count} practice{'s' if count > 1 else ''} on 127.0.0.1 — {count - len(gp_connect)} FHIR R4"
            + (f" ({len(smart)} on SMART Backend Services)" if smart else "")
            + f", {len(gp_connect)} GP Connect; 5 patients" + (" each" if count > 1 else ""))
        assert len(demo_policy(network, "hub").marked) == count + 2  # `mosaic demo` builds its policy for any size

        journal = Journal.open(tmp_path / "journal.sqlite")
        core = MosaicCore(practices, journal=journal, user=USER, policy=None, notify=load_notify_settings(config))
        try:
            states = await core.sign_in()
            offline = {s.practice.id: s.detail for s in states if s.status is not PracticeStatus.ONLINE}
            assert not offline and len(states) == count
            if gp_connect:
                gpc = network.server(gp_connect[-1])
                patient = next(p for p in gpc.population if p.nhs_number)
                outcome = await core.search(PatientQuery(nhs_number=patient.nhs_number))
                assert gpc.spec.id in {p.practice_id for p in outcome.patients}
        finally:
            await core.close()
            journal.close()


@pytest.mark.parametrize("command", ["demo", "demo-server"])
@pytest.mark.parametrize("value", ["0", "51", "five"])
def test_practices_outside_one_to_fifty_is_a_usage_error(command: str, value: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--write-config", "unused.toml"] if command == "demo-server" else []
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([command, *extra, "--practices", value])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"mosaic {command}: error: argument --practices: must be a whole number from 1 to 50, not '{value}'"


def test_demo_and_demo_server_take_the_same_sizes() -> None:
    for command, extra in (("demo", []), ("demo-server", ["--write-config", "c.toml"])):
        assert build_parser().parse_args([command, *extra]).practices == 5
        assert build_parser().parse_args([command, *extra, "--practices", "1"]).practices == 1
        assert build_parser().parse_args([command, *extra, "--practices", "50"]).practices == 50


def test_demo_server_with_one_practice_says_what_it_made_and_its_config_works(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_SECRET_")}
    proc = subprocess.Popen([*MOSAIC, "demo-server", "--write-config", str(config), "--practices", "1",
                             "--patients", "5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        secrets = dict(item.split("=", 1) for item in (tmp_path / "demo.toml.env").read_text().split())
        unattended = {**env, **secrets}
        check = subprocess.run([*MOSAIC, "--config", str(config), "check"], env=unattended,
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "1 of 1 practices online" in check.stdout
        # someone the running practice holds, asked of it directly; then found by name through the CLI
        practice = load_directory(config)[0]
        with httpx2.Client(base_url=practice.base_url, auth=(practice.username or "", secrets[secret_env_name(
                practice.id)]), timeout=10) as client:
            reply = client.get("/Patient", params={"_count": "5"})
        reply.raise_for_status()
        family, nhs_number = next((r["name"][0]["family"], i["value"]) for r in (e["resource"] for e in reply.json()[
            "entry"]) for i in r.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM)
        search = subprocess.run([*MOSAIC, "--config", str(config), "search", "--json", family], env=unattended,
                                capture_output=True, text=True, timeout=60)
        assert search.returncode == 0, search.stdout + search.stderr
        rows = [json.loads(row) for row in search.stdout.splitlines()]
        assert any(r.get("nhs_number") == nhs_number and r.get("practice") == practice.id for r in rows), rows
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert (f"Demo: 1 practice on 127.0.0.1 — 1 FHIR R4, 0 GP Connect; 5 patients; config written to {config}"
            in stderr.splitlines()), stderr
