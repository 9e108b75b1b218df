"""`mosaic doctor` as IT runs it, against the files `mosaic demo-server --write-config FILE` writes (a real demo
process; its FILE.machine.toml installed as the machine-wide file); and the journal's versions through the CLI:
an upgrade migrates an older journal, a journal from a newer Mosaic is refused naming the file."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.audit import chain, migrations
from tests.machine import CLI, TEST_MACHINE_DIR_ENV, demo_env, needs_root, running_demo_server


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("doctor")
    config = folder / "demo.toml"
    with running_demo_server(config, "--patients", "60", env=demo_env(folder)) as env:
        yield config, env


@pytest.fixture
def it_env(demo, tmp_path: Path) -> dict[str, str]:
    """The demo's secrets and journal key, this test's own per-user folder, and the demo's machine-only
    settings ([identity], [notify]) installed as this test's machine-wide file, read-only to users."""
    config, env = demo
    machine = tmp_path / "machine"
    machine.mkdir(mode=0o755)
    target = machine / "practices.toml"
    target.write_text(config.with_name(config.name + ".machine.toml").read_text())
    target.chmod(0o644)
    return {**env, "MOSAIC_HOME": str(tmp_path / "home"), TEST_MACHINE_DIR_ENV: str(machine)}


@pytest.fixture
def user_env(demo, tmp_path: Path) -> dict[str, str]:
    """The demo's secrets and journal key and this test's own per-user folder, with no machine-wide file: the
    user is the computer's account (commands that journal need no browser sign-in)."""
    _, env = demo
    return {**env, "MOSAIC_HOME": str(tmp_path / "home"), TEST_MACHINE_DIR_ENV: str(tmp_path / "no-machine")}


def mosaic(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=90)


def doctor_json(config: Path, env: dict[str, str]) -> tuple[int, dict]:
    result = mosaic("doctor", "--config", str(config), "--json", env=env)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


@needs_root
def test_a_pc_set_up_like_the_demo_is_well(demo, it_env: dict[str, str]) -> None:
    config, _ = demo
    status, report = doctor_json(config, it_env)
    checks = {c["name"]: c for c in report["checks"]}
    assert status == 0, [c for c in report["checks"] if c["status"] != "ok"]
    assert report["ok"] is True and report["counts"] == {"ok": len(checks), "warn": 0, "fail": 0}
    assert report["mosaic"] == __import__("app").installed_version()
    practices = [name for name in checks if name.startswith("practice:")]
    assert sorted(practices) == sorted(f"practice:{p['id']}" for p in tomllib.loads(config.read_text())["practice"])
    assert all("online" in checks[p]["detail"] and "clock is in step" in checks[p]["detail"] for p in practices)
    assert "FHIR 3.0.1" in checks["practice:oakwood"]["detail"]  # GP Connect, through its own adapter
    assert "discovery document and 1 signing key(s) read" in checks["identity"]["detail"]
    assert checks["keyring"]["detail"].startswith("tests.keyring_backend.FileKeyring answers")
    assert list(checks)[:7] == ["qt-libraries", "keyring", "machine-file", "user-file", "policy", "journal-folder",
                                "journal-schema"]
    assert all(set(c) == {"name", "title", "status", "detail", "action", "seconds"} for c in report["checks"])
    secrets = [v for k, v in it_env.items() if k.startswith("MOSAIC_SECRET_")]
    assert secrets and not any(secret in json.dumps(report) for secret in secrets)


