"""`mosaic show --all-practices [--json] NHS_NUMBER`, run as a user would: a real demo-server process (FHIR R4 and GP
Connect practices) and real subprocess calls; and under a real policy file, in process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from app.cli import main
from app.core import os_account
from app.core.timeline import date_key
from tests.core.test_policy import policy_text, write_policy
from tests.machine import CLI, demo_env, running_demo_server

PATIENTS = 150


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def shared_patients(practices: int = 5) -> list[tuple[str, str, str]]:
    """(NHS number, practice id, practice id) of the people `mosaic demo-server` registers at two practices: the
    demo's populations are made from its seed alone, so they are made here again, without servers."""
    from app.demo.network import DEFAULT_SEED
    from app.demo.nhs_numbers import NhsNumberAllocator
    from app.demo.population import Population
    from app.demo.practices import practice_specs
    from app.demo.sharing import share_patients

    allocator = NhsNumberAllocator(DEFAULT_SEED)
    populations = [Population.generate(spec, PATIENTS, DEFAULT_SEED, allocator, date.today())
                   for spec in practice_specs(practices, DEFAULT_SEED)]
    return [(s.nhs_number, s.first[0], s.second[0]) for s in share_patients(populations, DEFAULT_SEED)]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("all-practices")
    config = folder / "demo.toml"
    with running_demo_server(config, "--patients", str(PATIENTS), env=demo_env(folder)) as env:
        yield config, env  # no machine-wide file


def fhir_and_gp_connect() -> tuple[str, str, str]:
    return next(s for s in shared_patients() if {s[1], s[2]} == {"riverside", "oakwood"})  # oakwood: GP Connect


def two_fhir() -> tuple[str, str, str]:
    return next(s for s in shared_patients() if {s[1], s[2]} == {"millbrook", "hillview"})


