"""The journal's key and its records outside the journal file: the OS keyring and the checkpoint file.

What lives where, and why:

- **The key** (32 random bytes) is in the OS keyring (service `mosaic`, user `audit-journal-key:<journal
  id>`), made the first time a journal is recorded to. It is never written to the journal file, so
  whoever holds only the file (a copy, a backup, another account that can write the folder) cannot
  re-hash a rewritten chain.
- **The journal's record** (`audit-journal-at:<digest of the file's path>`) is in the keyring too: the
  journal's id, where its keyed entries start, and the checkpoint when it was keyed, signed with the key.
  It outlives the file: a journal that vanished, or was swapped for another, is told by this record.
- **The latest checkpoint** (entry count and head hash, signed) is written beside the journal after every
  commit (`journal.sqlite.checkpoint`), so cutting the newest entries off shows even when the sequence
  counter was lowered too. A commit writes the file after the journal, so a crash leaves it behind the
  journal (still true), never ahead.

For unattended runs (scripts, the demo) the key may come from the environment instead, as practice secrets
do: `MOSAIC_SECRET_JOURNAL_KEY` (64 hex digits). It keys a new journal, and must be that journal's key from
then on (another key is refused). Where the machine has no keyring at all, the keyring's record of the
journal is then not kept: the checkpoint file and the upstream checkpoints still tell a truncation.

A keyring that cannot be reached (and no key in the environment) is an error, never a reason to carry on
unkeyed: the journal then cannot
be opened for recording, and nothing is shown (the caller says so). The same user can read their own
keyring: the upstream checkpoints (app.core.audit.central) are what holds against the journal's own user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from app.core.audit import chain
from app.core.secrets import KEYRING_SERVICE

ENV_KEY = "MOSAIC_SECRET_JOURNAL_KEY"  # unattended runs: the journal's key from the environment
KEY_USER = "audit-journal-key:"
RECORD_USER = "audit-journal-at:"
CHECKPOINT_SUFFIX = ".checkpoint"


class KeyringUnavailable(Exception):
    """The OS keyring could not be read or written; the message says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """"Journal `journal_id` held `entry_count` entries, the newest hashing to `head_hash`", signed."""

    journal_id: str
    entry_count: int
    head_hash: str
    keyed_from: int
    mac: str

    @classmethod
    def make(cls, key: bytes, journal_id: str, entry_count: int, head_hash: str, keyed_from: int) -> Checkpoint:
        return cls(journal_id, entry_count, head_hash, keyed_from,
                   chain.checkpoint_mac(key, journal_id, entry_count, head_hash, keyed_from))

    def signed_by(self, key: bytes) -> bool:
        import hmac

        expected = chain.checkpoint_mac(key, self.journal_id, self.entry_count, self.head_hash, self.keyed_from)
        return hmac.compare_digest(expected, self.mac)

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """A checkpoint read back; ValueError when it is not one (damaged, or written by hand)."""
        try:
            value = cls(str(data["journal_id"]), int(data["entry_count"]), str(data["head_hash"]),
                        int(data["keyed_from"]), str(data["mac"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint ({exc})") from exc
        return value


@dataclass(frozen=True)
class JournalRecord:
    """What the keyring remembers of the journal at one path."""

    journal_id: str
    keyed_from: int
    checkpoint: Checkpoint


def _keyring() -> Any:
    import keyring

    return keyring


def _reach(doing: str, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Exception as exc:  # keyring backends raise many types: locked, no D-Bus, no backend at all
        raise KeyringUnavailable(
            f"the OS keyring, which holds the audit journal's key, could not be {doing} "
            f"({type(exc).__name__}: {exc}). Mosaic records nothing without that key, so nothing can be shown "
            "until the keyring is available: unlock it, or install one (GNOME Keyring or KWallet through Secret "
            f"Service, Windows Credential Manager, macOS Keychain), or ask IT; an unattended run may set {ENV_KEY}") \
            from exc


def env_key() -> bytes | None:
    """The journal's key from the environment (unattended runs), or None when none is set."""
    text = os.environ.get(ENV_KEY, "").strip()
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise KeyringUnavailable(f"{ENV_KEY} is not a journal key (it must be 64 hexadecimal digits)")
    return key


def key_source() -> str:
    """Where this process takes the journal's key from, in words."""
    return f"the environment ({ENV_KEY})" if os.environ.get(ENV_KEY, "").strip() else "the OS keyring"


def _records_kept() -> bool:
    """Whether the keyring's record of the journal can be kept: not when the machine has no keyring at all
    and the key came from the environment (an unattended run); then the record is simply not kept."""
    if env_key() is None:
        return True
    try:
        from keyring.backends import fail

        return not isinstance(_keyring().get_keyring(), fail.Keyring)
    except Exception:
        return True


def path_digest(path: Path) -> str:
    return hashlib.sha256(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:32]


def load_key(journal_id: str) -> bytes | None:
    """The journal's key: from the environment (unattended runs), else from the keyring; None when the
    keyring has none for it."""
    given = env_key()
    if given is not None:
        return given
    text = _reach("read", _keyring().get_password, KEYRING_SERVICE, KEY_USER + journal_id)
    if not text:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) >= 32 else None


def new_key(journal_id: str) -> bytes:
    """Make a key for a new journal id, store it, and read it back (a keyring that drops writes is caught).
    With a key in the environment, that key is the new journal's (nothing is stored)."""
    given = env_key()
    if given is not None:
        return given
    key = secrets.token_bytes(32)
    _reach("written", _keyring().set_password, KEYRING_SERVICE, KEY_USER + journal_id, key.hex())
    if load_key(journal_id) != key:
        raise KeyringUnavailable("the OS keyring did not keep the audit journal's new key (it read back "
                                 "differently). Mosaic records nothing without that key; ask IT")
    return key


def forget_key(journal_id: str) -> None:
    """Best effort: drop a key made for a journal id that lost the race to key the journal."""
    if env_key() is not None:
        return  # nothing was stored
    with contextlib.suppress(Exception):
        _keyring().delete_password(KEYRING_SERVICE, KEY_USER + journal_id)


def load_record(path: Path) -> JournalRecord | None:
    """What the keyring remembers of the journal at `path` (None: it remembers none there).

    A record that cannot be parsed raises ValueError: it was damaged or written by hand."""
    if not _records_kept():
        return None
    text = _reach("read", _keyring().get_password, KEYRING_SERVICE, RECORD_USER + path_digest(path))
    if not text:
        return None
    try:
        data = json.loads(text)
        return JournalRecord(str(data["journal_id"]), int(data["keyed_from"]), Checkpoint.from_json(data["checkpoint"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the keyring's record of this journal is damaged ({exc})") from exc


def save_record(path: Path, record: JournalRecord) -> None:
    if not _records_kept():
        return
    text = json.dumps({"journal_id": record.journal_id, "keyed_from": record.keyed_from,
                       "checkpoint": asdict(record.checkpoint)}, sort_keys=True)
    _reach("written", _keyring().set_password, KEYRING_SERVICE, RECORD_USER + path_digest(path), text)


# --- the checkpoint file beside the journal -------------------------------------------------------------

def checkpoint_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + CHECKPOINT_SUFFIX)


def read_checkpoint(journal_path: Path) -> Checkpoint | None:
    """The checkpoint beside the journal; None when there is no file. ValueError when it is not readable
    as a checkpoint (its signature is checked by the caller, who has the key)."""
    target = checkpoint_path(journal_path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"it cannot be read ({exc.strerror or exc})") from exc
    try:
        return Checkpoint.from_json(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"it is damaged ({exc})") from exc


def write_checkpoint(journal_path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint file atomically (a new user-only file, flushed, renamed over the old one), unless
    the file already holds a later checkpoint of the same journal (another process committed after us)."""
    target = checkpoint_path(journal_path)
    with contextlib.suppress(ValueError):
        current = read_checkpoint(journal_path)
        if current is not None and current.journal_id == checkpoint.journal_id \
                and current.entry_count >= checkpoint.entry_count:
            return
    temporary = target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = json.dumps(asdict(checkpoint), sort_keys=True).encode("utf-8")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
