"""Issue 10, class 1: identity from the environment.

The user is the OS account running Mosaic (real uid), never LOGNAME/USER/LNAME/USERNAME; with [identity] in the
machine-wide file, the CLI signs in through the OpenID provider (or refuses) and never acts as the OS account.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

from app.core import os_account
from app.core.audit.model import AuditUser
from tests.machine import CLI, REPO, add_machine_table, set_machine_policy
from tests.security.other_account import OtherAccount

FORGED = {name: "apatel" for name in ("LOGNAME", "USER", "LNAME", "USERNAME")}
REAL = pwd.getpwuid(os.getuid()).pw_name


def policy_for(tmp_path: Path, login: str) -> Path:
    """A policy that gives only `login` a role (every practice, no reason); anyone else is denied."""
    folder = tmp_path / "policy"
    folder.mkdir(exist_ok=True)
    path = folder / "policy.toml"
    path.write_text(f'[roles.hub]\npractices = ["*"]\nsections = ["*"]\n\n[users.{login}]\nrole = "hub"\n')
    path.chmod(0o644)
    return path


def mosaic(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def journal_users(home: Path) -> set[str]:
    from app.core.audit.journal import Journal

    with Journal.open(home / "data" / "journal.sqlite", read_only=True) as journal:
        return {entry.user.login for entry in journal.query()}


def test_the_os_account_ignores_every_login_variable(monkeypatch) -> None:
    for name, value in FORGED.items():
        monkeypatch.setenv(name, value)
    assert os_account.os_login() == REAL
    assert AuditUser.from_os().login == REAL
    from adapters.gp_connect.jwt import os_requester

    assert os_requester().user_id == REAL  # the GP Connect JWT names the real account too


def test_a_forged_logname_gets_neither_the_role_nor_the_journal_entry(network, tmp_path) -> None:
    """LOGNAME=apatel mosaic search …: apatel has a role, the real account has none. The search is refused
    for the real account, and whatever is journaled names the real account, never apatel."""
    config = network.write_config(tmp_path / "demo.toml")
    set_machine_policy(policy_for(tmp_path, "apatel"))
    home = tmp_path / "home"
    env = {**os.environ, **FORGED, "MOSAIC_HOME": str(home)}
    found = mosaic("--config", str(config), "search", "--json", "smith", env=env)
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert rows and all("note" in row and "not searched" in row["note"] for row in rows), found.stdout + found.stderr
    assert not any("nhs_number" in row for row in rows)

    set_machine_policy(policy_for(tmp_path, REAL))  # now the real account has the role, apatel none
    found = mosaic("--config", str(config), "search", "--json", "smith", env=env)
    assert found.returncode == 0, found.stderr
    assert any("nhs_number" in json.loads(line) for line in found.stdout.splitlines())
    assert journal_users(home) == {REAL}


def test_another_account_is_itself_whatever_its_environment_says(other_account: OtherAccount,
                                                                 shared_folder: Path) -> None:
    """Run as a different, unprivileged account that forges root's name: the module names that account.
    (app/core/os_account.py needs only the standard library: it is run from a copy the account can read.)"""
    import shutil
    import sys

    copy = shared_folder / "os_account.py"
    shutil.copyfile(REPO / "app" / "core" / "os_account.py", copy)
    copy.chmod(0o644)
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
    script = f"import sys; sys.path.insert(0, {str(shared_folder)!r}); import os_account; print(os_account.os_login())"
    result = other_account.run("env", "LOGNAME=root", "USER=root", "USERNAME=root", python, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == other_account.name


def test_with_an_identity_provider_the_cli_refuses_rather_than_act_as_the_os_account(network, tmp_path) -> None:
    """Not at an interactive terminal with a display: one line, exit 2, nothing searched or journaled."""
    config = network.write_config(tmp_path / "demo.toml")
    add_machine_table('[identity]\nissuer = "https://idp.example.nhs.uk"\nclient_id = "mosaic"\n')
    home = tmp_path / "home"
    env = {**os.environ, **FORGED, "MOSAIC_HOME": str(home)}
    for command in (("search", "smith"), ("show", network.practices[0].id, "x"), ("check",), ("audit", "list")):
        result = mosaic("--config", str(config), *command, env=env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "signs its users in through https://idp.example.nhs.uk" in line and "Traceback" not in result.stderr
        assert result.stdout == ""
    assert not (home / "data" / "journal.sqlite").exists()


def test_with_an_identity_provider_the_cli_signs_in_and_acts_as_that_person(tmp_path, monkeypatch, capsys) -> None:
    """At a terminal: the same OpenID Connect sign-in as the window (the browser is the demo's, which approves
    the demo user); the journal names the signed-in person, not the OS account."""
    from app import cli
    from app.core import child_process
    from app.core.secrets import env_name
    from app.demo.network import DemoNetwork
    from app.demo.oidc_provider import demo_browser

    with DemoNetwork.start(practices=1, patients=20, identity=True) as net:
        config = net.write_config(tmp_path / "demo.toml")
        assert net.identity is not None
        settings = net.identity.settings
        add_machine_table(f'[identity]\nissuer = "{settings.issuer}"\nclient_id = "{settings.client_id}"\n')
        for practice_id, secret in net.secrets.items():
            monkeypatch.setenv(env_name(practice_id), secret)
        monkeypatch.setattr(cli, "_can_sign_in_here", lambda: True)  # a person at a terminal with a screen
        monkeypatch.setattr(child_process, "open_in_browser", demo_browser)
        for name, value in FORGED.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["--config", str(config), "search", "--json", "a"]) == 0
        err = capsys.readouterr().err
        assert "Signed in as Dr Asha Patel" in err
    from app.core.audit.journal import Journal

    with Journal.open(read_only=True) as journal:
        users = {entry.user.login for entry in journal.query()}
    assert users == {"clinician1"}, users
