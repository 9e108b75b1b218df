"""The idle lock's policy: after `idle_lock_minutes` without user input the window locks, hides every piece
of patient data, and stays locked until the user signs in again. The UI enforces it (app/ui/lock.py);
this module decides when, and what unlocking needs, without Qt."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.config import IdentitySettings
from app.core.settings_schema import DEFAULT_IDLE_LOCK_MINUTES


@dataclass
class IdleLock:
    """Tracks input and lock state. `clock` is injectable (tests); times are monotonic seconds."""

    timeout_s: float = DEFAULT_IDLE_LOCK_MINUTES * 60
    clock: Callable[[], float] = time.monotonic
    locked: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("the idle timeout must be positive")
        self._last_input = self.clock()

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> IdleLock:
        return cls(timeout_s=settings.idle_lock_minutes * 60)

    @property
    def timeout_ms(self) -> int:
        return max(1, round(self.timeout_s * 1000))

    def touch(self) -> None:
        """The user did something: the idle time starts again (input while locked does not unlock)."""
        self._last_input = self.clock()

    def idle_s(self) -> float:
        return self.clock() - self._last_input

    def due(self) -> bool:
        return not self.locked and self.idle_s() >= self.timeout_s

    def lock(self) -> None:
        self.locked = True

    def unlocked_by_sign_in(self) -> None:
        """Only a fresh sign-in unlocks."""
        self.locked = False
        self.touch()
