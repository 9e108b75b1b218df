"""The PyInstaller bundle runs with no Python and no virtual environment: the CLI, the demo and the window."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from tests.packaging.conftest import BUILD_TIMEOUT_S, VERSION, clean_env
from tests.packaging.running import demo_server, read_env_file, run_window_offscreen

#: the session's builds happen in the first test that needs them: PyInstaller, dpkg-buildpackage, lintian
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)


def test_the_bundle_has_both_launchers_and_says_its_version(bundle: Path, tmp_path: Path) -> None:
    assert (bundle / "mosaic").is_file() and (bundle / "mosaicw").is_file()
    done = subprocess.run([str(bundle / "mosaic"), "--version"], env=clean_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"mosaic {VERSION}"


def test_demo_server_and_search_from_the_bundle_alone(bundle: Path, tmp_path: Path) -> None:
    """Adapters are found through entry points (the bundle carries mosaic-gp's metadata): a FHIR R4 and a GP
    Connect practice answer; the journal's migrations run from the bundle's files."""
    env = clean_env(tmp_path)
    with demo_server(bundle / "mosaic", tmp_path, env) as config:
        secrets = read_env_file(config.with_name(config.name + ".env"))
        done = subprocess.run([str(bundle / "mosaic"), "search", "--config", str(config), "--json", "Smith"],
                              env={**env, **secrets}, capture_output=True, text=True, timeout=120)
        # the insight store (DuckDB, a compiled module the bundle must carry) and orjson, read and queried
        # last month and this one: `show` answers for the latest whole month (app/insight/periods.py)
        today = date.today()
        last = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
        refreshed = subprocess.run([str(bundle / "mosaic"), "insight", "refresh", "--config", str(config),
                                    "--period", f"{last:%Y-%m}..{today:%Y-%m}"],
                                   env={**env, **secrets}, capture_output=True, text=True, timeout=180)
        shown = subprocess.run([str(bundle / "mosaic"), "insight", "show", "--config", str(config), "--metric",
                                "appointments", "--json"], env={**env, **secrets}, capture_output=True, text=True,
                               timeout=120)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert shown.returncode == 0, shown.stderr
    assert {json.loads(line)["status"] for line in shown.stdout.splitlines()} == {"ok", "not provided"}
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["practice"] for r in rows} == {"riverside", "oakwood", "millbrook", "castlegate", "hillview"}
    assert any(r.get("family") == "Smith" for r in rows)
    journal = tmp_path / ".local" / "share" / "mosaic" / "journal.sqlite"
    assert journal.is_file()


def test_the_window_from_the_bundle_offscreen(bundle: Path, tmp_path: Path) -> None:
    returncode, stderr = run_window_offscreen(bundle / "mosaic", tmp_path)
    assert returncode == 0, stderr  # SIGTERM closes the window as its close button does (app/ui/stop_signals.py)
    assert "Traceback" not in stderr and "Fatal" not in stderr
