"""`mosaic notify …`: the patient-notification queue on this PC (counts only: no patient data is printed)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    notify = sub.add_parser("notify", help="the queue of messages telling patients who opened their record")
    verbs = notify.add_subparsers(dest="notify_command", required=True)
    verbs.add_parser("status", help="digests per state, and when the next one is due")
    verbs.add_parser("send", help="send the digests that are due now (the window and CLI also do this)")


def run(args: argparse.Namespace) -> int:
    from app.core.config import ConfigError, load_notify_settings

    try:
        settings = load_notify_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"mosaic: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from app.core.notify.queue import NotifyQueue, default_path

    path: Path = default_path()
    print(f"rule: {settings.rule}" + ("  (patients are not told)" if settings.rule == "never" else ""))
    if not path.exists():
        print("queue: empty (no record has been opened under a notify rule on this account)")
        return EXIT_OK
    try:
        queue = NotifyQueue.open(path)
    except Exception as exc:  # sqlite3.Error, OSError: say what, not a traceback
        print(f"mosaic: the notify queue {path} cannot be opened: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.notify_command == "send":
        if settings.rule == "never":
            print("mosaic: nothing is sent while [notify] rule is \"never\"", file=sys.stderr)
            return EXIT_USAGE
        from app.core.notify.sender import NotifySender, notify_client

        result = asyncio.run(NotifySender(queue, settings, lambda: notify_client(settings)).send_due())
        print(f"sent {len(result.delivered)}, suppressed {len(result.suppressed)}, refused {len(result.refused)}, "
              f"will retry {len(result.retrying)}")
        return EXIT_FAILED if result.retrying or result.refused else EXIT_OK
    counts = queue.counts()
    for status in ("collecting", "sending", "delivered", "suppressed", "refused"):
        print(f"{status:>11}: {counts.get(status, 0)}")
    nxt = queue.next_due()
    if nxt is not None:
        print(f"next due: {nxt.astimezone():%Y-%m-%d %H:%M %Z}"
              + ("  (overdue: is Mosaic running, and can it reach GOV.UK Notify?)"
                 if nxt < datetime.now(UTC) else ""))
    return EXIT_OK
