"""Where per-user and machine-wide files live. MOSAIC_HOME, when set, holds every per-user file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "mosaic"


def home() -> Path | None:
    value = os.environ.get("MOSAIC_HOME")
    return Path(value).expanduser() if value else None


def user_config_dir() -> Path:
    return home() or Path(platformdirs.user_config_dir(APP, appauthor=False))


def user_data_dir() -> Path:
    h = home()
    return h / "data" if h else Path(platformdirs.user_data_dir(APP, appauthor=False))


def user_log_dir() -> Path:
    h = home()
    return h / "logs" if h else Path(platformdirs.user_log_dir(APP, appauthor=False))


def user_config_file() -> Path:
    return user_config_dir() / "practices.toml"


def machine_config_file() -> Path:
    """The practice directory IT deploys. MOSAIC_MACHINE_CONFIG overrides it (tests, packaging)."""
    override = os.environ.get("MOSAIC_MACHINE_CONFIG")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "Mosaic" / "practices.toml"
    return Path("/etc/mosaic/practices.toml")
