"""`mosaic --version`: the installed distribution's version, and the constant a bundle without metadata uses."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib

import pytest

import app
from tests.machine import REPO


def test_the_version_constant_is_pyprojects() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert declared["name"] == app.DISTRIBUTION
    assert app.__version__ == declared["version"]


def test_mosaic_version_prints_the_installed_version() -> None:
    result = subprocess.run([sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True,
                            timeout=60, env=os.environ.copy(), cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mosaic {importlib.metadata.version('mosaic-gp')}\n"
    assert result.stdout == f"mosaic {app.__version__}\n"


def test_without_package_metadata_the_constant_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a PyInstaller bundle that carries no dist-info for mosaic-gp."""
    def no_metadata(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_metadata)
    assert app.installed_version() == app.__version__
