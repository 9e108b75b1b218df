"""Qt's Linux libraries: one mapping, the same packages as packaging/debian-qt-libs.txt, and a real loader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.core import qt_libs
from tests.machine import REPO

LIST_FILE = REPO / "packaging" / "debian-qt-libs.txt"


def listed_packages(path: Path = LIST_FILE) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_mapping_names_exactly_the_packages_the_list_file_installs() -> None:
    assert sorted(qt_libs.all_packages()) == sorted(listed_packages())
    assert len(set(qt_libs.all_packages())) == len(qt_libs.all_packages())
    assert not set(qt_libs.EVERY_PLATFORM) & set(qt_libs.XCB_PLATFORM)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux libraries")
def test_every_mapped_library_is_found_here_and_a_missing_one_is_not() -> None:
    """This machine has the list installed (CI installs it): the real loader finds each one."""
    assert {name for name in qt_libs.needed("xcb") if not qt_libs.can_load(name)} == set()
    assert not qt_libs.can_load("libxcb-cursor.so.0.hidden-by-test")
    assert qt_libs.check("xcb").ok


def test_a_missing_library_names_its_package_and_the_command() -> None:
    found = qt_libs.check("xcb", loader=lambda name: name not in ("libxcb-cursor.so.0", "libxcb-icccm.so.4"))
    assert not found.ok
    assert found.missing == {"libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4"}
    assert found.install_command() == "sudo apt install libxcb-cursor0 libxcb-icccm4"
    message = found.message()
    assert "libxcb-cursor.so.0" in message and "sudo apt install libxcb-cursor0 libxcb-icccm4" in message


@pytest.mark.parametrize("platform", ["offscreen", "minimal"])
def test_platforms_without_a_screen_need_no_xcb_library(platform: str) -> None:
    assert qt_libs.check(platform, loader=lambda name: not name.startswith("libxcb")).ok
    missing_egl = qt_libs.check(platform, loader=lambda name: name != "libEGL.so.1")
    assert missing_egl.install_command() == "sudo apt install libegl1"


@pytest.mark.parametrize(("value", "platform"), [
    (None, "xcb"), ("", "xcb"), ("offscreen", "offscreen"), ("wayland;xcb", "wayland"),
    ("vnc:size=800x600", "vnc"), ("xcb", "xcb"),
])
def test_the_platform_qt_will_use(value: str | None, platform: str) -> None:
    environ = {} if value is None else {"QT_QPA_PLATFORM": value}
    assert qt_libs.platform_in_use(environ) == platform
