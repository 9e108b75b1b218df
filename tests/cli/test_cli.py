"""The `mosaic` command, run as a user would: a real demo-server process and real subprocess calls."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.machine import (
    CLI,
    TEST_MACHINE_DIR_ENV,
    demo_env,
    running_demo_server,
    set_machine_policy,
    write_machine_file,
)

MOSAIC = CLI  # `mosaic`, with the test's machine folder (tests/cli_launcher.py)


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOSAIC, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "demo.toml"
    with running_demo_server(config, "--patients", "150", env=demo_env(folder)) as env:  # no machine-wide file
        yield config, env


def test_demo_server_writes_config_and_private_secrets(demo_server) -> None:
    config, env = demo_server
    env_file = config.with_name(config.name + ".env")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = config.read_text()
    assert text.count("[[practice]]") == 5
    assert "MOSAIC_SECRET" not in text and "password" not in text.lower()


def test_check_reports_every_practice_online(demo_server) -> None:
    config, env = demo_server
    result = run("check", "--config", str(config), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" online ") == 5
    assert "FHIR 4.0.1" in result.stdout
    assert "5 of 5 practices online" in result.stdout


def test_check_fails_with_status_1_when_a_practice_cannot_sign_in(demo_server) -> None:
    config, env = demo_server
    broken = dict(env)
    key = next(k for k in broken if k.startswith("MOSAIC_SECRET_"))
    broken[key] = "wrong-password"
    result = run("check", "--config", str(config), env=broken)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "4 of 5 practices online" in result.stdout


def test_search_json_then_show_json(demo_server) -> None:
    config, env = demo_server
    result = run("search", "--config", str(config), "--json", "a", env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    notes = [r for r in lines if "note" in r]  # GP Connect practices: searched by NHS number only
    assert {r["practice"] for r in notes} == {"oakwood", "castlegate"}
    rows = [r for r in lines if "note" not in r]
    assert rows and all(set(r) == {"practice", "id", "nhs_number", "family", "given", "birth_date", "sex", "postcode",
                                   "deceased", "address", "registration"} for r in rows)
    assert len({r["practice"] for r in rows}) >= 2
    first = next(r for r in rows if r["nhs_number"])

    by_number = run("search", "--config", str(config), "--json", first["nhs_number"], env=env)
    assert {json.loads(line)["id"] for line in by_number.stdout.splitlines()
            if json.loads(line)["practice"] == first["practice"]} == {first["id"]}

    shown = run("show", "--config", str(config), "--json", first["practice"], first["nhs_number"], env=env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["patient"]["id"] == first["id"] and record["patient"]["family"] == first["family"]
    assert record["patient"]["address"]["postcode"] == first["postcode"]  # the demo's address and registration
    assert record["patient"]["registration"]["practice_ods"] and "deceased" in record["patient"]
    assert set(record["sections"]) == {"problems", "medications", "allergies", "encounters", "observations",
                                       "immunisations"}
    assert all(s["status"] == "loaded" for s in record["sections"].values())


def test_show_text_has_the_banner(demo_server) -> None:
    config, env = demo_server
    found = run("search", "--config", str(config), "--json", "b", env=env)
    rows = [json.loads(line) for line in found.stdout.splitlines() if '"note"' not in line]
    patient = next(r for r in rows if r["nhs_number"] and r["birth_date"])
    shown = run("show", "--config", str(config), patient["practice"], patient["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    first_lines = shown.stdout.splitlines()[:3]
    n = patient["nhs_number"]
    assert first_lines[0].startswith(patient["family"].upper() + ",")
    assert f"NHS No. {n[:3]} {n[3:6]} {n[6:]}" in first_lines[1]
    assert "== Problems ==" in shown.stdout


def test_search_json_names_the_practice_that_failed(demo_server) -> None:
    config, env = demo_server
    broken = dict(env)
    practice_ids = [p["id"] for p in tomllib.loads(config.read_text())["practice"]]
    key = sorted(k for k in broken if k.removeprefix("MOSAIC_SECRET_").lower() in practice_ids)[0]
    broken[key] = "wrong-password"
    result = run("search", "--config", str(config), "--json", "a", env=broken)
    assert result.returncode == 1
    errors = [json.loads(line) for line in result.stdout.splitlines() if '"error"' in line]
    assert len(errors) == 1 and errors[0]["practice"] == key.removeprefix("MOSAIC_SECRET_").lower()


def test_invalid_nhs_number_is_a_usage_error(demo_server) -> None:
    config, env = demo_server
    result = run("search", "--config", str(config), "943 476 5918", env=env)
    assert result.returncode == 2 and "check digit" in result.stderr


def test_unknown_practice_and_unknown_patient(demo_server) -> None:
    config, env = demo_server
    assert run("show", "--config", str(config), "nowhere", "1", env=env).returncode == 2
    import tomllib

    first = tomllib.loads(config.read_text())["practice"][0]["id"]
    missing = run("show", "--config", str(config), first, "943 476 5919", env=env)
    assert missing.returncode == 1 and "No patient with NHS number 943 476 5919" in missing.stderr


def test_broken_config_names_file_practice_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[practice]]\nid = "x"\nname = "X"\nods_code = "Y1"\nadapter = "fhir-r4"\n'
                   'base_url = "http://127.0.0.1:1/fhir"\nauth = "password"\n')
    result = run("check", "--config", str(bad), env=dict(os.environ))
    assert result.returncode == 2
    assert "bad.toml" in result.stderr and "practice 'x'" in result.stderr and "key 'auth'" in result.stderr


def test_credentials_set_refuses_without_a_terminal(tmp_path: Path) -> None:
    config = tmp_path / "p.toml"
    config.write_text('[[practice]]\nid = "x"\nname = "X"\nods_code = "Y1"\nadapter = "fhir-r4"\n'
                      'base_url = "http://127.0.0.1:1/fhir"\n')
    result = subprocess.run([*MOSAIC, "--config", str(config), "credentials", "set", "x"], input="s3cret\n",
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "terminal" in result.stderr


def test_credentials_takes_a_study_key_only_for_a_study_the_policy_defines(tmp_path: Path) -> None:
    from tests.core.test_policy import write_policy

    config = tmp_path / "p.toml"
    config.write_text('[[practice]]\nid = "x"\nname = "X"\nods_code = "Y1"\nadapter = "fhir-r4"\n'
                      'base_url = "http://127.0.0.1:1/fhir"\n')
    policy = write_policy(tmp_path, '[roles.r]\npractices = ["*"]\nresearch = true\nstudy = "diab-26"\n\n'
                                    '[studies.diab-26]\nconsented = []\n')
    set_machine_policy(policy)  # this test's machine folder (the environment names it for the launcher)
    env = dict(os.environ)
    known = subprocess.run([*MOSAIC, "--config", str(config), "credentials", "set", "study-diab-26"],
                           input="k" * 32 + "\n", capture_output=True, text=True, timeout=30, env=env)
    assert known.returncode == 2 and "terminal" in known.stderr  # accepted; it then asks at a terminal only
    unknown = subprocess.run([*MOSAIC, "--config", str(config), "credentials", "set", "study-other"],
                             input="k" * 32 + "\n", capture_output=True, text=True, timeout=30, env=env)
    assert unknown.returncode == 2 and "study-<id>" in unknown.stderr


# --- mosaic audit ----------------------------------------------------------------------------------

def _show_one(demo_server) -> dict:
    config, env = demo_server
    found = run("search", "--config", str(config), "--json", "c", env=env)
    rows = [json.loads(line) for line in found.stdout.splitlines() if '"note"' not in line]
    patient = next(r for r in rows if r.get("nhs_number"))
    shown = run("show", "--config", str(config), "--json", patient["practice"], patient["nhs_number"], env=env)
    assert shown.returncode == 0, shown.stderr
    return patient


def test_audit_list_answers_who_opened_this_patient(demo_server) -> None:
    config, env = demo_server
    patient = _show_one(demo_server)
    listed = run("audit", "list", "--patient", patient["nhs_number"], "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    reads = [e for e in entries if e["action"] == "read"]
    assert len(reads) == 1
    read = reads[0]
    assert read["practice_id"] == patient["practice"] and read["patient_local_id"] == patient["id"]
    assert read["outcome"] == "success" and read["sections"] and read["hash"]
    # the NHS-number lookup that `show` made is journaled as a search at that practice, before the read
    searches = [e for e in entries if e["action"] == "search"]
    assert any(e["practice_id"] == patient["practice"] for e in searches)
    by_user = [json.loads(line) for line in run("audit", "list", "--user", read["user_login"], "--json",
                                                 env=env).stdout.splitlines()]
    assert read["entry_id"] in {e["entry_id"] for e in by_user}
    assert run("audit", "list", "--user", "somebody-else", "--json", env=env).stdout == ""


def test_audit_verify_status_and_export(demo_server, tmp_path: Path) -> None:
    config, env = demo_server
    _show_one(demo_server)
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout
    status = run("audit", "status", env=env)
    assert status.returncode == 0, status.stdout
    csv_file = tmp_path / "audit.csv"
    exported = run("audit", "export", "--format", "csv", "--output", str(csv_file), env=env)
    assert exported.returncode == 0, exported.stderr
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("recorded_at,entry_id,seq,action") and len(lines) > 2
    bundle = json.loads(run("--config", str(config), "audit", "export", "--format", "fhir", env=env).stdout)
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == len(lines) - 1
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"AuditEvent"}


def test_audit_verify_names_the_first_tampered_entry(demo_server, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    config, env = demo_server
    _show_one(demo_server)
    home = tmp_path / "copy"
    shutil.copytree(env["MOSAIC_HOME"], home)
    keyring_file = Path(env["MOSAIC_HOME"]).parent / "test-keyring.json"  # the same account's keyring
    shutil.copy(keyring_file, tmp_path / keyring_file.name)
    db = home / "data" / "journal.sqlite"
    with sqlite3.connect(db) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        seq, entry_id = conn.execute("SELECT seq, entry_id FROM journal ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
        conn.execute("UPDATE journal SET user_login = 'someone-else' WHERE seq = ?", (seq,))
    broken = run("audit", "verify", env={**env, "MOSAIC_HOME": str(home)})
    assert broken.returncode == 1
    assert f"entry {seq} " in broken.stdout and entry_id in broken.stdout


def test_audit_list_from_a_central_store(demo_server, tmp_path: Path) -> None:
    from app.core.audit.central import CentralStore
    from app.core.audit.journal import Journal

    config, env = demo_server
    patient = _show_one(demo_server)
    journal = Journal.open(Path(env["MOSAIC_HOME"]) / "data" / "journal.sqlite", read_only=True)
    url = f"sqlite:///{tmp_path / 'central.sqlite'}"
    store = CentralStore(url)
    store.ensure_schema()
    for entry in journal.query(patient_nhs_number=patient["nhs_number"]):
        store.insert(entry)
    journal.close()
    store.close()
    listed = run("audit", "list", "--central", url, "--patient", patient["nhs_number"], "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert any(json.loads(line)["action"] == "read" for line in listed.stdout.splitlines())
    with_password = run("audit", "list", "--central", "postgresql+psycopg://u:secret@127.0.0.1/test", env=env)
    assert with_password.returncode == 2 and "password" in with_password.stderr


def test_configured_central_store_receives_what_show_opened(demo_server, tmp_path: Path) -> None:
    from app.core.audit.central import CentralStore

    config, env = demo_server
    central_url = f"sqlite:///{tmp_path / 'central.sqlite'}"
    store = CentralStore(central_url)
    store.ensure_schema()
    found = run("search", "--config", str(config), "--json", "d", env=env)
    patient = next(json.loads(line) for line in found.stdout.splitlines() if '"nhs_number"' in line)
    machine = write_machine_file(f'[audit]\ncentral_url = "{central_url}"\n', tmp_path / "machine")  # IT's file
    env = {**env, TEST_MACHINE_DIR_ENV: str(machine.parent)}
    shown = run("show", "--config", str(config), "--json", patient["practice"], patient["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    central = store.query(practice=patient["practice"])
    store.close()
    assert [(e.action, e.patient_local_id) for e in central] == [("read", patient["id"])]


def test_audit_settings_refuse_a_password_in_the_url(demo_server, tmp_path: Path) -> None:
    config, env = demo_server
    machine = write_machine_file('[audit]\ncentral_url = "postgresql+psycopg://ws:hunter2@127.0.0.1/test"\n',
                                 tmp_path / "machine")
    result = run("check", "--config", str(config), env={**env, TEST_MACHINE_DIR_ENV: str(machine.parent)})
    assert result.returncode == 2 and "key 'central_url'" in result.stderr and "password" in result.stderr
    assert "hunter2" not in result.stderr


def test_show_queues_the_patient_digest_and_notify_status_counts_it(demo_server, tmp_path) -> None:
    """With the demo's machine-wide settings installed (its [notify] table tells patients of cross-practice
    opens): one digest per patient per day however often the record is opened, and `notify status` prints
    counts, never patients."""
    config, env = demo_server
    assert "[notify]" not in config.read_text()  # machine-only: never in a --config file
    settings = config.with_name(config.name + ".machine.toml").read_text()
    machine = write_machine_file(settings[settings.index("[notify]"):], tmp_path / "machine")  # no [identity]
    env = {**env, "MOSAIC_HOME": str(tmp_path / "home"), TEST_MACHINE_DIR_ENV: str(machine.parent)}
    assert "[notify]" in machine.read_text() and "MOSAIC_SECRET_NOTIFY" in env
    found = run("search", "--config", str(config), "--json", "a", env=env)
    row = next(r for r in map(json.loads, found.stdout.splitlines()) if "note" not in r and r["nhs_number"])
    for _ in range(2):
        shown = run("show", "--config", str(config), row["practice"], row["id"], env=env)
        assert shown.returncode == 0, shown.stderr
    status = run("--config", str(config), "notify", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "rule: cross-practice" in status.stdout
    assert " collecting: 1" in status.stdout and "next due: " in status.stdout
    for secret in (row["nhs_number"], row["family"]):
        assert secret not in status.stdout
