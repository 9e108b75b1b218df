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


#: Mosaic's own secrets, by their name (the keyring user; env_name gives the variable). A practice's secret is
#: looked up by the practice's id in the same namespace, so none of these may be a practice id: a practice
#: named "central" would be handed the central audit store's password. Kept in step with the modules that
#: read them by tests/core/test_secrets.py.
MOSAIC_SECRETS = {
    "central": "the central audit store's password",  # app/core/audit/central.py CENTRAL_SECRET_ID
    "notify": "the GOV.UK Notify API key",  # app/core/notify/sender.py SECRET_NAME
    "insight": "the locality insight store's password",  # app/insight/location.py INSIGHT_SECRET_ID
    "journal-key": "the audit journal's key",  # app/core/audit/keys.py ENV_KEY (MOSAIC_SECRET_JOURNAL_KEY)
    "mosaic-doctor-probe": "mosaic doctor's keyring probe",  # app/core/doctor/local_checks.py PROBE_USER
}
#: a research study's pseudonym key: keyring user study-<id>, MOSAIC_SECRET_STUDY_<ID> (app/core/research.py)
STUDY_SECRET_PREFIX = "study-"
_RESERVED_VARIABLES = {env_name(name): what for name, what in MOSAIC_SECRETS.items()}
_STUDY_VARIABLE_PREFIX = env_name(STUDY_SECRET_PREFIX)


def reserved_secret_problem(practice_id: str) -> str | None:
    """Why `practice_id` may not name a practice: its secret (keyring user or environment variable) would be
    one of Mosaic's own. None when it is free."""
    variable = env_name(practice_id)
    what = MOSAIC_SECRETS.get(practice_id) or _RESERVED_VARIABLES.get(variable)
    if what is None and variable.startswith(_STUDY_VARIABLE_PREFIX):
        what = "a research study's pseudonym key"
    if what is None:
        return None
    return (f"is reserved: a practice's secret is read as {variable} or keyring user '{practice_id}', which is "
            f"{what}; choose another id")


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
