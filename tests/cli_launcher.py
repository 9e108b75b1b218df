"""Tests only: `python -m tests.cli_launcher ARGS` runs `mosaic ARGS` with the machine folder a test chose.

The folder comes from MOSAIC_TEST_MACHINE_DIR (tests/machine.py), patched into app.core.paths in this
process before the CLI starts. This module lives in tests/, which is not installed: the installed `mosaic`
has no such switch, and reads its machine-wide files only from the OS's fixed folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    from app.core import paths
    from tests.machine import TEST_MACHINE_DIR_ENV

    folder = os.environ.get(TEST_MACHINE_DIR_ENV)
    if not folder:
        print(f"tests.cli_launcher: {TEST_MACHINE_DIR_ENV} must name the test's machine folder", file=sys.stderr)
        return 2
    paths.MACHINE_DIR = Path(folder)
    from app.cli import main as mosaic

    return mosaic(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
