"""Mosaic: one window onto every GP practice in a primary care network."""

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
