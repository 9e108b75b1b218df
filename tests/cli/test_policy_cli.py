"""`mosaic show --reason/--break-glass` and `mosaic audit flagged` under a real policy file."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.core import os_account
from tests.core.test_policy import a_patient, policy_text, write_policy


@pytest.fixture
def cli(network, tmp_path, monkeypatch):
    config = network.write_config(tmp_path / "demo.toml")
    monkeypatch.setattr(os_account, "os_login", lambda: "jbloggs")  # in-process: the OS account Mosaic sees
    return config


def show(config, *args: str) -> int:
    return main(["--config", str(config), "show", "--json", *args])


def test_show_without_a_required_reason_says_so(cli, network, tmp_path, monkeypatch, capsys) -> None:
    write_policy(tmp_path, policy_text(reason_required=True), monkeypatch)
    server = network.servers[0]
    patient = a_patient(server)
    assert show(cli, server.practice.id, patient.nhs_number) == 1
    err = capsys.readouterr().err
    assert "must give a reason for access (--reason TEXT)" in err
    assert "Reasons offered: Direct care; Medicines reconciliation" in err
    assert show(cli, "--reason", "Direct care", server.practice.id, patient.nhs_number) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["patient"]["nhs_number"] == patient.nhs_number


def test_show_restricted_needs_break_glass_then_is_flagged(cli, network, tmp_path, monkeypatch, capsys) -> None:
    server = network.servers[1]
    patient = a_patient(server)
    write_policy(tmp_path, policy_text(restricted={server.practice.id: [patient.nhs_number]}), monkeypatch)
    assert show(cli, "--reason", "Direct care", server.practice.id, patient.nhs_number) == 1
    assert "--break-glass --reason TEXT" in capsys.readouterr().err
    assert show(cli, "--break-glass", server.practice.id, patient.nhs_number) == 2  # no reason: usage
    assert "--break-glass needs a written reason" in capsys.readouterr().err
    assert show(cli, "--break-glass", "--reason", "Safeguarding referral", server.practice.id,
                patient.nhs_number) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["access"] == {"flags": ["break-glass"], "reason": "Safeguarding referral"}

    assert main(["audit", "flagged", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["flag"] for r in rows] == ["break-glass", "denied"]  # newest first
    assert all(r["patient_nhs_number"] == patient.nhs_number and r["user_login"] == "jbloggs" for r in rows)
    assert rows[0]["purpose"] == "Safeguarding referral"
    assert main(["audit", "flagged"]) == 0
    text = capsys.readouterr()
    assert "break-glass" in text.out and "reason: Safeguarding referral" in text.out
    assert "2 flagged entries" in text.err
    assert main(["audit", "flagged", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""

    assert main(["--config", str(cli), "show", "--break-glass", "--reason", "Safeguarding referral",
                 server.practice.id, patient.nhs_number]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == ["! Opened by break-glass. This access is flagged for review.",
                         "! Reason given: Safeguarding referral"]  # first, under the banner's three lines


def test_show_at_a_practice_outside_the_role_is_refused(cli, network, tmp_path, monkeypatch, capsys) -> None:
    allowed, hidden = network.practices[0], network.servers[2]
    write_policy(tmp_path, policy_text(practices=f'["{allowed.id}"]'), monkeypatch)
    assert show(cli, hidden.practice.id, a_patient(hidden).nhs_number) == 1
    assert f"does not include practice '{hidden.practice.id}'" in capsys.readouterr().err


def test_a_malformed_policy_stops_the_cli_naming_the_line(cli, network, tmp_path, monkeypatch, capsys) -> None:
    text = policy_text() + "\n[users.oops]\nrole = clinician\n"
    write_policy(tmp_path, text, monkeypatch)
    assert show(cli, network.practices[0].id, a_patient(network.servers[0]).nhs_number) == 2
    err = capsys.readouterr().err
    bad_line = text.splitlines().index("role = clinician") + 1
    assert "access policy" in err and f"line {bad_line}:" in err


def test_a_user_writable_policy_stops_the_cli(cli, network, tmp_path, monkeypatch, capsys) -> None:
    write_policy(tmp_path, policy_text(), monkeypatch).chmod(0o646)
    assert show(cli, network.practices[0].id, a_patient(network.servers[0]).nhs_number) == 2
    assert "writable by group or others" in capsys.readouterr().err