def test_text_names_every_practice_lists_the_differences_then_the_timeline(demo_server) -> None:
    config, env = demo_server
    number, first, second = fhir_and_gp_connect()
    result = run("show", "--config", str(config), "--all-practices", number, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Registered at: Riverside Surgery, Oakwood Medical Centre" in out
    assert out.index("== Practices ==") < out.index("== Differences") < out.index("== Timeline, newest first")
    practices = out.split("== Practices ==")[1].split("==")[0]
    assert "A  Riverside Surgery" in practices and "B  Oakwood Medical Centre" in practices
    assert practices.count("opened") == 2
    differences = out.split("== Differences (medicines reconciliation) ==")[1].split("== Timeline")[0]
    assert "   * " in differences and ("not recorded at" in differences or "resolved (past) at" in differences)
    timeline = out.split("== Timeline, newest first")[1].splitlines()[1:]
    tags = {line[22:25].strip() for line in timeline}  # after the date column
    assert {"A", "B", "A B"} <= tags  # each practice's own entries, and entries the same at both


def test_json_carries_practices_a_newest_first_timeline_and_differences(demo_server) -> None:
    config, env = demo_server
    number, first, second = two_fhir()
    result = run("show", "--config", str(config), "--all-practices", "--json", number, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(p["id"], p["status"]) for p in data["practices"]] == [("millbrook", "ok"), ("hillview", "ok")]
    assert all(p["name"] and p["why"] is None for p in data["practices"])
    assert data["patient"]["nhs_number"] == number and len(data["not_registered"]) == 3
    timeline = data["timeline"]
    assert {e["practice"] for e in timeline} == {"millbrook", "hillview"}
    assert all({"date", "practice", "section", "text"} <= set(e) for e in timeline)
    dated = [e["date"] for e in timeline if e["date"]]
    assert dated and [date_key(d) for d in dated] == sorted((date_key(d) for d in dated), reverse=True)
    assert all(e["date"] is None for e in timeline[len(dated):])  # undated last
    # the demo makes a person registered at two practices disagree on purpose: one of each kind
    kinds = {d["kind"] for d in data["differences"]}
    assert {"allergy", "medication", "problem"} <= kinds
    assert all(set(d["practices"]) == {"millbrook", "hillview"} for d in data["differences"])

    listed = run("audit", "list", "--patient", number, "--json", env=env)
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    reads = [e for e in entries if e["action"] == "read"]
    assert sorted(e["practice_id"] for e in reads) == ["hillview", "millbrook"]  # one per practice
    assert all(e["outcome"] == "success" for e in reads)


def test_usage_and_an_invalid_nhs_number(demo_server) -> None:
    config, env = demo_server
    assert run("show", "--config", str(config), "--all-practices", "riverside", "9990413320", env=env).returncode == 2
    lonely = run("show", "--config", str(config), "riverside", env=env)
    assert lonely.returncode == 2 and "--all-practices NHS_NUMBER" in lonely.stderr
    invalid = run("show", "--config", str(config), "--all-practices", "943 476 5918", env=env)
    assert invalid.returncode == 1 and "check digit" in invalid.stderr and invalid.stdout == ""


@pytest.fixture
def cli(network, tmp_path, monkeypatch):
    config = network.write_config(tmp_path / "demo.toml")
    monkeypatch.setattr(os_account, "os_login", lambda: "jbloggs")  # in-process: the OS account Mosaic sees
    return config


def test_a_reason_is_asked_once_and_a_restricted_practice_is_named(cli, network, tmp_path, monkeypatch,
                                                                   capsys) -> None:
    shared = network.shared_patients[0]
    number, restricted_at = shared.nhs_number, shared.second[0]
    write_policy(tmp_path, policy_text(reason_required=True, restricted={restricted_at: [number]}), monkeypatch)
    assert main(["--config", str(cli), "show", "--all-practices", "--json", number]) == 1
    captured = capsys.readouterr()
    refused = json.loads(captured.out)
    assert {p["status"] for p in refused["practices"]} == {"denied"} and refused["timeline"] == []
    assert "(--reason TEXT)" in captured.err

    assert main(["--config", str(cli), "show", "--all-practices", "--reason", "Medicines reconciliation",
                 number]) == 1  # one practice still refused: not everything could be shown
    captured = capsys.readouterr()
    assert "REFUSED" in captured.out and "break-glass" in captured.out
    assert "Nothing to compare: only the record from" in captured.out
    assert "was not opened under the access policy, so what it records is not known" in captured.out
    assert "(--break-glass --reason TEXT)" in captured.err


def test_text_says_a_death_the_address_and_each_registration() -> None:
    from dataclasses import replace

    from app.cli.all_practices import render_all_practices
    from app.core.all_practices import AllPractices, PracticeOpen
    from app.core.model import Address, Registration
    from tests.core.test_timeline import NHS, OAKWOOD, RIVERSIDE, med, record

    def registered(practice, kind: str):
        base = record(practice, medications=[med("Aspirin 75mg", when="2020-01-02")])
        patient = replace(base.patient, deceased=date(2025, 6, 1), address=Address(("1 High Street",), "Leeds"),
                          registration=Registration(practice.ods_code, practice.name, "Dr A Smith", kind))
        return replace(base, patient=patient)

    opened = AllPractices(NHS, (PracticeOpen(RIVERSIDE, "ok", registered(RIVERSIDE, "Regular"), local_id="r1"),
                                PracticeOpen(OAKWOOD, "ok", registered(OAKWOOD, "Temporary"), local_id="o1")))
    text = render_all_practices(opened, opened.timeline())
    lines = text.splitlines()
    assert lines[0] == "ADAMS, Jo   *** DECEASED ***"
    assert "Died 01-Jun-2025 (aged 65y)" in lines[1] and lines[2] == "Address 1 High Street, Leeds"
    assert "A  Riverside Surgery" in text and "registered Regular · GP Dr A Smith" in text
    assert "registered Temporary" in text
    assert "   02-Jan-2020        A B  Medication   Aspirin 75mg" in text
