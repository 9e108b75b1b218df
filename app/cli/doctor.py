"""`mosaic doctor [--json] [--config FILE] [--timeout SECONDS]`: can this PC run Mosaic as IT set it up?

Unattended: no sign-in, no browser, no prompt; nothing stored in the keyring, nothing journaled. Exit status 0
when no check failed (warnings are printed and leave it 0), 1 when any failed. `--json` prints one JSON
document: {"mosaic": version, "ok": bool, "counts": {"ok", "warn", "fail"}, "seconds": total,
"checks": [{"name", "title", "status": "ok"|"warn"|"fail", "detail", "action", "seconds"}]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import textwrap
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check this PC for IT: Qt libraries, keyring, machine files, policy, "
                                           "journal, every practice, the central audit store, the sign-in service")
    doctor.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                        help="check with this practice directory in place of the per-user file")
    doctor.add_argument("--json", action="store_true", help="one JSON document with every check")
    doctor.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                        help="at most this long for each network check (default: each practice's own timeout, "
                             "15 s for the central store and the sign-in service)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from app import installed_version
    from app.core.doctor.result import Status
    from app.core.doctor.run import run_checks

    report = asyncio.run(run_checks(args.config, timeout_s=args.timeout))
    counts = {str(s): report.count(s) for s in Status}
    if args.json:
        print(json.dumps({"mosaic": installed_version(), "ok": not report.failed, "counts": counts,
                          "seconds": round(report.seconds, 3), "checks": [c.as_json() for c in report.checks]},
                         indent=2))
    else:
        for check in report.checks:
            label = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}[str(check.status)]
            print(textwrap.fill(f"{check.title}: {check.detail}", width=110, initial_indent=f"{label:<5} ",
                                subsequent_indent=" " * 6, break_on_hyphens=False, break_long_words=False))
            if check.action:
                print(textwrap.fill(f"What to do: {check.action}", width=110, initial_indent=" " * 6,
                                    subsequent_indent=" " * 8, break_on_hyphens=False, break_long_words=False))
        print(f"mosaic {installed_version()} doctor: {len(report.checks)} checks, {counts['ok']} ok, "
              f"{counts['warn']} warning(s), {counts['fail']} failed ({report.seconds:.1f} s)")
    return EXIT_FAILED if report.failed else EXIT_OK
