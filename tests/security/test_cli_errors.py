"""Issue 10, class 19 — tracebacks: `mosaic credentials delete` with no keyring; `mosaic search … | head` (a closed
pipe); a central store URL with a user name and an unreadable keyring.

One handler around the CLI's command dispatch (app/cli/errors.py) makes every failure a sentence with an exit
status: a closed pipe ends quietly with 141, a keyring that is missing, locked or broken says "the system keyring is
not available: …" with 1, anything else one sentence with 1 and the traceback only in the log file. The `mosaic`
processes are real; the failing keyrings are chosen through keyring's own PYTHON_KEYRING_BACKEND
(tests/security/broken_keyrings.py, or keyring's own "fail" backend).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.machine import CLI as MOSAIC
from tests.machine import add_machine_table

NO_KEYRING = "keyring.backends.fail.Keyring"  # keyring's own: what a PC without any keyring gets
BROKEN = [NO_KEYRING, "tests.security.broken_keyrings.Locked", "tests.security.broken_keyrings.NoDaemon",
          "tests.security.broken_keyrings.WillNotStart"]
IDS = ["no-keyring", "locked", "no-daemon", "will-not-start"]
#: a journal key for unattended runs (64 hex digits), so the journal opens without the keyring
JOURNAL_KEY = "5a" * 32
SAID = "mosaic: the system keyring is not available: "


def practice_file(tmp_path: Path) -> Path:
    """A practice directory with one practice where nothing answers (port 9, discard: refused on loopback)."""
    path = tmp_path / "practices.toml"
    path.write_text('[[practice]]\nid = "riverside"\nname = "Riverside Surgery"\nods_code = "A81001"\n'
                    'adapter = "fhir-r4"\nbase_url = "http://127.0.0.1:9/fhir"\n', encoding="utf-8")
    return path


def mosaic(*args: str, keyring: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOSAIC, *args], env={**os.environ, "PYTHON_KEYRING_BACKEND": keyring, **env},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_one_sentence(done: subprocess.CompletedProcess[str], starts: str) -> None:
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr.split(": ", 2)[0], done.stderr
    assert "Traceback" not in done.stdout, done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith(starts), done.stderr
    assert len([line for line in lines if line.startswith("mosaic: ")]) == 1, done.stderr


@pytest.mark.parametrize("backend", BROKEN, ids=IDS)
def test_credentials_delete_without_a_working_keyring_is_a_sentence(tmp_path, backend) -> None:
    done = mosaic("--config", str(practice_file(tmp_path)), "credentials", "delete", "riverside", keyring=backend)
    assert done.returncode == 1, done.stderr
    assert_one_sentence(done, SAID)


@pytest.mark.parametrize("command", [["search", "Smith"], ["show", "riverside", "a1b2c3"], ["check"]],
                         ids=["search", "show", "check"])
def test_a_central_store_user_name_with_an_unreadable_keyring_is_a_sentence(tmp_path, machine_dir, command) -> None:
    add_machine_table('[audit]\ncentral_url = "postgresql://auditor@127.0.0.1:5432/test"\n')
    done = mosaic(*command, "--config", str(practice_file(tmp_path)), keyring=NO_KEYRING,
                  MOSAIC_SECRET_JOURNAL_KEY=JOURNAL_KEY)
    assert done.returncode == 1, done.stderr
    assert_one_sentence(done, SAID)
    assert "central audit store" in done.stderr and "MOSAIC_SECRET_CENTRAL" in done.stderr  # what needed it


def family_at(server) -> str:
    return next(p.family for p in server.population if p.resource is None)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_mosaic_search_into_a_closed_pipe_ends_quietly(network, tmp_path, as_json) -> None:
    config = network.write_config(tmp_path / "demo.toml")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before Mosaic writes a line: every write meets a broken pipe
    try:
        child = subprocess.Popen([*MOSAIC, "search", "--config", str(config), *(["--json"] if as_json else []),
                                  family_at(network.servers[0])], stdout=write_end, stderr=subprocess.PIPE,
                                 env=dict(os.environ), text=True)
    finally:
        os.close(write_end)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 141, err  # 128 + SIGPIPE, as a shell reports a Unix tool the pipe closed on
    assert err == "", err  # quiet: no traceback, no "Exception ignored" at exit


def test_mosaic_search_piped_into_head_prints_no_traceback(network, tmp_path) -> None:
    config = network.write_config(tmp_path / "demo.toml")
    command = " ".join([*MOSAIC, "search", "--config", str(config), family_at(network.servers[0])])
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -c1"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)
    assert done.returncode in (0, 141), done.stderr  # 0 when every line fitted in the pipe before head left
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_an_unexpected_failure_is_one_sentence_and_the_details_go_to_the_log(tmp_path, monkeypatch, capsys) -> None:
    import app.cli

    def broken(args: object) -> int:
        raise ValueError("patient 943 476 5919 at Riverside")  # a message that must not reach the terminal

    monkeypatch.setattr(app.cli, "cmd_credentials", broken)  # in-process: a command with a bug in it
    status = app.cli.main(["--config", str(practice_file(tmp_path)), "credentials", "delete", "riverside"])
    err = capsys.readouterr().err
    assert status == 1
    [line] = err.strip().splitlines()
    assert line.startswith("mosaic: the command stopped on a failure Mosaic did not expect (ValueError)"), err
    assert "943 476 5919" not in err and "Traceback" not in err
    logged = Path(line.split("the details are in ", 1)[1].split("; ", 1)[0])
    text = logged.read_text(encoding="utf-8")
    assert "Traceback" in text and "ValueError" in text  # the details, for IT
