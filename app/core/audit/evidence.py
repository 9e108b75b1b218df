"""`mosaic audit verify`: is this PC's journal whole, and does it match what was recorded elsewhere?

One function for every face (the CLI today): the chain with its key, the checkpoints kept outside the file
(the OS keyring, the checkpoint file), and, when asked, the signed checkpoints in the central store. A
journal that is missing or empty where this account's keyring records one is a failure, never "nothing to
verify".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.audit import keys
from app.core.audit.journal import Journal

if TYPE_CHECKING:
    from app.core.audit.central import CentralStore


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: tuple[str, ...]


_TELL = "Keep the file ({path}) as evidence and tell your Information Governance lead."


def verify_journal(path: Path, central: CentralStore | None = None) -> Verdict:
    """Check the journal at `path` (read-only), and against `central`'s checkpoints when given."""
    try:
        size = path.stat().st_size if path.is_file() else -1
    except OSError:
        size = 1  # let opening it say what is wrong
    if size <= 0:
        return _no_journal(path, size, central)
    with Journal.open(path, read_only=True) as journal:
        result = journal.verify()
        if not result.ok:
            if result.first_bad_seq is None:
                return Verdict(False, (f"AUDIT JOURNAL CANNOT BE TRUSTED: {result.reason}. "
                                       + _TELL.format(path=path),))
            which = f" (id {result.first_bad_entry_id})" if result.first_bad_entry_id else ""
            return Verdict(False, (f"AUDIT JOURNAL BROKEN at entry {result.first_bad_seq}{which}: {result.reason}. "
                                   f"{result.checked} entries before it verified. " + _TELL.format(path=path),))
        lines = [f"Audit journal intact: {result.checked} entries verified ({path}).", *result.notes]
        if central is None:
            return Verdict(True, tuple(lines))
        if result.journal_id is None:
            lines.append("It is not keyed yet, so the central store holds no checkpoints of it to compare.")
            return Verdict(True, tuple(lines))
        journal.load_key_for_checks()
        checkpoints = central.checkpoints(result.journal_id)
        for checkpoint in checkpoints:
            trouble = journal.check_checkpoint(checkpoint, result.last_seq,
                                               f"the central store's checkpoint at entry {checkpoint.entry_count}")
            if trouble is not None:
                return Verdict(False, (f"AUDIT JOURNAL DOES NOT MATCH THE CENTRAL STORE ({central.where}): {trouble}. "
                                       + _TELL.format(path=path),))
        if not checkpoints:
            delivered = journal.delivered_upstream_since_keyed()
            if delivered:
                return Verdict(False, (f"THE CENTRAL STORE HOLDS NO CHECKPOINT of this journal ({result.journal_id}), "
                                       f"though {delivered} of its keyed entries were delivered there: the store's "
                                       f"copy is missing, or this is the wrong store ({central.where}). Tell your "
                                       "Information Governance lead.",))
            lines.append(f"The central store ({central.where}) holds no checkpoint of this journal yet: none of its "
                         "keyed entries has gone up.")
        else:
            lines.append(f"It matches the central store ({central.where}): {len(checkpoints)} signed checkpoints, "
                         f"up to entry {checkpoints[-1].entry_count}.")
        return Verdict(True, tuple(lines))


def _no_journal(path: Path, size: int, central: CentralStore | None) -> Verdict:
    """No journal file (or an empty one): fine only if this account never kept one here."""
    try:
        record = keys.load_record(path)
    except keys.KeyringUnavailable as exc:
        return Verdict(False, (f"There is no audit journal at {path}, and whether there should be cannot be told: "
                               f"{exc}.",))
    except ValueError as exc:
        return Verdict(False, (f"There is no audit journal at {path}, and {exc}. Tell your Information Governance "
                               "lead.",))
    if record is None:
        if size == 0:
            return Verdict(False, (f"The audit journal at {path} is an empty file, not a journal. "
                                   + _TELL.format(path=path),))
        return Verdict(True, ("No audit journal on this PC yet: nothing to verify.",))
    state = "missing" if size < 0 else "empty"
    lines = [f"AUDIT JOURNAL {state.upper()}: this account's keyring records journal {record.journal_id} at {path}, "
             f"but the file is {state}. It was deleted, moved or emptied. Put it back from a backup and tell your "
             "Information Governance lead."]
    if central is not None:
        checkpoints = central.checkpoints(record.journal_id)
        if checkpoints:
            lines.append(f"The central store ({central.where}) holds {len(checkpoints)} signed checkpoints of it, "
                         f"up to "
                         f"entry {checkpoints[-1].entry_count}.")
    return Verdict(False, tuple(lines))
