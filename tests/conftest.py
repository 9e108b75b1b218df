"""Shared fixtures: isolated per-user folders, and the demo practices as real loopback servers."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# `mosaic` processes the tests start use the test keyring (tests/keyring_backend.py), module-scoped ones too
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.keyring_backend.FileKeyring"

SEED_ENV = "MOSAIC_TEST_SEED"  # tests only: the seed of every randomised test in this run
_SEED = pytest.StashKey[int]()

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYNTHEA_DIR = SHARED_DATA / "synthea-r4"
GPCONNECT_DIR = SHARED_DATA / "gpconnect-stu3"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seed", type=int, default=None,
                     help=f"seed for the randomised tests (or {SEED_ENV}=N); each prints the seed it used")


@pytest.fixture
def rng_seed(request: pytest.FixtureRequest) -> int:
    """The seed of a randomised test: `--seed N` or MOSAIC_TEST_SEED=N re-runs one, else a fresh one each run.
    It is printed, and a failure's report names it."""
    seed = request.config.getoption("--seed")
    if seed is None:
        seed = int(os.environ[SEED_ENV]) if os.environ.get(SEED_ENV) else random.randrange(2**32)
    request.node.stash[_SEED] = seed
    print(f"seed={seed}")
    return seed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared_data: reads the public sample data in ../shared/data")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests that read ../shared/data skip, saying why, on a checkout without it beside."""
    if item.get_closest_marker("shared_data") is not None and not (SYNTHEA_DIR.is_dir() and GPCONNECT_DIR.is_dir()):
        pytest.skip(f"needs the public sample data in {SHARED_DATA} (Synthea R4, GP Connect STU3): not found")


@pytest.fixture(autouse=True)
def mosaic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MOSAIC_HOME and its own, empty, machine folder (`machine_dir`: in-process, and
    for `mosaic` subprocesses started through tests.cli_launcher), so nothing leaks between tests."""
    from tests.machine import use_machine_dir

    home = tmp_path / "mosaic-home"
    home.mkdir()
    monkeypatch.setenv("MOSAIC_HOME", str(home))
    use_machine_dir(monkeypatch, tmp_path / "machine")
    for key in list(os.environ):
        if key.startswith("MOSAIC_SECRET_"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture(autouse=True)
def test_keyring(mosaic_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Every test gets its own keyring (the audit journal's key lives there), shared with the `mosaic`
    processes it starts (keyring's PYTHON_KEYRING_BACKEND); tests that need another install their own."""
    import keyring

    from tests.keyring_backend import BACKEND, FileKeyring

    previous = keyring.get_keyring()
    backend = FileKeyring()
    keyring.set_keyring(backend)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def machine_dir(mosaic_home: Path) -> Path:
    """This test's machine folder (where /etc/mosaic would be): absent until the test writes a file there."""
    from app.core import paths

    return paths.MACHINE_DIR


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failed window test: say why at once (a later crash would lose the summary), and drop the
    failure's frames' locals, which hold the Python wrappers of the test's now-deleted widgets and
    would otherwise reach the next full garbage collection."""
    report = yield
    if report.failed and _SEED in item.stash:
        seed = item.stash[_SEED]
        report.sections.append(("seed", f"seed={seed}: re-run with --seed {seed} (or {SEED_ENV}={seed})"))
    if report.failed and item.nodeid.startswith("tests/ui/"):
        import sys
        import traceback

        sys.stderr.write(f"\n{item.nodeid} failed:\n{report.longreprtext}\n")
        if call.excinfo is not None:
            traceback.clear_frames(call.excinfo.tb)
    return report


@pytest.fixture(scope="session")
def demo_network() -> Iterator[object]:
    """Five demo practices (small populations) shared by the tests that only read from them.

    Tests that change fault settings must restore them (`faults.override(...)`) or start their own.
    """
    from app.demo.network import DemoNetwork

    network = DemoNetwork.start(practices=5, patients=200)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def network(demo_network, monkeypatch: pytest.MonkeyPatch):
    """The shared demo practices with their secrets in this test's environment; faults reset after."""
    from app.core.secrets import env_name

    for practice_id, secret in demo_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    yield demo_network
    demo_network.reset_faults()


@pytest.fixture
def demo_requests(monkeypatch: pytest.MonkeyPatch):
    """`demo_requests(*servers)` starts logging what those demo practices are asked (a RequestLog); the
    servers are put back after the test."""
    from tests.demo_requests import RequestLog

    def watch(*servers: object) -> RequestLog:
        log = RequestLog()
        for server in servers:
            log.watch(server, monkeypatch)
        return log

    return watch


@pytest.fixture
def secrets_env(network):
    """For core tests: the same as `network`."""
    return network


@pytest.fixture
def window(qtbot, network):
    """The real main window, shown and signed in to every demo practice."""
    win, bridge = shown_window(qtbot, network.practices)
    yield win
    win.close()
    bridge.shutdown(win.core)


def shown_window(qtbot, practices):
    """The real window and its bridge, shown and signed in to `practices` (close and shut down after)."""
    from app.ui.app import build_window

    win, bridge = build_window(practices)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.sign_in_finished, timeout=10_000):
        win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    return win, bridge


@pytest.fixture
def memory_keyring() -> Iterator[object]:
    """An in-memory keyring backend for this test (the developer's own keyring is never touched)."""
    import keyring

    from tests.core.test_secrets import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(scope="module")
def gpc_network() -> Iterator[object]:
    """One FHIR R4 and one GP Connect demo practice, for a test module."""
    from app.demo.network import DemoNetwork

    network = DemoNetwork.start(practices=2, patients=80, gp_connect=(1,))
    try:
        yield network
    finally:
        network.stop()
