"""The idle-lock time: Group Policy beats the machine file beats the default; a user's own file may only make it
shorter. Group Policy is replaced in-process (the installed program reads only the registry, and only on Windows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core import group_policy, paths
from app.core.config import ConfigError, load_directory, load_identity_settings
from app.core.group_policy import GroupPolicy, checked
from app.core.idle_lock_setting import effective_idle_lock
from app.core.policy import PolicyFileError, policy_file
from app.core.session_lock import IdleLock
from tests.machine import write_machine_file

IDENTITY = '[identity]\nissuer = "https://idp.example"\nclient_id = "mosaic"\n'


def set_group_policy(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    monkeypatch.setattr(group_policy, "read_group_policy", lambda: GroupPolicy(**values))  # type: ignore[arg-type]


def user_file(text: str) -> Path:
    path = paths.user_config_file()
    path.write_text(text, encoding="utf-8")
    return path


def minutes() -> float:
    return load_identity_settings().idle_lock_minutes


def test_default_then_machine_file_then_group_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert minutes() == 10 and effective_idle_lock(None).source == "default"
    write_machine_file(IDENTITY + "idle_lock_minutes = 15\n")
    assert minutes() == 15
    set_group_policy(monkeypatch, idle_lock_minutes=3)
    assert minutes() == 3
    assert IdleLock.from_settings(load_identity_settings()).timeout_s == 180  # what the window's lock is given
    setting = effective_idle_lock((paths.machine_config_file(), 15.0))
    assert (setting.source, setting.where) == ("Group Policy", r"HKLM\SOFTWARE\Policies\Mosaic\IdleLockMinutes")


def test_group_policy_applies_without_any_machine_file(monkeypatch: pytest.MonkeyPatch) -> None:
    set_group_policy(monkeypatch, idle_lock_minutes=4)
    assert minutes() == 4


def test_a_user_may_lock_sooner_never_later(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_machine_file(IDENTITY + "idle_lock_minutes = 15\n")
    user_file("[lock]\nidle_lock_minutes = 5\n")
    assert minutes() == 5
    user_file("[lock]\nidle_lock_minutes = 60\n")
    assert minutes() == 15
    assert "not applied" in (effective_idle_lock((paths.machine_config_file(), 15.0)).note or "")
    set_group_policy(monkeypatch, idle_lock_minutes=2)
    assert minutes() == 2  # shorter than the user's 60: Group Policy stands
    user_file("[lock]\nidle_lock_minutes = 1.5\n")
    assert minutes() == 1.5
    mine = tmp_path / "mine.toml"  # --config stands in for the user's file, under the same rule
    mine.write_text("[lock]\nidle_lock_minutes = 1\n", encoding="utf-8")
    assert load_identity_settings(mine).idle_lock_minutes == 1
    assert effective_idle_lock(None, mine).source == "--config file"


def test_lock_errors_name_the_file_and_key() -> None:
    path = user_file("[lock]\nidle_lock_minutes = 0\n")
    with pytest.raises(ConfigError, match="key 'idle_lock_minutes': must be a positive number of minutes") as info:
        load_identity_settings()
    assert info.value.file == str(path)
    user_file("[lock]\nidle = 5\n")
    with pytest.raises(ConfigError, match="key 'idle'"):
        load_identity_settings()
    user_file("")
    write_machine_file("[lock]\nidle_lock_minutes = 30\n")  # the machine's own time is [identity]'s
    with pytest.raises(ConfigError, match="key 'lock': belongs in a user's own file"):
        load_directory()


def test_an_unusable_group_policy_value_stops_mosaic(monkeypatch: pytest.MonkeyPatch) -> None:
    set_group_policy(monkeypatch, problems=(r"HKLM\SOFTWARE\Policies\Mosaic\MachineFolder must be an absolute ...",))
    with pytest.raises(ConfigError, match="Group Policy"):
        load_directory()
    with pytest.raises(ConfigError, match="MachineFolder"):
        load_identity_settings()
    with pytest.raises(PolicyFileError, match="Group Policy"):  # `mosaic demo` and the window check it first
        policy_file()


def test_registry_values_are_checked() -> None:
    assert checked({}) == GroupPolicy()
    good = checked({"MachineFolder": r"D:\Mosaic", "IdleLockMinutes": 5})
    assert (good.machine_folder, good.idle_lock_minutes, good.problems) == (r"D:\Mosaic", 5, ())
    for folder in ("Mosaic", r"\\server\share\Mosaic", r"%USERPROFILE%\Mosaic", "", 5):
        assert checked({"MachineFolder": folder}).machine_folder is None
        assert checked({"MachineFolder": folder}).problems
    for bad in (0, 1441, "5", True):
        assert checked({"IdleLockMinutes": bad}).idle_lock_minutes is None
        assert checked({"IdleLockMinutes": bad}).problems


def test_only_a_drive_letter_folder_is_local() -> None:
    """Shares and device paths in either slash are refused (Windows takes / as \\), whatever their drive parses as."""
    for folder in (r"D:\Mosaic", "D:/Mosaic", "c:\\ProgramData\\Mosaic"):
        assert checked({"MachineFolder": folder}).machine_folder == folder
    for folder in ("//server/share/Mosaic", r"\\server\share\Mosaic", "/\\server\\share", "\\/server/share",
                   "//?/C:/x", r"\\?\C:\x", r"\\.\C:\x", "//./C:/x", r"\\?\UNC\server\share\x",
                   "//?/UNC/server/share", r"\\.\PhysicalDrive0", "C:Mosaic", r"\Mosaic", "/Mosaic",
                   " D:\\Mosaic", "D:\\Mo\0saic", "D:\\%TEMP%"):
        result = checked({"MachineFolder": folder})
        assert result.machine_folder is None, folder
        assert result.problems and "absolute local folder" in result.problems[0]


def test_on_linux_nothing_moves_the_machine_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only Windows asks Group Policy for the folder; here it stays /etc/mosaic whatever a policy says."""
    set_group_policy(monkeypatch, machine_folder="/home/someone/mosaic")
    assert paths._platform_machine_dir() == Path("/etc/mosaic")
    assert group_policy.read_group_policy.__module__ == __name__  # (the replaced reader was in force)
    monkeypatch.undo()
    assert group_policy.read_group_policy() == GroupPolicy()  # no registry here
