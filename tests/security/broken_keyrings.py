"""System keyrings that fail, for tests/security/test_cli_errors.py: `mosaic` subprocesses load one through keyring's
own PYTHON_KEYRING_BACKEND (tests.security.broken_keyrings.<Class>). tests/ is never installed: Mosaic itself reads
no setting that would pick one."""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import InitError, KeyringLocked


class Locked(KeyringBackend):
    """A Secret Service keyring the user has not unlocked (and declined to)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class NoDaemon(KeyringBackend):
    """A backend whose transport fails with an error of its own (as secretstorage's D-Bus errors are): not one of
    keyring's exception types, known only by where it was raised."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise ConnectionRefusedError("org.freedesktop.secrets was not provided by any .service files")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise ConnectionRefusedError("org.freedesktop.secrets was not provided by any .service files")

    def delete_password(self, service: str, username: str) -> None:
        raise ConnectionRefusedError("org.freedesktop.secrets was not provided by any .service files")


class WillNotStart(KeyringBackend):
    """A backend that cannot even be made."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        raise InitError("the keyring daemon did not start")

    def get_password(self, service: str, username: str) -> str | None:  # pragma: no cover - never made
        return None

    def set_password(self, service: str, username: str, password: str) -> None:  # pragma: no cover
        pass

    def delete_password(self, service: str, username: str) -> None:  # pragma: no cover
        pass
