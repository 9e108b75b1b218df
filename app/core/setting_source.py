"""Where an effective setting came from, in the words `mosaic config show` uses."""

from __future__ import annotations

from pathlib import Path

MACHINE_FILE = "machine file"
GROUP_POLICY = "Group Policy"
USER_FILE = "user file"
CONFIG_FILE = "--config file"
DEFAULT = "default"
FIXED_FOR_OS = "fixed for this OS"
MOSAIC_HOME = "MOSAIC_HOME"
PLATFORM = "platform default"


def user_source(config_file: Path | None) -> str:
    """The per-user file's name as a source: --config replaces it."""
    return CONFIG_FILE if config_file is not None else USER_FILE
