"""The packaging layer: real builds (PyInstaller bundle, .deb, MSI), made once per session and shared.

Each build runs `packaging/build` exactly as a person would, into this session's temporary folders (never the
checkout's dist/). A tool that is truly absent skips the tests that need it, saying which; CI installs them
all (packaging/build-tools.txt, read by .ci/run), so nothing skips there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
#: a build's own limit (the tests' default of 180 s is for a test, not for PyInstaller on 2 cores)
BUILD_TIMEOUT_S = 900


@dataclass(frozen=True)
class Builds:
    dist: Path
    build: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHON": sys.executable, "MOSAIC_DIST": str(self.dist),
                "MOSAIC_BUILD": str(self.build), **extra}

    def run(self, what: str) -> None:
        done = subprocess.run([str(REPO / "packaging" / "build"), what], env=self.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert done.returncode == 0, f"packaging/build {what} failed:\n{done.stdout}\n{done.stderr}"


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (packaging/build-tools.txt lists what CI installs)")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """What a practice PC's user has: no virtual environment on PATH, no PYTHONPATH, a home of their own."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home), "LANG": "C.UTF-8",
            "TMPDIR": str(home), **extra}


@pytest.fixture(scope="session")
def builds() -> Iterator[Builds]:
    # A folder of the session's own, not pytest's numbered ones: pytest removes all but its last three, so another
    # pytest run started meanwhile on this machine deleted a .deb between building and installing it.
    root = Path(tempfile.mkdtemp(prefix="mosaic-packaging-"))
    yield Builds(dist=root / "dist", build=root / "build")
    shutil.rmtree(root, ignore_errors=True)  # ~0.7 GB a session


@pytest.fixture(scope="session")
def bundle(builds: Builds) -> Path:
    """dist/mosaic/ from `packaging/build bundle` (PyInstaller, ~1.5 min on 2 cores)."""
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[test]' brings it)")
    builds.run("bundle")
    return builds.dist / "mosaic"


@pytest.fixture(scope="session")
def deb(builds: Builds, bundle: Path) -> Path:
    """dist/mosaic_<version>_<arch>.deb from `packaging/build deb`, packing the session's bundle."""
    need_tools("dpkg-buildpackage", "dh", "dpkg-architecture")
    builds.run("deb")
    found = sorted(builds.dist.glob(f"mosaic_{VERSION}_*.deb"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="session")
def msi(builds: Builds, bundle: Path) -> Path:
    """dist/mosaic-<version>.msi from `packaging/build msi` (wixl), from the session's bundle."""
    need_tools("wixl", "msiinfo")
    builds.run("msi")
    path = builds.dist / f"mosaic-{VERSION}.msi"
    assert path.is_file()
    return path
