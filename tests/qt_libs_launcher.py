"""Tests only: `python -m tests.qt_libs_launcher ARGS` runs `mosaic ARGS` (through tests.cli_launcher, with the
test's machine folder) on a computer where the shared objects named in MOSAIC_TEST_HIDDEN_LIBS (comma-separated)
are not installed: the dynamic loader is asked for a name that no library has instead, so the real search runs
and fails. The installed `mosaic` has no such switch; tests/ is not installed.
"""

from __future__ import annotations

import os
import sys

HIDDEN_LIBS_ENV = "MOSAIC_TEST_HIDDEN_LIBS"


def main() -> int:
    from app.core import qt_libs
    from tests.cli_launcher import main as mosaic

    hidden = {name for name in os.environ.get(HIDDEN_LIBS_ENV, "").split(",") if name}
    real = qt_libs.can_load
    qt_libs.can_load = lambda soname: real(f"{soname}.hidden-by-test" if soname in hidden else soname)
    return mosaic()


if __name__ == "__main__":
    sys.exit(main())
