"""The bundle's one entry script, behind both launchers PyInstaller makes from packaging/mosaic.spec.

`mosaic` is the command (window, CLI, demo); `mosaicw` is the same program built without a console (Windows'
Start-menu shortcut points at it) and always opens the window, as `mosaic` with no arguments does.
"""

import sys
from pathlib import Path

if Path(sys.executable).stem.lower() == "mosaicw":
    from app.cli.windowed import main

    sys.exit(main())

from app.cli import main  # noqa: E402  (which main depends on the launcher's name)

sys.exit(main())
