"""The core's side of telling patients: after a record open is journaled, queue it for the digest.

Built by MosaicCore when the machine-wide [notify] rule is not "never". The queue is opened on the
core's loop thread (in a worker) the first time it is needed, like the journal; the sender runs
alongside the audit outbox. Queueing never stops a record from being shown: the access is already
in the journal, and a failure here is logged (entry id only, no patient data) and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from app.core.config import NotifySettings
from app.core.model import PatientContact, Practice
from app.core.notify.notifier import Access, Clock, Contact, Decision, Notifier
from app.core.notify.queue import NotifyQueue
from app.core.notify.sender import NotifyClient, NotifySender, notify_client

log = logging.getLogger("mosaic.notify")


class PatientNotices:
    """`record(...)` queues one journaled access; `start()`/`stop()` run the digest sender."""

    def __init__(self, settings: NotifySettings, *, is_restricted: Callable[[str], bool],
                 notify_restricted: bool = False, queue_path: Path | None = None,
                 client: NotifyClient | Callable[[], NotifyClient] | None = None, clock: Clock | None = None,
                 poll_s: float = 300.0) -> None:
        self.settings = settings
        self._is_restricted = is_restricted
        self._notify_restricted = notify_restricted
        self._queue_path = queue_path
        self._client = client or (lambda: notify_client(settings))
        self._clock = clock
        self._poll_s = poll_s
        self._notifier: Notifier | None = None
        self._sender: NotifySender | None = None
        self._lock = asyncio.Lock()
        #: accesses that could not be queued since start (shown by `mosaic notify status`)
        self.failures = 0

    async def notifier(self) -> Notifier:
        async with self._lock:
            if self._notifier is None:
                queue = await asyncio.to_thread(NotifyQueue.open, self._queue_path)
                self._notifier = Notifier(queue, self.settings, is_restricted=self._is_restricted,
                                          notify_restricted=self._notify_restricted, clock=self._clock)
            return self._notifier

    async def record(self, *, entry_id: str, nhs_number: str | None, practice: Practice, accessed_at,
                     who: str, org_ods: str | None, org_name: str, purpose: str | None,
                     contact: PatientContact | None) -> Decision | None:
        """Queue a journaled record open for the patient's digest. None when it could not be queued.

        The patient's wishes are decided here, for every path: only a do-not-notify mark that was read and
        found absent (`PatientContact.may_notify`) lets the day's digest go; marked, or unknown (no contact,
        the Flag search failed or is not offered, part of the record missing), and nobody is told."""
        contact = contact or Contact()
        access = Access(entry_id=entry_id, nhs_number=nhs_number or "",
                        registered_practice_id=practice.ods_code.upper(), registered_practice_name=practice.name,
                        accessor_name=who, accessor_org_id=org_ods.upper() if org_ods else None,
                        accessor_org_name=org_name, accessed_at=accessed_at, purpose=purpose,
                        contact=contact, do_not_notify=not contact.may_notify)
        try:
            notifier = await self.notifier()
            return await asyncio.to_thread(notifier.record_access, access)
        except Exception as exc:  # the disk, the queue file: the access is journaled, the record still shows
            self.failures += 1
            log.warning("notify: journal entry %s could not be queued for the patient's digest (%s)", entry_id,
                        type(exc).__name__)
            return None

    async def start(self) -> None:
        if self._sender is None:
            notifier = await self.notifier()
            self._sender = NotifySender(notifier.queue, self.settings, self._client,
                                        is_restricted=self._is_restricted, notify_restricted=self._notify_restricted,
                                        clock=self._clock, poll_s=self._poll_s)
            self._sender.start()

    @property
    def sender(self) -> NotifySender | None:
        return self._sender

    async def stop(self) -> None:
        if self._sender is not None:
            await self._sender.stop()
            self._sender = None