@needs_root
def test_the_text_report_and_a_practice_that_is_down(demo, it_env: dict[str, str], tmp_path: Path) -> None:
    config, _ = demo
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tomllib.loads(config.read_text())
    down = data["practice"][0]["id"]
    text = config.read_text().replace(data["practice"][0]["base_url"], f"http://127.0.0.1:{port}/fhir", 1)
    broken = tmp_path / "down.toml"
    broken.write_text(text)
    broken.chmod(0o600)
    result = mosaic("doctor", "--config", str(broken), env=it_env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL  Practice {data['practice'][0]['name']} ({down}):")
    assert f"What to do: Check that this PC reaches 127.0.0.1:{port}" in result.stdout
    assert sum(line.startswith("ok    Practice") for line in lines) == len(data["practice"]) - 1
    assert lines[-1].startswith("mosaic ") and ", 1 failed (" in lines[-1]


@needs_root
def test_unsafe_machine_file_malformed_policy_no_keyring(demo, it_env: dict[str, str], tmp_path: Path) -> None:
    config, _ = demo
    machine = Path(it_env[TEST_MACHINE_DIR_ENV]) / "practices.toml"
    policy = tmp_path / "policy" / "policy.toml"
    policy.parent.mkdir(mode=0o755)
    policy.write_text('[roles.hub]\npractices = "everything"\n')
    policy.chmod(0o644)
    machine.write_text(f'[policy]\nfile = "{policy}"\n\n' + machine.read_text())
    machine.chmod(0o666)
    env = {**it_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    status, report = doctor_json(config, env)
    checks = {c["name"]: c for c in report["checks"]}
    assert status == 1 and report["ok"] is False
    assert {name for name, c in checks.items() if c["status"] == "fail"} == {"machine-file", "policy", "keyring"}
    assert "writable by group or others (mode 0666)" in checks["machine-file"]["detail"]
    assert f"access policy {policy}, line 2" in checks["policy"]["detail"]
    assert "No OS keyring" in checks["keyring"]["detail"]


def test_doctor_never_hangs_on_a_silent_practice(demo, it_env: dict[str, str], tmp_path: Path) -> None:
    config, _ = demo
    with socket.create_server(("127.0.0.1", 0)) as silent:
        text = config.read_text()
        text += ('\n[[practice]]\nid = "silent"\nname = "Silent Surgery"\nods_code = "Y09999"\nadapter = "fhir-r4"\n'
                 f'base_url = "http://127.0.0.1:{silent.getsockname()[1]}/fhir"\nauth = "none"\ntimeout = 1\n')
        file = tmp_path / "silent.toml"
        file.write_text(text)
        file.chmod(0o600)
        status, report = doctor_json(file, it_env)
    checks = {c["name"]: c for c in report["checks"]}
    assert status == 1 and checks["practice:silent"]["status"] == "fail"
    assert "did not answer within 1 s" in checks["practice:silent"]["detail"]
    others = [c for name, c in checks.items() if name.startswith("practice:") and name != "practice:silent"]
    assert others and all(c["status"] == "ok" for c in others)


# --- the journal's versions, through the CLI ----------------------------------------------------------------

def old_journal(path: Path) -> list[dict]:
    """A journal as Mosaic at schema 0001 left it: three unkeyed entries, no outbox."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine

    from app.core.audit.model import Action, AuditUser, JournalEntry

    path.parent.mkdir(parents=True, mode=0o700)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrations.upgrade(conn, "0001")
    engine.dispose()
    rows, prev = [], chain.GENESIS
    for seq in range(1, 4):
        entry = JournalEntry(action=Action.READ, user=AuditUser("alice", "Alice"), practice_id="riverside",
                             patient_nhs_number="9434765919",
                             recorded_at=datetime(2025, 3, 12, 9, 30, tzinfo=UTC) + timedelta(minutes=seq))
        row = chain.to_row(entry, seq, prev)
        rows.append(row)
        prev = row["hash"]
    con = sqlite3.connect(path)
    con.executemany(f"INSERT INTO journal ({', '.join(rows[0])}) VALUES ({', '.join('?' * len(rows[0]))})",
                    [tuple(r.values()) for r in rows])
    con.commit()
    con.close()
    path.chmod(0o600)
    return rows


def contents(path: Path) -> list[str]:
    """Every table's rows as SQL (a read-write open may switch the file to WAL mode: its header, not its contents)."""
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def schema_of(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        con.close()


def test_an_upgrade_migrates_an_older_journal_keeping_its_entries(demo, user_env: dict[str, str]) -> None:
    config, _ = demo
    journal = Path(user_env["MOSAIC_HOME"]) / "data" / "journal.sqlite"
    rows = old_journal(journal)
    status, report = doctor_json(config, user_env)
    schema = next(c for c in report["checks"] if c["name"] == "journal-schema")
    assert schema["status"] == "ok" and f"schema 0001; this Mosaic upgrades it to {migrations.HEAD}" in schema["detail"]
    assert schema_of(journal) == "0001"  # doctor reads, never migrates

    searched = mosaic("search", "--config", str(config), "--json", "smith", env=user_env)
    assert searched.returncode in (0, 1), searched.stderr  # GP Connect practices search by NHS number only
    assert schema_of(journal) == migrations.HEAD
    listed = mosaic("audit", "list", "--json", env=user_env)
    assert listed.returncode == 0, listed.stderr
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["entry_id"] for r in rows} <= {e["entry_id"] for e in entries}
    assert any(e["action"] == "search" for e in entries)
    verified = mosaic("audit", "verify", env=user_env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("command", [["search", "--json", "smith"], ["audit", "list"], ["audit", "verify"],
                                     ["check"]])
def test_an_older_mosaic_refuses_a_newer_journal_naming_the_file(demo, user_env: dict[str, str],
                                                                  command: list[str]) -> None:
    config, _ = demo
    journal = Path(user_env["MOSAIC_HOME"]) / "data" / "journal.sqlite"
    old_journal(journal)
    con = sqlite3.connect(journal)
    con.execute("UPDATE alembic_version SET version_num = '0099'")
    con.commit()
    con.close()
    before = contents(journal)
    args = [*command[:1], "--config", str(config), *command[1:]] if command[0] != "audit" else command
    result = mosaic(*args, env=user_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{journal}: a newer version of Mosaic wrote it (journal schema 0099;" in result.stderr
    assert f"knows schemas up to {migrations.HEAD}). Its entries are untouched. Update Mosaic" in result.stderr
    assert "Traceback" not in result.stderr
    assert contents(journal) == before
    if command[0] != "search":
        return
    status, report = doctor_json(config, user_env)
    schema = next(c for c in report["checks"] if c["name"] == "journal-schema")
    assert status == 1 and schema["status"] == "fail" and "written by a newer Mosaic (schema 0099" in schema["detail"]
