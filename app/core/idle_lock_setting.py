"""The idle-lock time in force, and where it comes from.

Group Policy (HKLM\\SOFTWARE\\Policies\\Mosaic\\IdleLockMinutes) beats the machine-wide file's [identity]
idle_lock_minutes, which beats the default (10 minutes). A user's own file (or the --config file that stands
in for it) may hold `[lock] idle_lock_minutes` to lock sooner: it applies only when shorter than what the
machine says, so no user can keep a window unlocked longer than IT decided. A longer one is not applied (and
`mosaic config show` says so) rather than refused, so tightening the machine's value never stops anyone's
Mosaic from starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core import group_policy, paths
from app.core.setting_source import DEFAULT, GROUP_POLICY, MACHINE_FILE, user_source
from app.core.settings_schema import DEFAULT_IDLE_LOCK_MINUTES, LockTable


@dataclass(frozen=True)
class IdleLockSetting:
    minutes: float
    source: str  # app/core/setting_source.py
    where: str | None = None  # the file or registry value it was read from
    note: str | None = None  # a user's longer value, not applied


def effective_idle_lock(machine: tuple[Path, float] | None, config_file: Path | None = None) -> IdleLockSetting:
    """The idle lock in force. `machine`: the machine-wide file and its [identity] idle_lock_minutes, when set
    there; `config_file`: --config, standing in for the user's own file."""
    from app.core.config import ConfigError, check_group_policy, read_toml, validated

    check_group_policy()
    policy_minutes = group_policy.read_group_policy().idle_lock_minutes
    if policy_minutes is not None:
        floor = IdleLockSetting(float(policy_minutes), GROUP_POLICY,
                                group_policy.registry_name(group_policy.IDLE_LOCK_VALUE))
    elif machine is not None:
        floor = IdleLockSetting(machine[1], MACHINE_FILE, str(machine[0]))
    else:
        floor = IdleLockSetting(DEFAULT_IDLE_LOCK_MINUTES, DEFAULT)
    user = config_file if config_file is not None else paths.user_config_file()
    if not user.exists():
        return floor
    table = read_toml(user).get("lock")
    if table is None:
        return floor
    if not isinstance(table, dict):
        raise ConfigError(user, "must be a [lock] table", key="lock")
    mine = validated(LockTable, table, user).idle_lock_minutes
    source = user_source(config_file)
    if mine < floor.minutes:
        return IdleLockSetting(mine, source, str(user))
    return IdleLockSetting(floor.minutes, floor.source, floor.where,
                           note=f"{source} {user} asks for {mine:g} minutes, longer than the machine's "
                                f"{floor.minutes:g}: not applied (a user may only lock sooner)")
