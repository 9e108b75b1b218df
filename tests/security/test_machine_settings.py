"""Issue 10, class 2: test hooks that switched enforcement off.

Machine settings come only from the machine: no environment variable (MOSAIC_MACHINE_CONFIG, MOSAIC_POLICY, …),
no per-user file and no --config file can replace the machine folder, drop the access policy, the audit
destinations or the notification rule. Each test runs `mosaic` as a user would, in a subprocess (through
tests/cli_launcher.py, which only places the machine folder the way IT would have installed it).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from app.core.os_account import os_login
from tests.machine import CLI, REPO, add_machine_table, set_machine_policy

REASON = "Safeguarding review for the practice"


@pytest.fixture
def restricted(network, tmp_path):
    """The demo practices as a --config file, a machine policy restricting one patient, and the environment."""
    config = network.write_config(tmp_path / "demo.toml")
    server = network.servers[0]
    patient = next(p for p in server.population if p.nhs_number)
    folder = tmp_path / "policy"
    folder.mkdir()
    policy = folder / "policy.toml"
    policy.write_text(f'[roles.gp]\npractices = ["*"]\nsections = ["*"]\n\n[users.{os_login()}]\nrole = "gp"\n\n'
                      f'[practices.{server.practice.id}]\nrestricted = ["{patient.nhs_number}"]\n')
    policy.chmod(0o644)
    set_machine_policy(policy)
    env = {**os.environ, "MOSAIC_HOME": str(tmp_path / "home")}
    return config, server.practice.id, patient, env


def mosaic(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def show(config: Path, practice: str, number: str, env: dict[str, str], *extra: str):
    return mosaic("--config", str(config), "show", "--json", *extra, practice, number, env=env)


def needs_break_glass(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 1 and "break-glass" in result.stderr and result.stdout == ""


def test_the_restriction_holds_as_configured(restricted) -> None:
    config, practice, patient, env = restricted
    assert needs_break_glass(show(config, practice, patient.nhs_number, env, "--reason", REASON))
    opened = show(config, practice, patient.nhs_number, env, "--break-glass", "--reason", REASON)
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["access"]["flags"] == ["break-glass"]


@pytest.mark.parametrize("variable", ["MOSAIC_MACHINE_CONFIG", "MOSAIC_POLICY", "MOSAIC_MACHINE_DIR",
                                      "PROGRAMDATA", "MOSAIC_CONFIG_DIR"])
def test_no_environment_variable_moves_the_machine_folder_or_drops_the_policy(restricted, tmp_path,
                                                                              variable) -> None:
    config, practice, patient, env = restricted
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "practices.toml").write_text("")  # a machine folder of the user's own, with no policy
    (mine / "policy.toml").write_text('[roles.any]\npractices = ["*"]\n')
    for value in (str(mine / "practices.toml"), str(mine / "policy.toml"), str(mine), str(tmp_path / "nowhere")):
        result = show(config, practice, patient.nhs_number, {**env, variable: value}, "--reason", REASON)
        assert needs_break_glass(result), (variable, value, result.returncode, result.stdout[:200], result.stderr)


@pytest.mark.parametrize("table", ['[policy]\nfile = "{mine}"\n', '[audit]\ncentral_url = "sqlite:///{mine}.db"\n',
                                   '[notify]\nrule = "never"\n', '[identity]\nissuer = "https://idp.example"\n'
                                   'client_id = "x"\n'])
@pytest.mark.parametrize("where", ["--config", "per-user file"])
def test_a_user_file_holding_a_machine_table_is_refused(restricted, tmp_path, table, where) -> None:
    config, practice, patient, env = restricted
    text = table.format(mine=tmp_path / "mine.toml") + "\n" + config.read_text()
    if where == "--config":
        target = tmp_path / "with-table.toml"
    else:
        target = Path(env["MOSAIC_HOME"]) / "practices.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    args = ("--config", str(target)) if where == "--config" else ()
    result = mosaic(*args, "show", "--reason", REASON, practice, patient.nhs_number, env=env)
    key = table.split("]")[0].lstrip("[")
    assert result.returncode == 2, (result.stdout[:200], result.stderr)
    assert f"{target}, key '{key}'" in result.stderr and "machine-wide" in result.stderr
    assert result.stdout == ""


def test_a_config_without_audit_cannot_drop_central_delivery(restricted, tmp_path) -> None:
    """[audit] comes from the machine file whatever --config says: the central store gets the access."""
    from app.core.audit.central import CentralStore

    config, practice, patient, env = restricted
    central_url = f"sqlite:///{tmp_path / 'central.sqlite'}"
    store = CentralStore(central_url)
    store.ensure_schema()
    add_machine_table(f'[audit]\ncentral_url = "{central_url}"\n')
    assert "[audit]" not in config.read_text()
    opened = show(config, practice, patient.nhs_number, env, "--break-glass", "--reason", REASON)
    assert opened.returncode == 0, opened.stderr
    try:
        entries = store.query(practice=practice)
    finally:
        store.close()
    assert ("break-glass", patient.nhs_number) in [(e.action, e.patient_nhs_number) for e in entries]
