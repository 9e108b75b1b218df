"""`mosaic insight …` run as a script would: a real `mosaic demo-server --write-config FILE` process, real
subprocess calls with only the files it wrote (no prompt, no browser), the store in the user's data folder, and
every command's journal entry read back with `mosaic audit list --json`."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.test_policy import write_policy
from tests.machine import CLI, demo_env, needs_root, running_demo_server, set_machine_policy

pytest.importorskip("app.insight.store")

SHOW_KEYS = ["practice", "metric", "period", "value", "numerator", "denominator", "suppressed", "status"]


def run(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A demo server (five practices, two GP Connect) and a store refreshed once by `mosaic insight refresh`."""
    folder = tmp_path_factory.mktemp("insight-cli")
    config = folder / "demo.toml"
    with running_demo_server(config, "--patients", "150", env=demo_env(folder)) as env:
        result = run("insight", "refresh", "--config", str(config), env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        yield config, env


def insight_entries(env: dict[str, str]) -> list[dict]:
    listed = run("audit", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return [row for row in map(json.loads, listed.stdout.splitlines()) if row["action"] == "insight"]


def test_refresh_names_every_practice_and_gp_connect_is_not_provided(refreshed) -> None:
    config, env = refreshed
    result = run("insight", "refresh", "--config", str(config), env=env)  # a second one: only what changed
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert sum("not provided by this practice's system" in line for line in lines) == 2
    assert sum(" ok (" in line and "only what changed" in line for line in lines) == 3
    assert re.search(r"3 of 5 practices refreshed; 2 not provided by their system", result.stderr), result.stderr


def test_show_json_has_exactly_the_issue_s_keys(refreshed) -> None:
    config, env = refreshed
    result = run("insight", "show", "--config", str(config), "--metric", "dna_rate", "--by", "practice", "--json",
                 env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows
    for row in rows:
        keys = list(row)
        assert keys == SHOW_KEYS + (["error"] if row["status"] == "failed" else []), keys
        assert row["metric"] == "dna_rate" and row["status"] in ("ok", "not provided", "failed")
        if row["status"] == "not provided":
            assert row["value"] is None  # never a zero
    assert sum(r["status"] == "not provided" for r in rows) == 2
    assert sum(r["status"] == "ok" and r["value"] is not None for r in rows) >= 1


def test_show_csv_and_text(refreshed) -> None:
    config, env = refreshed
    result = run("insight", "show", "--config", str(config), "--metric", "appointments", "--by", "mode", "--csv",
                 env=env)
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert table and set(SHOW_KEYS) | {"group"} <= set(table[0])
    text = run("insight", "show", "--config", str(config), "--metric", "utilisation", "--by", "month", env=env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].startswith("Utilisation")  # the measure's title and definition first


def test_unknown_metric_lists_the_known_ones_and_a_bad_period_says_the_format(refreshed) -> None:
    config, env = refreshed
    result = run("insight", "show", "--config", str(config), "--metric", "dna", env=env)
    assert result.returncode == 2
    assert "unknown metric 'dna'" in result.stderr and "dna_rate" in result.stderr and "utilisation" in result.stderr
    for bad in ("2026-13", "March 2026", "2026-03..2025-01", "2026-3"):
        result = run("insight", "show", "--config", str(config), "--metric", "dna_rate", "--period", bad, env=env)
        assert result.returncode == 2, bad
        assert "YYYY-MM" in result.stderr, result.stderr


def test_export_writes_parquet(refreshed, tmp_path: Path) -> None:
    config, env = refreshed
    result = run("insight", "export", "--config", str(config), "--parquet", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert written and all(p.suffix == ".parquet" and p.stat().st_size > 0 for p in written)


def test_import_gpad_and_peers(refreshed, tmp_path: Path) -> None:
    from app.demo.gpad_synthetic import write_synthetic_gpad

    config, env = refreshed
    files = write_synthetic_gpad(tmp_path / "gpad", count=30)
    result = run("insight", "import-gpad", "--config", str(config), *map(str, files.all), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "national figures" in result.stdout
    practice = json.loads(run("insight", "show", "--config", str(config), "--metric", "dna_rate", "--json",
                              env=env).stdout.splitlines()[0])["practice"]
    peers = run("insight", "peers", practice, "--config", str(config), "--metric", "dna_rate", env=env)
    assert peers.returncode == 0, peers.stderr
    assert "funnel" in peers.stdout.lower() and "decile" in peers.stdout.lower()


def test_every_insight_command_leaves_a_journal_entry(refreshed, tmp_path: Path) -> None:
    config, env = refreshed
    before = len(insight_entries(env))
    commands = [("show", "--metric", "appointments", "--by", "week"),
                ("export", "--parquet", str(tmp_path / "p")),
                ("refresh",)]
    for command in commands:
        assert run("insight", *command, "--config", str(config), env=env).returncode == 0
    entries = insight_entries(env)
    assert len(entries) == before + 4  # a refresh is journaled before its requests and with its outcome
    newest = entries[:4]
    assert [e["details"]["insight"] for e in newest] == ["refresh", "refresh", "export", "show"]
    show = newest[3]
    assert show["details"]["metric"] == "appointments" and show["details"]["by"] == "week"
    assert re.fullmatch(r"\d{4}-\d{2}", show["details"]["period"])  # the period shown, though none was given
    assert set(show["details"]["practices"]) == {"riverside", "oakwood", "millbrook", "castlegate", "hillview"}
    assert show["patient_nhs_number"] is None and show["user_login"]
    listed = run("audit", "list", env=env)
    assert "show appointments by week" in listed.stdout


@needs_root
def test_an_insight_only_role_runs_insight_but_cannot_search(refreshed, tmp_path: Path) -> None:
    from app.core.os_account import os_login

    config, env = refreshed
    login = os_login()
    policy = write_policy(tmp_path, f'[roles.lead]\npractices = ["*"]\nrecords = false\ninsight = true\n\n'
                                    f'[users.{login}]\nrole = "lead"\n')
    machine = Path(env["MOSAIC_TEST_MACHINE_DIR"])
    set_machine_policy(policy, machine)
    try:
        shown = run("insight", "show", "--config", str(config), "--metric", "appointments", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        search = run("search", "--config", str(config), "smith", env=env)
        assert search.returncode == 1 and "without access to patient records" in search.stderr
        write_policy(tmp_path, f'[roles.gp]\npractices = ["*"]\n\n[users.{login}]\nrole = "gp"\n')
        refused = run("insight", "show", "--config", str(config), "--metric", "appointments", env=env)
        assert refused.returncode == 1 and "does not include locality insight" in refused.stderr
    finally:
        (machine / "practices.toml").unlink()


def test_no_figure_is_printed_when_the_journal_cannot_record_the_query(refreshed, tmp_path: Path) -> None:
    """The clinical-safety rule for insight too: a journal that cannot be written means nothing is shown."""
    from app.core.audit.journal import FILE_NAME

    config, env = refreshed
    home = tmp_path / "home"
    data = home / "data"
    data.mkdir(parents=True)
    (data / FILE_NAME).write_bytes(b"this is not an audit journal" * 100)
    broken = {**env, "MOSAIC_HOME": str(home)}
    result = run("insight", "show", "--config", str(config), "--metric", "appointments", "--json", env=broken)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert "nothing was shown" in result.stderr and "journal" in result.stderr


def test_quality_names_each_practice_and_the_slot_type_mapped_two_ways(refreshed) -> None:
    """Hillview maps its slot types to other national categories than the rest (the demo's books): the check
    names that local type with each practice's category; GP Connect practices read "not provided"."""
    config, env = refreshed
    before = len(insight_entries(env))
    result = run("insight", "quality", "--config", str(config), "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    practices = {r["practice"]: r for r in rows if "practice" in r}
    assert set(practices) == {"riverside", "oakwood", "millbrook", "castlegate", "hillview"}
    assert {p for p, r in practices.items() if r["status"] == "not provided"} == {"oakwood", "castlegate"}
    assert all(r["appointments"] > 0 and 0 <= r["unmapped_category"] < 1
               for p, r in practices.items() if r["status"] == "ok")
    issues = [r for r in rows if "local_type" in r]
    assert issues, "the demo's Hillview maps a local slot type differently"
    assert any({u["practice"] for u in issue["mapped_to"]} >= {"hillview"} and
               len({u["category"] for u in issue["mapped_to"]}) > 1 for issue in issues)
    entries = insight_entries(env)
    assert len(entries) == before + 1 and entries[0]["details"]["insight"] == "quality"
    text = run("insight", "quality", "--config", str(config), env=env)
    assert text.returncode == 0 and "mapped to different national categories" in text.stdout
