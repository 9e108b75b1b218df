"""The hash chain: how an entry becomes a stored row, how a row is hashed, and how a chain is checked.

Each row's hash is HMAC-SHA256 (hex), under the journal's key, of the previous row's hash followed by
the canonical JSON of the row's stored columns (everything but `prev_hash` and `hash`, including `seq`).
The key is held in the OS keyring, never in the journal file (see app.core.audit.keys), so a rewritten
journal cannot be re-hashed by someone who only has the file. Journals written by Mosaic 0.1 used plain
sha256 of the same text; their entries before `keyed_from` (recorded in the journal and in the keyring
when the journal was first keyed) keep being checked that way, and the first keyed entry's HMAC covers
the last plain hash, so the old entries are anchored too. The JSON columns
(`user_ids`, `sections`, `details`) are hashed as the exact text stored, so a verifier in any
language only needs to serialise a flat object of strings and integers, never re-encode nested
values (floats, escapes) the way Python does. Columns holding NULL are left out of the object, so a
nullable column added by a later migration does not change the hashes of the rows written before it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from app.core.audit.model import Action, AuditUser, JournalEntry, Outcome

GENESIS = "0" * 64

#: Every stored column covered by the hash, in key order (the order canonical JSON writes them).
HASHED_FIELDS: tuple[str, ...] = tuple(sorted((
    "seq", "entry_id", "recorded_at", "user_login", "user_display_name", "user_role", "user_ids",
    "workstation", "practice_id", "practice_ods", "patient_local_id", "patient_nhs_number", "action",
    "sections", "purpose", "outcome", "outcome_detail", "app_version", "details",
)))
#: The columns of a journal row, as selected by the journal and the verifier (in this order).
ROW_FIELDS: tuple[str, ...] = (*HASHED_FIELDS, "prev_hash", "hash")
_SEQ, _ENTRY_ID, _PREV_HASH, _HASH = (ROW_FIELDS.index(n) for n in ("seq", "entry_id", "prev_hash", "hash"))


class InvalidEntry(ValueError):
    """The entry cannot be stored as given (a naive time, details that are not JSON): a bug upstream."""


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once: hashing is hot.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The same for a flat object whose keys are already in order (a row: HASHED_FIELDS), without re-sorting.
_FLAT_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(value)


def format_time(moment: datetime) -> str:
    """UTC, ISO 8601 with microseconds and '+00:00': fixed width, so text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEntry("audit times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def canonical(row: Mapping[str, Any]) -> str:
    """The canonical JSON of a row's hashed columns (NULLs left out)."""
    return _FLAT_ENCODER.encode({name: row[name] for name in HASHED_FIELDS if row[name] is not None})


def _digest(text: str, key: bytes | None) -> str:
    """HMAC-SHA256 under `key` (hex); plain sha256 for the unkeyed entries of a Mosaic 0.1 journal."""
    data = text.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.digest(key, data, "sha256").hex()


def entry_hash(prev_hash: str, row: Mapping[str, Any], key: bytes | None = None) -> str:
    return _digest(prev_hash + canonical(row), key)


def _values_hash(prev_hash: str, values: Sequence[Any], key: bytes | None = None) -> str:
    """entry_hash for a row given as values in ROW_FIELDS order (the verifier's hot path; zip stops before
    prev_hash and hash)."""
    flat = _FLAT_ENCODER.encode({name: v for name, v in zip(HASHED_FIELDS, values, strict=False) if v is not None})
    return _digest(prev_hash + flat, key)


def checkpoint_mac(key: bytes, journal_id: str, entry_count: int, head_hash: str, keyed_from: int) -> str:
    """The signature of a checkpoint: "journal `journal_id` held `entry_count` entries, the newest hashing to
    `head_hash`; entries from `keyed_from` on are keyed". Made and checked only by the key's holder."""
    text = f"mosaic-checkpoint\n{journal_id}\n{entry_count}\n{head_hash}\n{keyed_from}"
    return hmac.digest(key, text.encode("utf-8"), "sha256").hex()


def key_id(key: bytes) -> str:
    """A short public name of a key (not the key): tells "this is not the journal's key" from a rewrite."""
    return hmac.digest(key, b"mosaic-journal-key-id", "sha256").hex()[:16]


def row_fields(entry: JournalEntry) -> dict[str, Any]:
    """The stored columns of `entry`, all but its place in the chain (`seq`, `prev_hash`, `hash`).

    Raises InvalidEntry before any transaction starts, so a bad entry never costs a lock.
    """
    try:
        return {
            "entry_id": str(entry.entry_id),
            "recorded_at": format_time(entry.recorded_at),
            "user_login": entry.user.login,
            "user_display_name": entry.user.display_name,
            "user_role": entry.user.role,
            "user_ids": canonical_json(dict(entry.user.professional_ids)),
            "workstation": entry.workstation,
            "practice_id": entry.practice_id,
            "practice_ods": entry.practice_ods,
            "patient_local_id": entry.patient_local_id,
            "patient_nhs_number": entry.patient_nhs_number,
            "action": str(entry.action),
            "sections": canonical_json(list(entry.sections)),
            "purpose": entry.purpose,
            "outcome": str(entry.outcome),
            "outcome_detail": entry.outcome_detail,
            "app_version": entry.app_version,
            "details": canonical_json(entry.details),
        }
    except (TypeError, ValueError) as exc:  # details holding a set, a datetime, NaN...
        raise InvalidEntry(f"the audit entry cannot be stored: {exc}") from exc


def seal(fields: Mapping[str, Any], seq: int, prev_hash: str, key: bytes | None = None) -> dict[str, Any]:
    """The full row for `fields` at position `seq` after `prev_hash`: seq, prev_hash and hash added."""
    row = {**fields, "seq": seq, "prev_hash": prev_hash}
    row["hash"] = entry_hash(prev_hash, row, key)
    return row


def to_row(entry: JournalEntry, seq: int, prev_hash: str, key: bytes | None = None) -> dict[str, Any]:
    return seal(row_fields(entry), seq, prev_hash, key)


def _loads(text: str) -> Any:
    """json.loads, skipping the parser for the commonest values (no ids, no sections, no details)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


class StoredRow(Protocol):
    """A journal row read back by column name: a dict, or SQLAlchemy's RowMapping (keyed by str or Column)."""

    def __getitem__(self, key: str, /) -> Any: ...


def from_row(row: StoredRow) -> JournalEntry:
    return JournalEntry(
        action=Action(row["action"]),
        user=AuditUser(
            login=row["user_login"],
            display_name=row["user_display_name"],
            role=row["user_role"],
            professional_ids=_loads(row["user_ids"]),
        ),
        outcome=Outcome(row["outcome"]),
        practice_id=row["practice_id"],
        practice_ods=row["practice_ods"],
        patient_local_id=row["patient_local_id"],
        patient_nhs_number=row["patient_nhs_number"],
        sections=tuple(_loads(row["sections"])),
        purpose=row["purpose"],
        outcome_detail=row["outcome_detail"],
        details=_loads(row["details"]),
        workstation=row["workstation"],
        app_version=row["app_version"],
        entry_id=row["entry_id"],
        recorded_at=parse_time(row["recorded_at"]),
        seq=row["seq"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


@dataclass(frozen=True)
class Break:
    """Where a chain stops being trustworthy, and why."""

    seq: int | None
    entry_id: str | None
    reason: str


class ChainChecker:
    """Checks rows fed in seq order, one at a time, keeping only the previous row's seq and hash.

    Rows from `keyed_from` on are checked as HMACs under `key`; rows before it (a Mosaic 0.1 journal's)
    as plain sha256. `keyed_from=None` checks every row as plain sha256 (a journal never keyed)."""

    def __init__(self, key: bytes | None = None, keyed_from: int | None = None) -> None:
        if keyed_from is not None and key is None:
            raise ValueError("a keyed chain is checked with its key")
        self.checked = 0
        self.last_seq = 0
        self.last_hash = GENESIS
        self._key = key
        self._keyed_from = keyed_from

    def feed(self, values: Sequence[Any]) -> Break | None:
        """`values` are a row's columns in ROW_FIELDS order. Returns the first problem, if any."""
        seq, entry_id = values[_SEQ], values[_ENTRY_ID]
        if seq != self.last_seq + 1:
            return Break(seq, entry_id, self._gap(seq))
        if values[_PREV_HASH] != self.last_hash:
            before = f"entry {self.last_seq}" if self.last_seq else "the start of the journal"
            return Break(seq, entry_id, f"entry {seq} does not follow {before}: an entry before it was changed, "
                                        "removed, inserted or moved")
        key = self._key if self._keyed_from is not None and seq >= self._keyed_from else None
        try:
            intact = hmac.compare_digest(_values_hash(self.last_hash, values, key), values[_HASH])
        except (TypeError, ValueError):  # a value no Mosaic writes (a blob, NaN): put there by hand
            intact = False
        if not intact:
            return Break(seq, entry_id, f"entry {seq} was changed after it was recorded (its hash does not match)")
        self.checked += 1
        self.last_seq = seq
        self.last_hash = values[_HASH]
        return None

    def _gap(self, seq: int) -> str:
        if seq <= self.last_seq:
            return f"entry {seq} is out of sequence after entry {self.last_seq}"
        missing = f"entry {seq - 1} is" if seq == self.last_seq + 2 else f"entries {self.last_seq + 1} to {seq - 1} are"
        where = f"entry {seq} follows entry {self.last_seq}" if self.last_seq else f"the journal starts at entry {seq}"
        return f"{where}: {missing} missing (deleted)"

    def finish(self, highest_seq_ever: int | None) -> Break | None:
        """`highest_seq_ever` is SQLite's AUTOINCREMENT high-water mark: higher than the last row means
        the newest entries were deleted (which no hash chain alone can show)."""
        if highest_seq_ever is not None and highest_seq_ever > self.last_seq:
            return Break(self.last_seq + 1, None,
                         f"the newest entries were deleted: the journal reached entry {highest_seq_ever} "
                         f"but ends at entry {self.last_seq}")
        return None
