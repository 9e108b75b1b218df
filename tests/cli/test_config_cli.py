"""`mosaic config show [--json]`: every setting in force with where it came from, never a secret; unattended
against what `mosaic demo-server --write-config FILE` writes, and in process with Group Policy replaced."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from app.cli import main
from app.core import group_policy, paths
from app.core.group_policy import GroupPolicy
from tests.core.test_config import GOOD
from tests.machine import (
    CLI,
    add_machine_table,
    demo_env,
    running_demo_server,
    set_machine_policy,
    write_machine_file,
)

CENTRAL = "postgresql+psycopg://mosaic_ws@audit.example.nhs.uk/audit"
POLICY = """[roles.gp]
practices = ["*"]
reason_required = true
reasons = ["Direct care"]

[roles.researcher]
practices = ["riverside"]
research = true
study = "diabetes"

[studies.diabetes]
consented = ["9434765919"]

[users.apatel]
role = "gp"
nhs_number = "9990000018"

[practices.riverside]
restricted = ["9990000026"]
"""
PLANTED = {"MOSAIC_SECRET_CENTRAL": "planted-central-password-4711",
           "MOSAIC_SECRET_STUDY_DIABETES": "planted-study-key-0123456789abcdef"}


def write_policy_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    path = folder / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A real `mosaic demo-server` (its FILE, FILE.env and FILE.machine.toml), the latter installed as the machine
    file with a central audit store and an access policy, as IT would; the environment FILE.env gives plus two
    planted secrets, and no keyring at all (an unattended machine)."""
    folder = tmp_path_factory.mktemp("config-show")
    config, machine = folder / "demo.toml", folder / "machine"
    env = {**demo_env(folder), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    with running_demo_server(config, "--patients", "20", env=env) as unattended:
        write_machine_file(Path(f"{config}.machine.toml").read_text(), machine)
        add_machine_table(f'[audit]\ncentral_url = "{CENTRAL}"\n', machine)
        set_machine_policy(write_policy_file(folder / "policy"), machine)
        yield config, machine, {**unattended, **PLANTED}


def show(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "config", "show", "--config", str(config), *extra], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def secret_values(env: dict[str, str]) -> list[str]:
    return [v for k, v in env.items() if k.startswith("MOSAIC_SECRET_") and v]


def test_config_show_unattended_against_the_demo_server_files(demo_files) -> None:
    config, machine, env = demo_files
    assert len(secret_values(env)) >= 5  # practice secrets, Notify's key, the journal key, and the planted two
    text, as_json = show(config, env), show(config, env, "--json")
    for result in (text, as_json):
        assert result.returncode == 0, result.stderr
        for value in secret_values(env):
            assert value not in result.stdout and value not in result.stderr
        assert "9434765919" not in result.stdout and "9990000026" not in result.stdout, "no NHS number"
    settings = json.loads(as_json.stdout)
    machine_file = str(machine / "practices.toml")

    riverside = next(p for p in settings["practices"] if p["id"] == "riverside")
    assert riverside["settings"]["base_url"]["source"] == "--config file"
    assert riverside["settings"]["base_url"]["where"] == str(config)
    assert riverside["settings"]["timeout"] == {"value": 15.0, "source": "default", "where": None}
    assert settings["identity"]["issuer"]["source"] == "machine file"
    assert settings["identity"]["issuer"]["where"] == machine_file
    assert settings["idle_lock_minutes"] == {"value": 10.0, "source": "default", "where": None}
    assert settings["gp_connect"]["asid"]["source"] == "--config file"  # the demo's, while the machine has none
    assert settings["audit"]["central_url"] == {"value": CENTRAL, "source": "machine file", "where": machine_file}
    assert settings["notify"]["rule"]["value"] == "cross-practice"
    assert settings["notify"]["digest_hour"]["source"] == "default"
    policy = settings["policy"]
    assert policy["file"]["value"].endswith("policy.toml") and policy["users"] == 1
    assert policy["roles"]["researcher"]["study"] == "diabetes" and policy["restricted"] == {"riverside": 1}
    folders = settings["folders"]
    assert folders["machine"] == {"value": str(machine), "source": "fixed for this OS", "where": None}
    assert folders["user_file"]["value"] == str(config) and folders["user_file"]["source"] == "--config file"
    assert folders["data"] == {"value": str(Path(env["MOSAIC_HOME"]) / "data"), "source": "MOSAIC_HOME", "where": None}

    secrets = {s["for"]: s for s in settings["secrets"]}
    assert secrets["central audit store"]["environment"] == "MOSAIC_SECRET_CENTRAL"
    assert secrets["central audit store"]["environment_set"] is True
    assert secrets["central audit store"]["keyring_set"] is None  # no keyring on this machine: said, not fatal
    assert secrets["study diabetes pseudonym key"]["environment_set"] is True
    assert secrets["GOV.UK Notify API key"]["environment_set"] is True
    assert secrets["audit journal key"]["environment_set"] is True
    basic = next(s for s in settings["secrets"] if s["for"] == "practice riverside")
    assert basic["environment"] == "MOSAIC_SECRET_RIVERSIDE" and basic["environment_set"] is True
    key_files = [s for s in settings["secrets"] if "file" in s]
    assert key_files and all(s["present"] for s in key_files)  # SMART practices' key files, by path only

    out = text.stdout
    assert "[practice riverside]" in out and "[secrets]" in out
    assert "MOSAIC_SECRET_CENTRAL set" in out and f"(machine file {machine_file})" in out


def test_sources_in_process_with_group_policy_and_a_keyring(monkeypatch: pytest.MonkeyPatch, test_keyring,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_machine_file('[identity]\nissuer = "https://idp.example"\nclient_id = "mosaic"\nidle_lock_minutes = 20\n'
                       + GOOD)
    paths.user_config_file().write_text('[lock]\nidle_lock_minutes = 30\n\n[[practice]]\nid = "riverside"\n'
                                        'colour = "#007f3b"\n', encoding="utf-8")
    monkeypatch.setattr(group_policy, "read_group_policy", lambda: GroupPolicy(idle_lock_minutes=5))
    keyring.set_password("mosaic", "riverside", "kept-in-the-keyring-31337")
    monkeypatch.setenv("MOSAIC_SECRET_HILLVIEW", "planted-in-the-environment-8080")
    assert main(["config", "show", "--json"]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert main(["config", "show"]) == 0
    text = capsys.readouterr().out
    for value in ("kept-in-the-keyring-31337", "planted-in-the-environment-8080"):
        assert value not in text and value not in json.dumps(settings)

    idle = settings["idle_lock_minutes"]
    assert (idle["value"], idle["source"], idle["where"]) == (5, "Group Policy",
                                                               r"HKLM\SOFTWARE\Policies\Mosaic\IdleLockMinutes")
    assert "30 minutes" in idle["note"] and "not applied" in idle["note"] and "not applied" in text
    riverside = next(p for p in settings["practices"] if p["id"] == "riverside")["settings"]
    assert riverside["colour"]["source"] == "user file" and riverside["colour"]["value"] == "#007f3b"
    assert riverside["base_url"]["source"] == "machine file" and riverside["id"]["source"] == "machine file"
    assert settings["identity"]["scopes"] == {"value": ["openid", "profile"], "source": "default", "where": None}
    assert settings["policy"] is None and "(none configured" in text
    secrets = {s["for"]: s for s in settings["secrets"]}
    assert secrets["practice riverside"]["keyring_set"] is True
    assert secrets["practice riverside"]["environment_set"] is False
    assert secrets["practice hillview"]["environment_set"] is True
    assert "idle_lock_minutes  5" in text and "(Group Policy HKLM\\SOFTWARE\\Policies\\Mosaic\\IdleLockMinutes)" in text


def test_a_bad_file_is_a_configuration_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('auth = "basic"', 'auth = "kerberos"'), encoding="utf-8")
    assert main(["config", "show", "--config", str(bad)]) == 2
    assert "bad.toml, practice 'riverside', key 'auth': must be one of" in capsys.readouterr().err
    bad.write_text('[notify]\nrule = "never"\n', encoding="utf-8")  # machine-only, in a --config file
    assert main(["config", "show", "--config", str(bad)]) == 2
    assert "key 'notify'" in capsys.readouterr().err


def test_a_keyring_that_never_answers_is_bounded(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A locked keyring whose unlock prompt nobody answers: each entry says so within the bound, asked once."""
    import threading

    from keyring.backend import KeyringBackend

    from app.core import effective_settings

    release, asked = threading.Event(), []

    class Prompting(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            asked.append(username)
            release.wait()
            return "never-seen-4711"

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("config show never writes")

        def delete_password(self, service: str, username: str) -> None:
            raise AssertionError("config show never deletes")

    write_machine_file(GOOD)
    monkeypatch.setattr(effective_settings, "KEYRING_TIMEOUT_S", 0.1)
    previous = keyring.get_keyring()
    keyring.set_keyring(Prompting())
    try:
        assert main(["config", "show", "--json"]) == 0
        settings = json.loads(capsys.readouterr().out)
        assert main(["config", "show"]) == 0
        text = capsys.readouterr().out
    finally:
        keyring.set_keyring(previous)
        release.set()
    secrets = [s for s in settings["secrets"] if "keyring_set" in s]
    assert len(secrets) >= 2
    for secret in secrets:
        assert secret["keyring_set"] is None
        assert secret["keyring_problem"] == "the keyring did not answer within 0.1 s"
    assert asked == ["riverside", "riverside"]  # once per run: the other entries were not asked
    assert f"keyring service mosaic, user {secrets[1]['keyring'].split()[-1]}: the keyring did not answer within " \
           "0.1 s" in text
    assert "never-seen-4711" not in text


def test_config_show_prints_urls_only_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """A query string (here a client key's path; never a password, which is refused) is not printed."""
    write_machine_file('[audit]\ncentral_url = "postgresql+psycopg://mosaic_ws@audit.example/a?sslmode=verify-full'
                       '&sslkey=/etc/mosaic/secret-client-key.pem"\n' + GOOD)
    assert main(["config", "show", "--json"]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert main(["config", "show"]) == 0
    text = capsys.readouterr().out
    assert settings["audit"]["central_url"]["value"] == "postgresql+psycopg://mosaic_ws@audit.example/a?..."
    assert "secret-client-key" not in text and "secret-client-key" not in json.dumps(settings)
    assert "mosaic_ws@audit.example/a?..." in text
