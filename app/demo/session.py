"""The demo's own per-user folder and journal key, apart from the user's real ones.

The demo's patients are fictional: their looks are journaled like any other (that is what the demo shows),
but in a journal of the demo's own, in a fresh private folder, keyed with a key given through the
environment as an unattended run's would be. So the demo runs on a machine without an OS keyring, never
mixes fictional entries into the user's real audit trail, and never queues them for a real destination.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from app.core.audit.keys import ENV_KEY

HOME_VARIABLE = "MOSAIC_HOME"


def demo_files() -> dict[str, str]:
    """A fresh folder (0700, removed when this process ends) and a new journal key, as environment lines."""
    folder = Path(tempfile.mkdtemp(prefix="mosaic-demo-"))  # mkdtemp makes it user-only
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return {HOME_VARIABLE: str(folder), ENV_KEY: secrets.token_hex(32)}


def use_demo_files() -> Path:
    """Point this process's per-user files and journal key at a fresh demo folder (before the journal opens)."""
    values = demo_files()
    os.environ.update(values)
    return Path(values[HOME_VARIABLE])
