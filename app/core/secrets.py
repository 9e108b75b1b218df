"""Practice secrets: from the environment (unattended runs) or the OS keyring, never from a file.

A missing or locked keyring is reported to the user; there is no plaintext fallback.
"""

from __future__ import annotations

import os
import re

KEYRING_SERVICE = "mosaic"


class SecretError(Exception):
    """The secret store could not be used; the message says which practice and what to do."""


def env_name(practice_id: str) -> str:
    return "MOSAIC_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", practice_id).upper()


def resolve_secret(practice_id: str, practice_name: str | None = None) -> str | None:
    """The practice's secret, or None when none is stored anywhere."""
    value = os.environ.get(env_name(practice_id))
    if value:
        return value
    label = practice_name or practice_id
    try:
        import keyring
        import keyring.errors

        return keyring.get_password(KEYRING_SERVICE, practice_id)
    except Exception as exc:  # keyring backends raise many types: locked, no D-Bus, no backend
        raise SecretError(
            f"{label}: the OS keyring could not be read ({type(exc).__name__}: {exc}). Unlock the "
            f"keyring, or set {env_name(practice_id)} in the environment for this session."
        ) from exc


def store_secret(practice_id: str, secret: str) -> None:
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, practice_id, secret)
    except Exception as exc:
        raise SecretError(
            f"The OS keyring refused to store the secret for '{practice_id}' ({type(exc).__name__}: {exc}). "
            "Nothing was written to disk. Unlock or install a keyring (Windows Credential Manager, "
            "GNOME Keyring / KWallet via Secret Service), or use the environment variable "
            f"{env_name(practice_id)}."
        ) from exc
