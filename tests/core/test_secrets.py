"""Secrets come from the environment or the keyring; a broken keyring is reported, never bypassed."""

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import KeyringLocked

from app.core.secrets import SecretError, env_name, resolve_secret, store_secret


class MemoryKeyring(KeyringBackend):
    """A real keyring backend kept in memory, so tests never touch the developer's own keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the collection is locked")


@pytest.fixture
def locked_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    yield
    keyring.set_keyring(previous)


def test_env_name_upper_cases_and_replaces_punctuation() -> None:
    assert env_name("riverside") == "MOSAIC_SECRET_RIVERSIDE"
    assert env_name("st-john's_2") == "MOSAIC_SECRET_ST_JOHN_S_2"


def test_environment_wins_over_keyring(memory_keyring, monkeypatch) -> None:
    store_secret("riverside", "from-keyring")
    assert resolve_secret("riverside") == "from-keyring"
    monkeypatch.setenv("MOSAIC_SECRET_RIVERSIDE", "from-env")
    assert resolve_secret("riverside") == "from-env"


def test_missing_secret_is_none(memory_keyring) -> None:
    assert resolve_secret("nobody") is None


def test_locked_keyring_is_reported_with_practice_and_way_out(locked_keyring) -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret("riverside", "Riverside Surgery")
    message = str(info.value)
    assert "Riverside Surgery" in message and "MOSAIC_SECRET_RIVERSIDE" in message and "locked" in message
    with pytest.raises(SecretError, match="Nothing was written to disk"):
        store_secret("riverside", "s3cret")


def test_locked_keyring_does_not_matter_when_env_has_the_secret(locked_keyring, monkeypatch) -> None:
    monkeypatch.setenv("MOSAIC_SECRET_RIVERSIDE", "from-env")
    assert resolve_secret("riverside") == "from-env"


def test_every_secret_mosaic_reads_for_itself_is_reserved_from_practice_ids() -> None:
    """The names the modules read their own secrets by are the ones a practice id may not take."""
    from app.core.audit.central import CENTRAL_SECRET_ID
    from app.core.audit.keys import ENV_KEY
    from app.core.doctor.local_checks import PROBE_USER
    from app.core.notify.sender import SECRET_NAME
    from app.core.research import key_name
    from app.core.secrets import MOSAIC_SECRETS, reserved_secret_problem

    for name in (CENTRAL_SECRET_ID, SECRET_NAME, PROBE_USER, key_name("any-study")):
        assert reserved_secret_problem(name), name
    assert ENV_KEY in {env_name(n) for n in MOSAIC_SECRETS}
    for free in ("riverside", "hillview", "mosaic", "central2", "studyhall", "notify-me"):
        assert reserved_secret_problem(free) is None, free
