"""The MSI's tables, read back with msiinfo: the files, the Start-menu shortcut, per-machine, the upgrade code."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import BUILD_TIMEOUT_S, REPO, VERSION

#: the session's builds happen in the first test that needs them: PyInstaller, dpkg-buildpackage, lintian
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S)


def _make_wxs():
    spec = importlib.util.spec_from_file_location("make_wxs", REPO / "packaging" / "msi" / "make_wxs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(msi: Path, name: str) -> list[dict[str, str]]:
    """A table as rows of column -> value (msiinfo export: names, types, key line, then rows)."""
    text = subprocess.run(["msiinfo", "export", str(msi), name], check=True, capture_output=True, text=True,
                          timeout=120).stdout
    lines = text.split("\r\n") if "\r\n" in text else text.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:] if line]


def test_the_msi_installs_per_machine_with_the_fixed_upgrade_code(msi: Path) -> None:
    properties = {row["Property"]: row["Value"] for row in _table(msi, "Property")}
    assert properties["ALLUSERS"] == "1"
    assert properties["UpgradeCode"] == "{" + _make_wxs().UPGRADE_CODE + "}"
    assert properties["ProductVersion"] == VERSION
    upgrades = _table(msi, "Upgrade")
    assert {row["UpgradeCode"] for row in upgrades} == {"{" + _make_wxs().UPGRADE_CODE + "}"}
    assert "RemoveExistingProducts" in {row["Action"] for row in _table(msi, "InstallExecuteSequence")}


def test_the_msi_holds_every_file_of_the_bundle_under_program_files(msi: Path, bundle: Path) -> None:
    files = _table(msi, "File")
    assert len(files) == sum(1 for p in bundle.rglob("*") if p.is_file())
    assert {"mosaic", "mosaicw"} <= {row["FileName"] for row in files}
    directories = {row["Directory"]: row for row in _table(msi, "Directory")}
    assert directories["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder"
    assert directories["INSTALLDIR"]["DefaultDir"] == "Mosaic"


def test_the_start_menu_shortcut_opens_the_windowed_launcher(msi: Path) -> None:
    (shortcut,) = _table(msi, "Shortcut")
    launcher = next(row for row in _table(msi, "File") if row["FileName"] == "mosaicw")
    assert shortcut["Directory_"] == "ProgramMenuFolder" and shortcut["Name"] == "Mosaic"
    assert shortcut["Target"] == f"[#{launcher['File']}]"  # the file itself, no console


def test_the_msi_makes_the_machine_folder_in_programdata(msi: Path) -> None:
    directories = {row["Directory"]: row for row in _table(msi, "Directory")}
    assert directories["MACHINEDIR"]["Directory_Parent"] == "CommonAppDataFolder"
    assert directories["MACHINEDIR"]["DefaultDir"] == "Mosaic"
    assert {"Directory_": "MACHINEDIR", "Component_": "MachineFolder"} in _table(msi, "CreateFolder")
    (lock,) = [row for row in _table(msi, "CustomAction") if row["Action"] == "LockMachineFolder"]
    assert "/inheritance:r" in lock["Target"] and "*S-1-5-32-545:(OI)(CI)RX" in lock["Target"]
