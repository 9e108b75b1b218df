"""Where an outbox row goes: the destination fixed when its entry was committed, never what a later directory
calls the same id.

A practice's rows read `practice:<id>@<server identity>` (model.practice_destination). The sender delivers one
only through a configured practice whose server identity (app/core/server_identity.identity_of: normalised base
URL + ODS code) equals the row's; the local id in the row is for people, not for routing. When no configured
practice has that server, the rows stay queued (never redirected, never refused, never a crash) and
`mosaic audit status` and the window say which practice and server they wait for.

Rows queued by a Mosaic before this rule read `practice:<id>` and name no server. Nothing on this computer can
tell which server `<id>` meant when they were committed: the directory may have changed since, and a per-user
or `--config` file may give `<id>` to another server. So they are never delivered automatically (the fail-safe
choice: an audit entry names a patient, and sending it to the wrong server discloses that patient); they stay
in the journal, counted by `mosaic audit status`, exportable with `mosaic audit export`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.core.audit.journal import DestinationStatus
from app.core.audit.model import CENTRAL_DESTINATION, PRACTICE_PREFIX
from app.core.model import Practice
from app.core.server_identity import ServerIdentity, identity_of


@dataclass(frozen=True)
class PracticeDestination:
    practice_id: str
    #: the server the entries were committed for; None when an older Mosaic queued them without recording it
    server: ServerIdentity | None


def parse(destination: str) -> PracticeDestination | None:
    """The practice destination `destination` names, or None when it is not a practice's (the central store)."""
    if not destination.startswith(PRACTICE_PREFIX):
        return None
    rest = destination.removeprefix(PRACTICE_PREFIX)
    practice_id, at, server_text = rest.partition("@")  # a practice id never holds "@" (config._ID)
    if not at:
        return PracticeDestination(practice_id, None)
    try:
        return PracticeDestination(practice_id, ServerIdentity.parse(server_text))
    except ValueError:
        return PracticeDestination(practice_id, None)  # unreadable: treated as not recorded, never guessed


def practices_for(destination: str, practices: Iterable[Practice]) -> list[Practice]:
    """The configured practices that may carry `destination`'s entries: those at exactly its server. None for
    a row without a recorded server, or one whose server is no longer configured."""
    parsed = parse(destination)
    if parsed is None or parsed.server is None:
        return []
    return [p for p in practices if identity_of(p) == parsed.server]


def _entries(count: int) -> str:
    """"1 entry waits", "3 entries wait"."""
    return f"{count:,} entry waits" if count == 1 else f"{count:,} entries wait"


def name_of(status: DestinationStatus, practices: Sequence[Practice]) -> str:
    """A destination as the user knows it: "Riverside Surgery (http://… A81001)", "the locality audit store"."""
    if status.destination == CENTRAL_DESTINATION:
        return "the locality audit store"
    parsed = parse(status.destination)
    if parsed is None:
        return status.destination
    if parsed.server is None:
        return f"practice '{parsed.practice_id}' (server not recorded)"
    configured = practices_for(status.destination, practices)
    name = configured[0].name if configured else status.label or parsed.practice_id
    return f"{name} ({parsed.server})"


def stranded(status: DestinationStatus, practices: Sequence[Practice]) -> str | None:
    """A sentence when `status`'s waiting entries can go nowhere on this computer, else None."""
    parsed = parse(status.destination)
    if parsed is None or not status.waiting:
        return None
    if parsed.server is None:
        return (f"{_entries(status.waiting)} for practice '{parsed.practice_id}' but the server they were meant "
                "for was not recorded (queued by an older Mosaic); they are kept here and not sent, since the "
                f"practice now called '{parsed.practice_id}' may be another server. Export them with `mosaic audit "
                "export` and tell your Information Governance lead.")
    if practices_for(status.destination, practices):
        return None
    return (f"{_entries(status.waiting)} for {name_of(status, practices)}, which is no longer configured on "
            "this computer; they are kept here and go only to that server.")
