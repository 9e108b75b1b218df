"""Mosaic: one window onto every GP practice in a primary care network."""

import os as _os

# numpy's OpenBLAS starts a thread per core for each linear-algebra call (the insight store's exact suppression
# check): on a 2-core practice PC they spin against the window's and the core's threads (a 4 s check took 54 s
# under load). One thread, set before anything imports numpy, unless the machine's environment says otherwise.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: Mosaic's version where no installed metadata says it (a PyInstaller bundle): kept equal to pyproject.toml's by
#: tests/cli/test_version.py
__version__ = "0.1.0"

DISTRIBUTION = "mosaic-gp"


def installed_version() -> str:
    """The installed distribution's version (what pip or the .deb installed), else `__version__` (a bundle may
    carry no package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return __version__
