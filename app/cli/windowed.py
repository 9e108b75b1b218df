"""`mosaic-window` (and the bundle's `mosaicw`): the window with no console, for a Start-menu shortcut.

Windows starts a gui-script with pythonw, where `sys.stdout` and `sys.stderr` are None: the first message
printed (a configuration error, the demo's summary) would raise. They are pointed at the null device first;
what Mosaic has to say reaches the user in the window's own message boxes and in its log file.
"""

from __future__ import annotations

import os
import sys


def _ensure_streams() -> None:
    """Give print() somewhere to go when the process was started without a console."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (lives as long as the process)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


def main() -> int:
    """Open the window exactly as `mosaic` with no arguments does (configured practices, or the demo offered)."""
    _ensure_streams()
    from app.cli import main as mosaic

    return mosaic([])


if __name__ == "__main__":
    sys.exit(main())
