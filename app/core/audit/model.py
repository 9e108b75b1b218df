"""What one audit journal entry holds. Shared by the journal, the outbox and the upstream formats."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.model import Practice


class Action(StrEnum):
    SEARCH = "search"
    READ = "read"
    BREAK_GLASS = "break-glass"
    EXPORT = "export"
    #: committed before a request for patient data leaves for a practice (a search, a record open); the
    #: outcome follows as its own entry naming the intent (details "intent"). An intent with no outcome after
    #: it is an attempt that never finished (the process was killed, the machine lost power). Journal only:
    #: never sent upstream (the outcome is).
    INTENT = "intent"
    #: a flagged entry marked reviewed (app/core/audit/review.py): details "reviewed" names the entry's id and
    #: "note" holds the reviewer's note; the reviewer is the entry's user. Goes where the reviewed entry went.
    REVIEW = "review"
    #: a look at locality insight (app/insight): a refresh, a figure shown, peers, an export, an import. Names no
    #: patient; details "insight" says what was done, with "metric", "by", "period" and "practices". Goes to
    #: the local journal and the central store only, never to a practice (app/core/insight_access.py says why).
    INSIGHT = "insight"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True)
class AuditUser:
    """Who acted. `professional_ids` holds e.g. {"sds_user_id": "…", "sds_role_profile_id": "…"}."""

    login: str
    display_name: str
    role: str | None = None
    professional_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_os(cls) -> AuditUser:
        """Without an identity provider, the OS account running Mosaic is the user (never an environment
        variable: see app.core.os_account)."""
        from app.core import os_account

        login = os_account.os_login()
        return cls(login=login, display_name=login)


def workstation_name() -> str:
    return socket.gethostname()


PRACTICE_PREFIX = "practice:"


def practice_destination(practice: Practice) -> str:
    """The outbox destination of an entry for `practice`, fixed when the entry is committed:
    `practice:<id>@<server identity>`. The sender delivers it only through a configured practice with that
    same server identity (app/core/audit/destinations.py), never to whatever a later directory calls `<id>`."""
    from app.core.server_identity import identity_of

    return Destination(f"{PRACTICE_PREFIX}{practice.id}@{identity_of(practice)}", label=practice.name)


class Destination(str):
    """A destination as the outbox row stores it, with the name the user knew it by when it was committed
    (kept in the row's `label`, for `mosaic audit status` once that practice is no longer configured)."""

    label: str | None

    def __new__(cls, text: str, label: str | None = None) -> Destination:
        made = super().__new__(cls, text)
        made.label = label
        return made


CENTRAL_DESTINATION = "central"


@dataclass(frozen=True)
class JournalEntry:
    """One look at (or search for) patient data. `seq`, `prev_hash` and `hash` are set by the journal."""

    action: Action
    user: AuditUser
    outcome: Outcome = Outcome.SUCCESS
    practice_id: str | None = None
    practice_ods: str | None = None
    patient_local_id: str | None = None
    patient_nhs_number: str | None = None
    sections: tuple[str, ...] = ()
    purpose: str | None = None
    outcome_detail: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    workstation: str = field(default_factory=workstation_name)
    app_version: str = ""
    entry_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


def is_flagged(entry: JournalEntry) -> bool:
    """Break-glass, self/family and denied accesses: what `mosaic audit flagged` lists for review."""
    return (entry.action == Action.BREAK_GLASS or entry.outcome == Outcome.DENIED
            or bool(entry.details.get("flagged")))
