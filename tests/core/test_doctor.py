"""`mosaic doctor`'s checks in-process, against real files, real loopback servers and the real PostgreSQL.

The whole command against the demo's files, as IT runs it, is in tests/cli/test_doctor_cli.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keyring
import pytest

from app.core import paths
from app.core.audit import migrations
from app.core.audit.journal import Journal, default_path
from app.core.doctor import clock, files, local_checks, network_checks
from app.core.doctor.result import CheckResult, Status
from app.core.doctor.run import run_checks
from tests.machine import needs_root, set_machine_policy, write_machine_file
from tests.tls_server import self_signed_server

PATIENT = {"type": "Patient", "interaction": [{"code": "search-type"}]}
CAPABILITIES = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "software": {"name": "Test server"},
                "rest": [{"mode": "server", "resource": [PATIENT]}]}


def by_name(checks: list[CheckResult]) -> dict[str, CheckResult]:
    return {c.name: c for c in checks}


def practice_toml(pid: str, base_url: str, timeout: float = 5) -> str:
    return (f'[[practice]]\nid = "{pid}"\nname = "{pid.title()} Surgery"\nods_code = "Y0{len(pid):04d}"\n'
            f'adapter = "fhir-r4"\nbase_url = "{base_url}"\nauth = "none"\ntimeout = {timeout}\n\n')


class FhirMetadata(BaseHTTPRequestHandler):
    """A FHIR R4 server's /metadata whose clock runs `skew` ahead of this PC's."""

    skew = timedelta(0)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps(CAPABILITIES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(datetime.now(UTC) + self.skew, usegmt=True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fhir_server() -> Iterator[type[FhirMetadata]]:
    """A real FHIR metadata server on 127.0.0.1; set `.skew` on the yielded handler class, `.url` is its base."""
    handler = type("Handler", (FhirMetadata,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/fhir"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a practice that is down (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers: a practice that hangs."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "practices.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# --- the practices --------------------------------------------------------------------------------------------

def test_practices_are_checked_at_once_and_a_down_or_silent_one_fails_alone(
        tmp_path: Path, fhir_server, closed_port: int, silent_port: int) -> None:
    file = config(tmp_path, practice_toml("up", fhir_server.url) + practice_toml("down", f"http://127.0.0.1:{closed_port}")
                  + practice_toml("silent", f"http://127.0.0.1:{silent_port}", timeout=1))
    report = asyncio.run(run_checks(file))
    checks = by_name(report.checks)
    up, down, silent = checks["practice:up"], checks["practice:down"], checks["practice:silent"]
    assert up.status is Status.OK and "online" in up.detail and "FHIR 4.0.1, Test server" in up.detail
    assert "clock is in step" in up.detail
    assert down.status is Status.FAIL and "could not be reached at 127.0.0.1" in down.detail
    assert f"127.0.0.1:{closed_port}" in down.action
    assert silent.status is Status.FAIL and "did not answer within 1 s" in silent.detail  # its own timeout
    assert report.failed == [down, silent]


@pytest.mark.parametrize("minutes", [7, -12])
def test_a_server_clock_minutes_away_is_a_warning(tmp_path: Path, fhir_server, minutes: int) -> None:
    fhir_server.skew = timedelta(minutes=minutes)
    file = config(tmp_path, practice_toml("skewed", fhir_server.url))
    check = by_name(asyncio.run(run_checks(file)).checks)["practice:skewed"]
    assert check.status is Status.WARN
    assert f"{abs(minutes)} min {'ahead of' if minutes > 0 else 'behind'} this PC's" in check.detail
    assert "NTP" in check.action


def test_clock_skew_from_a_date_header() -> None:
    sent = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC).timestamp()
    assert clock.skew_seconds("Thu, 03 Dec 2026 12:06:00 GMT", sent, sent + 2) == pytest.approx(359)
    assert clock.skew_seconds(None, sent, sent) is None
    assert clock.skew_seconds("yesterday", sent, sent) is None
    assert clock.describe(359) == "6 min ahead of this PC's" and clock.describe(-1.5) == "in step with this PC's"


# --- files -----------------------------------------------------------------------------------------------------

@needs_root
def test_a_machine_file_others_can_change_fails(machine_dir: Path, fhir_server) -> None:
    path = write_machine_file(practice_toml("up", fhir_server.url))
    assert files.machine_file(files.load_settings(None)).status is Status.OK
    path.chmod(0o666)
    check = files.machine_file(files.load_settings(None))
    assert check.status is Status.FAIL and "is writable by group or others (mode 0666)" in check.detail
    assert f"chmod 0644 {path}" in check.action
    path.chmod(0o644)
    machine_dir.chmod(0o777)
    assert "folder" in files.machine_file(files.load_settings(None)).detail


def test_an_unusable_group_policy_value_fails_the_machine_file_check(machine_dir: Path, fhir_server,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "ok, 0 practice(s)": the machine file was not read, and Mosaic would not start."""
    from app.core import group_policy

    write_machine_file(practice_toml("up", fhir_server.url))
    bad = group_policy.checked({"MachineFolder": "//server/share/Mosaic"})
    monkeypatch.setattr(group_policy, "read_group_policy", lambda: bad)
    checks = by_name(asyncio.run(run_checks(None)).checks)
    machine = checks["machine-file"]
    assert machine.status is Status.FAIL
    assert r"Group Policy HKLM\SOFTWARE\Policies\Mosaic\MachineFolder must be an absolute local folder" \
        in machine.detail and "'//server/share/Mosaic'" in machine.detail and "valid" not in machine.detail
    assert "Correct or remove that value" in machine.action and "Administrative Templates > Mosaic" in machine.action
    assert checks["policy"].status is Status.FAIL


