"""The Linux system libraries Qt needs, and which Debian packages hold them: checked before Qt starts.

Without them Qt aborts with its own message ("xcb-cursor0 or libxcb-cursor0 is needed … no Qt platform plugin
could be initialized"), or PySide6 fails to import. Mosaic looks for each library first, the way the dynamic
loader will (dlopen), and names the packages to install instead. The mapping below is the one source of truth;
packaging/debian-qt-libs.txt (what CI and the .deb install) must list the same packages
(tests/core/test_qt_libs.py). No Qt is imported here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: libraries Qt's GUI module needs on any platform (libQt6Gui and libQt6DBus link them): shared object -> package
EVERY_PLATFORM: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libxkbcommon.so.0": "libxkbcommon0",
}
#: what the xcb platform (a window on an X11 screen, XWayland included) needs besides: shared object -> package
XCB_PLATFORM: dict[str, str] = {
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
}
#: packages installed with them that hold no shared object to look for (a font, so text is drawn at all)
OTHER_PACKAGES: tuple[str, ...] = ("fonts-dejavu-core",)
#: Qt platforms that draw on no screen of their own: only EVERY_PLATFORM is needed
HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"})


def all_packages() -> list[str]:
    """Every package, in the order packaging/debian-qt-libs.txt lists them."""
    return [*EVERY_PLATFORM.values(), *XCB_PLATFORM.values(), *OTHER_PACKAGES]


@dataclass(frozen=True)
class QtLibraries:
    """What a look for Qt's libraries found: the platform it looked for, and what is missing (shared object ->
    package)."""

    platform: str
    missing: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.missing

    def packages(self) -> list[str]:
        return sorted(set(self.missing.values()), key=all_packages().index)

    def install_command(self) -> str:
        return "sudo apt install " + " ".join(self.packages())

    def message(self) -> str:
        """What Mosaic says instead of Qt's abort: which libraries, and the command that installs them."""
        libs = ", ".join(self.missing)
        return (f"Qt cannot start on this computer: system libraries it needs are missing ({libs}).\n"
                f"Install them (Debian and Ubuntu package names), then start Mosaic again:\n\n"
                f"    {self.install_command()}\n\n"
                "Or ask IT: the mosaic .deb installs them itself. See README, Linux libraries Qt needs.")


def platform_in_use(environ: Mapping[str, str] | None = None) -> str:
    """The Qt platform the window would use: QT_QPA_PLATFORM's first choice, else xcb (Qt's default on a Linux
    desktop; a Wayland session falls back to it). Mosaic passes Qt no -platform argument."""
    value = (environ if environ is not None else os.environ).get("QT_QPA_PLATFORM", "")
    return value.split(";", 1)[0].split(":", 1)[0].strip() or "xcb"


def needed(platform: str) -> dict[str, str]:
    """The libraries `platform` needs (shared object -> package)."""
    if platform in HEADLESS_PLATFORMS:
        return dict(EVERY_PLATFORM)
    return {**EVERY_PLATFORM, **XCB_PLATFORM}


Loader = Callable[[str], bool]


def can_load(soname: str) -> bool:
    """Whether the dynamic loader finds `soname`, as it will for Qt: the system's search (ld.so.cache,
    LD_LIBRARY_PATH), then the folders a bundle or the PySide6 wheel keeps libraries in."""
    mode = getattr(os, "RTLD_LAZY", 1) | getattr(os, "RTLD_LOCAL", 0)
    for candidate in (soname, *(str(folder / soname) for folder in _bundled_folders())):
        try:
            ctypes.CDLL(candidate, mode=mode)
        except OSError:
            continue
        return True
    return False


def _bundled_folders() -> list[Path]:
    """Where a PyInstaller bundle (sys._MEIPASS) or PySide6 keeps its own copies of libraries."""
    folders = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        folders.append(Path(bundle))
    try:
        import importlib.util

        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        folders.extend(Path(location) / "Qt" / "lib" for location in spec.submodule_search_locations)
    return [folder for folder in folders if folder.is_dir()]


def check(platform: str | None = None, loader: Loader | None = None) -> QtLibraries:
    """Look for every library `platform` (default: the one in use) needs; nothing is needed off Linux.
    `loader` answers whether one shared object can be loaded (default `can_load`; tests pass their own)."""
    platform = platform or platform_in_use()
    if not sys.platform.startswith("linux"):
        return QtLibraries(platform, {})
    load = loader or can_load
    return QtLibraries(platform, {name: package for name, package in needed(platform).items() if not load(name)})
