"""`mosaic` and `mosaic demo` with an access policy that cannot be used: a one-line message naming the file
and line, exit 2, no traceback, and no demo practices started (run as a user would, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.core.test_policy import write_policy
from tests.machine import CLI, TEST_MACHINE_DIR_ENV, set_machine_policy

MALFORMED = '[roles.clinician]\npractices = ["*"\nreasons = ["Direct care"]\n'


def run_mosaic(*args: str, policy: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    machine = tmp_path / "machine"
    set_machine_policy(policy, machine)  # the machine-wide file names the policy, as IT's would
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(MOSAIC_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    env[TEST_MACHINE_DIR_ENV] = str(machine)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [(), ("demo", "--patients", "50")], ids=["window", "demo"])
def test_a_malformed_policy_stops_mosaic_with_the_file_and_line(command, tmp_path) -> None:
    path = write_policy(tmp_path, MALFORMED)
    result = run_mosaic(*command, policy=path, tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mosaic: access policy {path}, line 3: not valid TOML")
    assert "Mosaic cannot start" in lines[0]
    assert not (tmp_path / "home" / "data").exists(), "nothing started: no journal was opened"


def test_a_policy_the_user_could_change_stops_mosaic(tmp_path) -> None:
    path = write_policy(tmp_path, '[roles.clinician]\npractices = ["*"]\n')
    path.chmod(0o666)
    result = run_mosaic("demo", "--patients", "50", policy=path, tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(path) in line and "writable by group or others" in line


def test_an_unknown_key_names_its_line(tmp_path) -> None:
    path = write_policy(tmp_path, '[roles.clinician]\npractices = ["*"]\ncolour = "red"\n')
    result = run_mosaic(policy=path, tmp_path=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"{path}, line 3: unknown key 'colour'" in line