@needs_root
def test_a_machine_file_is_not_called_valid_when_another_file_stopped_the_load(machine_dir: Path, fhir_server,
                                                                               tmp_path: Path) -> None:
    write_machine_file(practice_toml("up", fhir_server.url))
    broken = config(tmp_path, '[[practice]]\nid = "x"\ncolor = "#ffffff"\n')
    check = files.machine_file(files.load_settings(broken))
    assert check.status is Status.OK and "valid" not in check.detail and f"{broken} has an error" in check.detail


#: an ordinary account (the tests run as root, so they can give a file to it)
OTHER = 4242


def _give(path: Path, uid: int = OTHER) -> None:
    os.chown(path, uid, uid, follow_symlinks=False)


@needs_root
def test_a_machine_file_or_folder_an_ordinary_account_owns_fails(machine_dir: Path, fhir_server) -> None:
    """Mode 0644 and no group or other write: still theirs to rewrite. The file and every folder up to / are root's."""
    path = write_machine_file(practice_toml("up", fhir_server.url))
    for owned, kind in ((path, "file"), (machine_dir, "folder"), (machine_dir.parent, "folder")):
        _give(owned)
        check = files.machine_file(files.load_settings(None))
        assert check.status is Status.FAIL, owned
        assert f"the {kind} {owned} is owned by uid {OTHER}" in check.detail and "not root" in check.detail
        assert f"chown root:root {owned} && chmod {'0644' if kind == 'file' else 'go-w'} {owned}" in check.action
        _give(owned, 0)
    assert files.machine_file(files.load_settings(None)).status is Status.OK


