"""Sending digests through GOV.UK Notify (its official client), with retries like the audit outbox.

Notify has no idempotency key. Each digest is sent with `reference` = its digest id (a random UUID
fixed when the digest is made, so it says nothing about the patient); a digest is marked delivered
only after Notify's 201, and before any retry Notify is asked whether it already holds a message
with that reference (the 201 may have been lost), so a retry does not send twice. The practice can
reconcile its queue's digest ids against Notify's records by that reference.

Outcomes: 201 → delivered; 400 (bad number, template mismatch) → refused for good; 403 (API key),
429, 5xx, network failures → tried again after exponential backoff with full jitter. Delivered,
refused and suppressed digests keep no contact details.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol, runtime_checkable

from app.core import net
from app.core.audit.outbox import Backoff, DeliveryDeferred, DeliveryRefused
from app.core.config import NotifySettings
from app.core.notify.notifier import LONDON
from app.core.notify.queue import DELIVERED, REFUSED, SUPPRESSED, Digest, NotifyQueue
from app.core.secrets import resolve_secret
from app.core.text import clean_text

log = logging.getLogger("mosaic.notify")
Clock = Callable[[], datetime]
SECRET_NAME = "notify"  # MOSAIC_SECRET_NOTIFY, or keyring user "notify"
_MOBILE = re.compile(r"^(\+44\s?7|07)")


@runtime_checkable
class NotifyClient(Protocol):
    def send_sms_notification(self, phone_number: str, template_id: str, personalisation: Any = None,
                              reference: Any = None) -> dict[str, Any]: ...
    def send_email_notification(self, email_address: str, template_id: str, personalisation: Any = None,
                                reference: Any = None) -> dict[str, Any]: ...
    def get_all_notifications(self, status: Any = None, template_type: Any = None, reference: Any = None
                              ) -> dict[str, Any]: ...


def resolve_notify_key() -> str | None:
    return resolve_secret(SECRET_NAME, "GOV.UK Notify")


def notify_client(settings: NotifySettings, api_key: str | None = None) -> NotifyClient:
    from notifications_python_client.notifications import NotificationsAPIClient

    key = api_key or resolve_notify_key()
    if not key:
        raise DeliveryDeferred("No GOV.UK Notify API key: set MOSAIC_SECRET_NOTIFY or "
                               "`mosaic credentials set notify`.")
    client = NotificationsAPIClient(key, base_url=settings.base_url)
    net.without_environment(client)  # phone numbers go to base_url only, never to a proxy the environment names
    return client


@dataclass
class PassResult:
    delivered: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)


def personalisation(digest: Digest, tz: tzinfo = LONDON) -> dict[str, Any]:
    """What the templates get: the day, the practice, and each access (who, organisation, when, why)."""
    lines: list[str] = []
    who: list[str] = []
    orgs: list[str] = []
    whys: list[str] = []
    for a in digest.accesses:
        when = a.accessed_at.astimezone(tz).strftime("%H:%M")
        why = a.purpose or "reason not given"
        lines.append(f"{when}: {a.who}, {a.organisation}, for {why}")
        for seen, value in ((who, a.who), (orgs, a.organisation), (whys, why)):
            if value not in seen:
                seen.append(value)
    return {"date": f"{digest.day.day} {digest.day:%B %Y}", "practice": digest.practice_name,
            "count": str(len(lines)), "accesses": lines, "who": ", ".join(who), "organisation": ", ".join(orgs),
            "when": ", ".join(a.accessed_at.astimezone(tz).strftime("%H:%M") for a in digest.accesses),
            "why": ", ".join(whys)}


class NotifySender:
    """Sends due digests. `await send_due()` runs one pass (tests, CLI); `start()`/`stop()` run it in the
    background, waking at the next due time or every `poll_s`."""

    def __init__(self, queue: NotifyQueue, settings: NotifySettings, client: NotifyClient | Callable[[], NotifyClient],
                 *, is_restricted: Callable[[str], bool] | None = None, notify_restricted: bool = False,
                 clock: Clock | None = None, rng: random.Random | None = None, backoff: Backoff | None = None,
                 tz: tzinfo = LONDON, poll_s: float = 300.0) -> None:
        self.queue = queue
        self.settings = settings
        self._client = client
        self.is_restricted = is_restricted or (lambda _n: False)
        self.notify_restricted = notify_restricted
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self.backoff = backoff or Backoff(base_s=30.0, cap_s=3600.0)
        self.tz = tz
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def _get_client(self) -> NotifyClient:
        client = self._client
        return client if isinstance(client, NotifyClient) else client()

    async def send_due(self) -> PassResult:
        result = PassResult()
        for digest in await asyncio.to_thread(self.queue.due, self._clock()):
            outcome = await self._one(digest)
            getattr(result, outcome).append(digest.digest_id)
        return result

    async def _one(self, digest: Digest) -> str:
        now = self._clock()
        restricted = digest.restricted or (self.is_restricted(digest.nhs_number) and not self.notify_restricted)
        reason = "do-not-notify" if digest.do_not_notify else "restricted" if restricted else None
        channel, address, template = self._channel(digest)
        if reason is None and channel is None:
            reason = "no mobile number or email address (or no template for it)"
        if reason is not None:
            await asyncio.to_thread(self.queue.finish, digest.digest_id, SUPPRESSED, now, detail=reason)
            return "suppressed"
        try:
            client = self._get_client()
            notify_id = await asyncio.to_thread(self._send, client, digest, channel, address, template)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            text = f"{status} {getattr(exc, 'message', '')}".strip() if status else str(exc) or type(exc).__name__
            text = clean_text(text)  # GOV.UK Notify's words reach the log and `mosaic notify status`
            if isinstance(exc, DeliveryRefused) or status == 400:
                log.warning("notify: digest %s refused: %s", digest.digest_id, text)
                await asyncio.to_thread(self.queue.finish, digest.digest_id, REFUSED, now, detail=text[:300],
                                        channel=channel)
                return "refused"
            when = now + timedelta(seconds=self.backoff.delay(digest.attempts, self._rng))
            log.info("notify: digest %s not sent (attempt %d), next try at %s", digest.digest_id,
                     digest.attempts + 1, when.isoformat(timespec="seconds"))
            await asyncio.to_thread(self.queue.retry, digest.digest_id, text, when, channel)
            return "retrying"
        await asyncio.to_thread(self.queue.finish, digest.digest_id, DELIVERED, now, channel=channel,
                                notify_id=notify_id)
        return "delivered"

    def _channel(self, digest: Digest) -> tuple[str | None, str | None, str | None]:
        if digest.phone and _MOBILE.match(digest.phone.strip()) and self.settings.sms_template_id:
            return "sms", digest.phone, self.settings.sms_template_id
        if digest.email and self.settings.email_template_id:
            return "email", digest.email, self.settings.email_template_id
        return None, None, None

    def _send(self, client: NotifyClient, digest: Digest, channel: str | None, address: str | None,
              template: str | None) -> str:
        assert channel and address and template
        if digest.attempts:  # a previous attempt may have reached Notify even though its 201 did not reach us
            found = client.get_all_notifications(reference=digest.digest_id).get("notifications") or []
            if found:
                return str(found[0]["id"])
        values = personalisation(digest, self.tz)
        if channel == "sms":
            reply = client.send_sms_notification(address, template, personalisation=values,
                                                 reference=digest.digest_id)
        else:
            reply = client.send_email_notification(address, template, personalisation=values,
                                                   reference=digest.digest_id)
        return str(reply["id"])

    # --- in the background -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notify-sender")
        return self._task

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:
                log.exception("notify: a sending pass failed; trying again later")
            nxt = await asyncio.to_thread(self.queue.next_due)
            sleep = self._poll_s if nxt is None else min(self._poll_s,
                                                         max(0.05, (nxt - self._clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), sleep)
