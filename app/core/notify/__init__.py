"""Telling patients who opened their record: a daily digest per patient through GOV.UK Notify.

`Notifier.record_access` queues an access (after the journal has it); `NotifySender` sends each
patient's digest for a day at the configured hour, through a durable queue with retries.
"""

from app.core.notify.fhir import DO_NOT_NOTIFY_EXTENSION, DO_NOT_NOTIFY_FLAG_CODE, contact_from_patient, do_not_notify
from app.core.notify.notifier import Access, Contact, Decision, Notifier, access_from_entry
from app.core.notify.queue import NotifyQueue
from app.core.notify.sender import NotifySender, PassResult, notify_client, resolve_notify_key

__all__ = ["DO_NOT_NOTIFY_EXTENSION", "DO_NOT_NOTIFY_FLAG_CODE", "Access", "Contact", "Decision", "Notifier",
           "NotifyQueue", "NotifySender", "PassResult", "access_from_entry", "contact_from_patient",
           "do_not_notify", "notify_client", "resolve_notify_key"]