@needs_root
def test_a_link_from_the_machine_folder_into_an_accounts_folder_fails(
        machine_dir: Path, tmp_path: Path, fhir_server, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.machine import use_machine_dir

    home = tmp_path / "home" / "someone"
    home.mkdir(parents=True, mode=0o755)
    theirs = write_machine_file(practice_toml("up", fhir_server.url), home)  # root's file, mode 0644
    machine_dir.mkdir(mode=0o755)
    link = machine_dir / "practices.toml"
    link.symlink_to(theirs)
    assert files.machine_file(files.load_settings(None)).status is Status.OK  # all root's: a link is fine
    _give(home)
    check = files.machine_file(files.load_settings(None))
    assert check.status is Status.FAIL
    assert f"the folder {home} (reached through the link {link}) is owned by uid {OTHER}" in check.detail
    _give(home, 0)
    _give(theirs)
    check = files.machine_file(files.load_settings(None))
    assert f"the file {theirs} (reached through the link {link}) is owned by uid {OTHER}" in check.detail
    _give(theirs, 0)
    _give(link)  # the link itself
    check = files.machine_file(files.load_settings(None))
    assert f"the link {link} is owned by uid {OTHER}" in check.detail and f"chown -h root:root {link}" in check.action
    _give(link, 0)
    folder_link = tmp_path / "etc-mosaic"  # the machine folder itself a (relative) link into their folder
    folder_link.symlink_to(Path("home") / "someone")
    use_machine_dir(monkeypatch, folder_link)
    assert files.machine_file(files.load_settings(None)).status is Status.OK
    _give(home)
    check = files.machine_file(files.load_settings(None))
    assert f"the folder {home} (reached through the link {folder_link}) is owned by uid {OTHER}" in check.detail


POLICY = '[roles.hub]\npractices = ["*"]\nsections = ["*"]\n\n[users.jo]\nrole = "hub"\n'


def _policy_file(tmp_path: Path, text: str) -> Path:
    """An access policy (0644) in a folder of its own (0755) under this test's folder."""
    folder = tmp_path / "policy"
    folder.mkdir(mode=0o755)
    policy = folder / "policy.toml"
    policy.write_text(text)
    policy.chmod(0o644)
    return policy


@needs_root
def test_a_policy_an_ordinary_account_owns_fails(machine_dir: Path, tmp_path: Path) -> None:
    policy = _policy_file(tmp_path, POLICY)
    folder = policy.parent
    set_machine_policy(machine_dir / "policy.toml")
    (machine_dir / "policy.toml").symlink_to(policy)
    assert files.policy(None).status is Status.OK
    for owned, kind in ((policy, "file"), (folder, "folder")):
        _give(owned)
        check = files.policy(None)
        assert check.status is Status.FAIL and "Not safe" in check.detail
        assert f"the {kind} {owned} (reached through the link {machine_dir / 'policy.toml'}) is owned by uid " \
               f"{OTHER}" in check.detail
        assert f"chown root:root {owned}" in check.action
        _give(owned, 0)


@needs_root
def test_a_key_file_an_ordinary_account_owns_fails(machine_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    key = keys / "hillview.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    key.chmod(0o640)
    write_machine_file('[[practice]]\nid = "hillview"\nname = "Hillview"\nods_code = "Y91149"\nadapter = "fhir-r4"\n'
                       'base_url = "https://fhir.example.nhs.uk/R4"\nauth = "private-key-jwt"\n'
                       'token_url = "https://fhir.example.nhs.uk/token"\nclient_id = "mosaic"\nkey_id = "k1"\n'
                       f'key_alg = "ES384"\nkey_file = "{key}"\n')
    assert files.machine_file(files.load_settings(None)).status is Status.OK
    _give(key)
    check = files.machine_file(files.load_settings(None))
    assert check.status is Status.FAIL and "key file of practice 'hillview'" in check.detail
    assert f"the file {key} is owned by uid {OTHER}" in check.detail
    assert f"chown root:root {key} && chmod go-w {key}" in check.action  # never 0644 for a private key


@needs_root
def test_root_only_paths(tmp_path: Path) -> None:
    from app.core.root_owned import root_only_problem

    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    file = folder / "f.toml"
    file.write_text("")
    file.chmod(0o644)
    assert root_only_problem(file) is None
    assert root_only_problem(folder / ".." / "b" / "f.toml") is None
    (tmp_path / "a").chmod(0o775)
    assert str(root_only_problem(file)).endswith(f"{tmp_path / 'a'} is writable by group or others (mode 0775)")
    (tmp_path / "a").chmod(0o1777)  # sticky, root's (as /tmp): nobody else can replace what is in it
    assert root_only_problem(file) is None
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    assert "more than 40 links" in str(root_only_problem(loop))
    assert "cannot be checked" in str(root_only_problem(tmp_path / "missing"))
    up = tmp_path / "up"
    up.symlink_to(Path("a") / "b" / ".." / "b" / "f.toml")
    assert root_only_problem(up) is None
    _give(tmp_path / "a")
    assert str(root_only_problem(up)) == (f"the folder {tmp_path / 'a'} (reached through the link {up}) is owned "
                                          f"by uid {OTHER}, not root")


@needs_root
def test_a_malformed_machine_file_names_the_file_and_key(machine_dir: Path) -> None:
    path = write_machine_file('[[practice]]\nid = "x"\ncolor = "#ffffff"\n')
    report = asyncio.run(run_checks(None))
    checks = by_name(report.checks)
    assert checks["machine-file"].status is Status.FAIL
    assert f"{path}, practice 'x', key 'color': unknown key" in checks["machine-file"].detail
    assert checks["network"].status is Status.FAIL  # nothing beyond a configuration that cannot be read


@needs_root
def test_a_malformed_policy_fails_naming_file_and_line(machine_dir: Path, tmp_path: Path) -> None:
    policy = _policy_file(tmp_path, POLICY + "colour = 1\n")
    set_machine_policy(policy)
    check = files.policy(None)
    assert check.status is Status.FAIL and str(policy) in check.detail and "line 7" in check.detail
    assert check.action == f"Correct {policy} at line 7."
    policy.chmod(0o666)
    check = files.policy(None)
    assert check.status is Status.FAIL and "writable by group or others" in check.detail
    assert f"chmod 0644 {policy}" in check.action


@needs_root
def test_a_policy_that_loads(machine_dir: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[roles.hub]\npractices = ["*"]\nsections = ["*"]\n\n[users.jo]\nrole = "hub"\n')
    policy.chmod(0o644)
    set_machine_policy(policy)
    check = files.policy(None)
    assert check.status is Status.OK and "1 role(s), 1 user(s)" in check.detail


def test_the_journal_folder_must_be_private_and_writable() -> None:
    folder = default_path().parent
    assert files.journal_folder().status is Status.OK  # not made yet
    paths.private_dir(folder)
    assert files.journal_folder().detail.endswith("private to this account and writable.")
    folder.chmod(0o755)
    check = files.journal_folder()
    assert check.status is Status.FAIL and "mode 0755, not 0700" in check.detail
    assert f"chmod 0700 {folder}" in check.action
    assert list(folder.iterdir()) == []  # the probe file is gone


def test_the_journal_schema_current_older_newer() -> None:
    path = default_path()
    assert "No journal yet" in files.journal_schema().detail
    Journal.open(path).close()
    assert files.journal_schema().detail.endswith(f"schema {migrations.HEAD}, this Mosaic's.")
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '0003'")
    con.commit()
    check = files.journal_schema()
    assert check.status is Status.OK and f"schema 0003; this Mosaic upgrades it to {migrations.HEAD}" in check.detail
    con.execute("UPDATE alembic_version SET version_num = '0099'")
    con.commit()
    con.close()
    before = path.read_bytes()
    check = files.journal_schema()
    assert check.status is Status.FAIL and f"{path} was written by a newer Mosaic (schema 0099" in check.detail
    assert "Update Mosaic" in check.action
    assert path.read_bytes() == before  # read only


def test_a_file_that_is_not_a_journal() -> None:
    path = default_path()
    paths.private_dir(path.parent)
    path.write_bytes(b"not a database at all, but long enough to be read as one" * 20)
    check = files.journal_schema()
    assert check.status is Status.FAIL and "cannot be read as a journal" in check.detail


# --- the keyring ---------------------------------------------------------------------------------------------

def test_the_keyring_is_read_never_written(test_keyring, mosaic_home: Path) -> None:
    check = local_checks.keyring_backend()
    assert check.status is Status.OK and "FileKeyring answers" in check.detail
    assert not (mosaic_home.parent / "test-keyring.json").exists()  # nothing stored


def test_no_keyring_is_a_failure_with_what_to_do() -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        check = local_checks.keyring_backend()
    finally:
        keyring.set_keyring(previous)
    assert check.status is Status.FAIL and "No OS keyring" in check.detail
    assert "GNOME Keyring" in check.action and "MOSAIC_SECRET_JOURNAL_KEY" in check.action


def test_a_keyring_that_refuses_to_be_read() -> None:
    from keyring.backend import KeyringBackend
    from keyring.errors import KeyringLocked

    class Locked(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            raise KeyringLocked("Failed to unlock the collection!")

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("doctor never writes")

        def delete_password(self, service: str, username: str) -> None:
            raise AssertionError("doctor never deletes")

    previous = keyring.get_keyring()
    keyring.set_keyring(Locked())
    try:
        check = local_checks.keyring_backend()
    finally:
        keyring.set_keyring(previous)
    assert check.status is Status.FAIL and "KeyringLocked: Failed to unlock the collection!" in check.detail
    assert check.action.startswith("Unlock the keyring")


def test_a_keyring_that_never_answers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.doctor import run

    release = threading.Event()

    def hangs() -> CheckResult:
        release.wait()
        raise AssertionError("abandoned")

    monkeypatch.setattr(local_checks, "keyring_backend", hangs)
    monkeypatch.setattr(run, "LOCAL_TIMEOUT_S", 0.2)
    try:
        check = by_name(asyncio.run(run_checks(None)).checks)["keyring"]
    finally:
        release.set()
    assert check.status is Status.FAIL and check.detail == "The check did not finish within 0.2 s."


# --- TLS --------------------------------------------------------------------------------------------------------

def test_a_certificate_no_trusted_ca_signed_fails_the_practice(tmp_path: Path) -> None:
    with self_signed_server(FhirMetadata, tmp_path) as (origin, _cert):
        file = config(tmp_path, practice_toml("selfsigned", f"{origin}/fhir"))
        check = by_name(asyncio.run(run_checks(file)).checks)["practice:selfsigned"]
    assert check.status is Status.FAIL and "security certificate that could not be verified" in check.detail
    assert check.action.startswith("Mosaic always verifies TLS.")


def test_a_practice_is_given_its_own_deadline_and_timeout_caps_it(tmp_path: Path) -> None:
    file = config(tmp_path, practice_toml("slow", "http://127.0.0.1:9/fhir", timeout=20))
    [slow] = files.load_settings(file).practices
    assert network_checks.practice_bound(slow) == 41  # the adapter's whole-request deadline (2 x 20 s), plus 1 s
    assert network_checks.practice_bound(slow, 5) == 5  # mosaic doctor --timeout 5
