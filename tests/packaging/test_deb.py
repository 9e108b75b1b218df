"""The .deb: what it holds, lintian, and apt installing, running, reinstalling and removing it for real."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.conftest import BUILD_TIMEOUT_S, REPO, VERSION, clean_env, need_tools
from tests.packaging.running import demo_server, read_env_file, run_window_offscreen

QT_LIBS = [line.strip() for line in (REPO / "packaging" / "debian-qt-libs.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")]

#: the session's builds happen in the first test that needs them: PyInstaller, dpkg-buildpackage, lintian
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True, timeout=300).stdout


def test_the_deb_depends_on_the_qt_libraries_and_holds_the_install(deb: Path) -> None:
    assert deb.name == f"mosaic_{VERSION}_{_dpkg_deb('-f', str(deb), 'Architecture').strip()}.deb"
    depends = [d.strip().split(" ")[0] for d in _dpkg_deb("-f", str(deb), "Depends").split(",")]
    assert set(QT_LIBS) <= set(depends)
    listing = _dpkg_deb("-c", str(deb))
    paths = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    for wanted in ("/opt/mosaic/mosaic", "/opt/mosaic/_internal/base_library.zip",
                   "/usr/share/applications/mosaic.desktop", "/usr/share/icons/hicolor/scalable/apps/mosaic.svg",
                   "/usr/share/doc/mosaic/examples/practices.toml", "/usr/share/doc/mosaic/examples/policy.toml",
                   "/usr/share/doc/mosaic/copyright"):
        assert wanted in paths, wanted
    assert "./usr/bin/mosaic -> /opt/mosaic/mosaic" in listing
    assert not any(p.startswith("/etc") for p in paths), "nothing in /etc: machine files are IT's"


def test_the_deb_starts_nothing_and_has_no_conffiles(deb: Path, tmp_path: Path) -> None:
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True, timeout=120)
    assert not (control / "conffiles").exists()
    for script in ("preinst", "postinst", "prerm", "postrm"):
        text = (control / script).read_text() if (control / script).exists() else ""
        for starter in ("systemctl", "invoke-rc.d", "update-rc.d", "deb-systemd", "/opt/mosaic"):
            assert starter not in text, f"{script} runs {starter}"


def test_lintian_finds_no_errors(deb: Path) -> None:
    need_tools("lintian")
    done = subprocess.run(["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stdout.splitlines() if line.startswith("E:")]
    assert not errors, "\n".join(errors)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    """The .deb installed with apt on this machine (root only); purged again afterwards."""
    need_tools("apt-get", "dpkg-query")
    if os.geteuid() != 0:
        pytest.skip("installing a .deb with apt needs root (CI runs as root)")
    state = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "mosaic"], capture_output=True, text=True)
    if state.stdout.strip() == "installed":
        pytest.skip("a mosaic package is already installed on this machine; the test would replace and remove it")
    _apt("install", "-y", str(deb))
    try:
        yield Path("/usr/bin/mosaic")
    finally:
        subprocess.run(["dpkg", "--purge", "mosaic"], capture_output=True, timeout=300)
    assert not Path("/etc/mosaic").exists()


def _apt(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"apt-get {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_installed_mosaic_says_its_version(installed: Path, tmp_path: Path) -> None:
    assert installed.resolve() == Path("/opt/mosaic/mosaic")
    done = subprocess.run([str(installed), "--version"], env=clean_env(tmp_path), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"mosaic {VERSION}", done.stderr


def test_the_installed_doctor_finds_qt_libraries_and_the_journal_schema(installed: Path, tmp_path: Path) -> None:
    """apt brought Qt's libraries. On a machine without a desktop session there is no OS keyring: that is the
    one failure allowed here (CI has none; a practice PC has)."""
    done = subprocess.run([str(installed), "doctor", "--json"], env=clean_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["mosaic"] == VERSION
    assert checks["qt-libraries"]["status"] == "ok", checks["qt-libraries"]
    assert checks["journal-schema"]["status"] == "ok", checks["journal-schema"]
    assert {name for name, c in checks.items() if c["status"] == "fail"} <= {"keyring"}


def test_the_installed_window_runs_offscreen(installed: Path, tmp_path: Path) -> None:
    returncode, stderr = run_window_offscreen(installed, tmp_path)
    assert returncode == 0, stderr  # SIGTERM closes the window as its close button does
    assert "Traceback" not in stderr and "Fatal" not in stderr


def test_reinstall_and_removal_keep_the_users_settings_and_journal(installed: Path, deb: Path, bundle: Path,
                                                                    tmp_path: Path) -> None:
    """A user's practices.toml and audit journal (in their home) survive apt reinstalling and removing Mosaic,
    and the journal still verifies afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    settings = home / ".config" / "mosaic" / "practices.toml"
    journal = home / ".local" / "share" / "mosaic" / "journal.sqlite"
    with demo_server(bundle / "mosaic", tmp_path, clean_env(tmp_path)) as config:
        secrets = read_env_file(config.with_name(config.name + ".env"))
        settings.parent.mkdir(parents=True, mode=0o700)
        shutil.copy(config, settings)
        settings_hash = hashlib.sha256(settings.read_bytes()).hexdigest()

        def search() -> None:
            done = subprocess.run([str(installed), "search", "Smith"], env={**env, **secrets}, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, done.stderr

        search()
        assert journal.is_file()
        _apt("install", "--reinstall", "-y", str(deb))
        search()  # the reinstalled Mosaic goes on with the same journal
        _apt("remove", "-y", "mosaic")
    assert not Path("/opt/mosaic").exists() and not Path("/usr/bin/mosaic").exists()
    assert hashlib.sha256(settings.read_bytes()).hexdigest() == settings_hash
    verify = subprocess.run([str(bundle / "mosaic"), "audit", "verify"], env={**env, **secrets}, capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
