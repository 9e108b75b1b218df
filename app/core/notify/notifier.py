"""Deciding whether an access is one the patient is told about, and queueing it for the day's digest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.core.config import NotifySettings
from app.core.model import PatientContact as Contact  # as the record had them

if TYPE_CHECKING:
    from app.core.audit.model import JournalEntry
    from app.core.notify.queue import NotifyQueue

Clock = Callable[[], datetime]
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class Access:
    """One opening of a patient's record, as the notifier needs it.

    `registered_practice_*` is the practice holding the record (the patient's registered practice);
    `accessor_org_*` is the organisation the user works for. `entry_id` is the journal entry's id, so
    telling the notifier twice about one access queues it once.
    """

    entry_id: str
    nhs_number: str
    registered_practice_id: str
    registered_practice_name: str
    accessor_name: str
    accessor_org_id: str | None
    accessor_org_name: str
    accessed_at: datetime
    purpose: str | None = None
    contact: Contact = Contact()
    do_not_notify: bool = False


class Decision(StrEnum):
    QUEUED = "queued"
    ALREADY_QUEUED = "already-queued"
    NOT_BY_RULE = "not-by-rule"  # the rule (never / same practice) says no
    DO_NOT_NOTIFY = "do-not-notify"  # queued as suppressed: the day's digest will not go
    RESTRICTED = "restricted"  # likewise
    NO_NHS_NUMBER = "no-nhs-number"


def access_from_entry(entry: JournalEntry, *, registered_practice_name: str, accessor_org_id: str | None,
                      accessor_org_name: str, contact: Contact, do_not_notify: bool) -> Access:
    """An Access from a committed journal READ entry (the core's open_record)."""
    return Access(entry_id=entry.entry_id, nhs_number=entry.patient_nhs_number or "",
                  registered_practice_id=entry.practice_id or "", registered_practice_name=registered_practice_name,
                  accessor_name=entry.user.display_name, accessor_org_id=accessor_org_id,
                  accessor_org_name=accessor_org_name, accessed_at=entry.recorded_at, purpose=entry.purpose,
                  contact=contact, do_not_notify=do_not_notify)


class Notifier:
    """Queues accesses the rule says the patient is told about, into a per-patient, per-day digest.

    `is_restricted(nhs_number)` comes from the access policy; restricted patients are told only when
    `notify_restricted` is set. Both the do-not-notify mark and restriction are checked at the access
    and (restriction) again when the digest goes; either suppresses the whole day's digest.
    """

    def __init__(self, queue: NotifyQueue, settings: NotifySettings, *,
                 is_restricted: Callable[[str], bool] | None = None, notify_restricted: bool = False,
                 clock: Clock | None = None, tz: tzinfo = LONDON) -> None:
        self.queue = queue
        self.settings = settings
        self.is_restricted = is_restricted or (lambda _n: False)
        self.notify_restricted = notify_restricted
        self._clock = clock or (lambda: datetime.now(UTC))
        self.tz = tz

    def applies(self, access: Access) -> bool:
        if self.settings.rule == "every":
            return True
        if self.settings.rule == "cross-practice":
            return access.accessor_org_id != access.registered_practice_id
        return False

    def due_at(self, day: date) -> datetime:
        """When the digest of `day`'s accesses goes: `digest_hour` local time on the next day."""
        return datetime.combine(day + timedelta(days=1), time(self.settings.digest_hour), self.tz).astimezone(UTC)

    def record_access(self, access: Access) -> Decision:
        """Call after the journal has committed the access. Blocking (SQLite): from a worker thread."""
        if not self.applies(access):
            return Decision.NOT_BY_RULE
        if not access.nhs_number:
            return Decision.NO_NHS_NUMBER
        restricted = bool(self.is_restricted(access.nhs_number)) and not self.notify_restricted
        day = access.accessed_at.astimezone(self.tz).date()
        keep_contact = not (access.do_not_notify or restricted)
        digest_id = self.queue.add_access(
            entry_id=access.entry_id, nhs_number=access.nhs_number, day=day,
            practice_name=access.registered_practice_name, due_at=self.due_at(day), now=self._clock(),
            accessed_at=access.accessed_at, who=access.accessor_name, organisation=access.accessor_org_name,
            purpose=access.purpose, phone=access.contact.phone if keep_contact else None,
            email=access.contact.email if keep_contact else None, do_not_notify=access.do_not_notify,
            restricted=restricted)
        if digest_id is None:
            return Decision.ALREADY_QUEUED
        if access.do_not_notify:
            return Decision.DO_NOT_NOTIFY
        return Decision.RESTRICTED if restricted else Decision.QUEUED
