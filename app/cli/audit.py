"""`mosaic audit …`: who looked at whom, from this PC's journal or the locality's central store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from app.core import nhs_number, paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="list, verify, export the audit journal; show what waits upstream")
    verbs = audit.add_subparsers(dest="audit_command", required=True)

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--user", metavar="LOGIN", help="entries by this user")
        p.add_argument("--patient", metavar="NHS_NUMBER", help="entries about this patient")
        p.add_argument("--practice", metavar="ID", help="entries at this practice")
        p.add_argument("--since", type=date.fromisoformat, metavar="DATE", help="from this day (YYYY-MM-DD)")
        p.add_argument("--until", type=date.fromisoformat, metavar="DATE", help="to this day, inclusive")
        p.add_argument("--limit", type=int, default=10_000, help="at most this many entries (default 10000)")
        p.add_argument("--central", metavar="URL",
                       help="read the locality's central store (a database URL without a password; the "
                            "password comes from MOSAIC_SECRET_CENTRAL or the keyring)")

    listing = verbs.add_parser("list", help="entries, newest first")
    filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    verify = verbs.add_parser("verify", help="check the keyed hash chain and its checkpoints; exit 1, saying what is "
                                             "wrong, if the journal was changed, cut short or removed")
    verify.add_argument("--central", metavar="URL",
                        help="also check it against the signed checkpoints in the locality's central store (an "
                             "auditor's database URL without a password; the password comes from "
                             "MOSAIC_SECRET_CENTRAL or the keyring)")
    export = verbs.add_parser("export", help="write entries as CSV or a FHIR Bundle of AuditEvents")
    filters(export)
    export.add_argument("--format", choices=("csv", "fhir"), required=True)
    export.add_argument("--output", type=Path, metavar="FILE", help="write here instead of standard output")
    verbs.add_parser("status", help="entries waiting to go upstream, per destination, and the oldest")
    flagged = verbs.add_parser("flagged", help="accesses flagged for review: break-glass, self/family, denied")
    filters(flagged)
    flagged.add_argument("--json", action="store_true", help="one JSON object per line")
    review = verbs.add_parser("review", help="mark a flagged entry reviewed, with a note (journaled as you, and "
                                             "sent upstream where the entry went)")
    review.add_argument("entry", metavar="ENTRY_ID", help="the entry's id (or journal sequence number), as "
                                                         "mosaic audit flagged --json gives it")
    review.add_argument("--note", required=True, metavar="TEXT", help="what was checked, and what follows")


def run(args: argparse.Namespace, practices_loader) -> int:
    from app.core.audit.central import CentralStoreError
    from app.core.audit.journal import JournalError
    from app.core.policy import PolicyFileError
    from app.core.secrets import SecretError

    try:
        return {"list": _list, "verify": _verify, "export": _export, "status": _status,
                "flagged": _flagged, "review": _review}[args.audit_command](
            args, practices_loader)
    except (JournalError, CentralStoreError, SecretError) as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (_UsageError, PolicyFileError) as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _UsageError(Exception):
    pass


def _open_journal():
    """The journal read-only (listing must not create one); None when this PC has none yet."""
    from app.core.audit.journal import Journal, default_path

    path = default_path()
    return Journal.open(path, read_only=True) if path.exists() else None


def _research_view(args: argparse.Namespace):
    """The research view when this login's role is a research role: entries are then shown with the
    study pseudonym in place of every patient identifier (the journal itself keeps the real ones)."""
    from app.core.audit.model import AuditUser
    from app.core.policy import load_policy
    from app.core.research import ResearchView

    policy = load_policy(config_file=getattr(args, "config", None))  # malformed: PolicyFileError, stop
    user = getattr(args, "acting_user", None) or AuditUser.from_os()  # the signed-in user (app.cli._who_is_using)
    study = policy.study_of(user.login) if policy is not None else None
    return ResearchView(study) if study is not None else None


def _entries(args: argparse.Namespace):
    view = _research_view(args)
    args.research = view is not None
    entries = _query(args)
    return entries if view is None else view.journal_entries(entries)


def _query(args: argparse.Namespace):
    from app.core.audit.export import day_end, day_start

    patient = None
    if args.patient:
        if not nhs_number.is_valid(args.patient):
            raise _UsageError(f"--patient {args.patient}: not a valid NHS number (check digit).")
        patient = nhs_number.normalise(args.patient)
    since = day_start(args.since) if args.since else None
    until = day_end(args.until) if args.until else None
    if args.central:
        store = _central(args.central)
        try:
            return store.query(user=args.user, patient=patient, practice=args.practice, since=since, until=until,
                               limit=args.limit, flagged=getattr(args, "flagged_only", False))
        finally:
            store.close()
    journal = _open_journal()
    if journal is None:
        return []
    try:
        return journal.query(user=args.user, patient_nhs_number=patient, practice_id=args.practice, since=since,
                             until=until, limit=args.limit, flagged=getattr(args, "flagged_only", False))
    finally:
        journal.close()


def _central(url: str):
    from app.core.audit.central import CentralStoreError, open_central

    try:
        return open_central(url)
    except CentralStoreError as exc:
        raise _UsageError(f"--central: {exc}") from exc


def _list(args: argparse.Namespace, _practices_loader) -> int:
    from app.core.audit.export import entry_row
    from app.core.display import format_datetime

    entries = _entries(args)
    if args.json:
        for entry in entries:
            print(json.dumps(entry_row(entry), sort_keys=True))
        return EXIT_OK
    for e in entries:
        patient = nhs_number.format_nhs_number(e.patient_nhs_number) or (args.research and e.patient_local_id) or "-"
        what = ",".join(e.sections) if e.sections else _insight_words(e) if e.details.get("insight") else (
            json.dumps(e.details.get("query")) if e.details else "")
        print(f"{format_datetime(e.recorded_at):<18} {e.user.login:<12} {e.action!s:<7} {e.outcome!s:<8} "
              f"{e.practice_id or '-':<12} {patient:<13} {what}")
    print(f"{len(entries)} entries", file=sys.stderr)
    return EXIT_OK


def _insight_words(entry) -> str:
    from app.core.insight_access import insight_text

    return insight_text(entry.details)


def _verify(args: argparse.Namespace, _practices_loader) -> int:
    """The chain with its key, the checkpoints outside the file, and the central store's when asked. A
    journal missing where this account's keyring records one fails (exit 1), like a broken one."""
    from app.core.audit.evidence import verify_journal
    from app.core.audit.journal import default_path

    store = _central(args.central) if args.central else None
    try:
        verdict = verify_journal(default_path(), store)
    finally:
        if store is not None:
            store.close()
    for line in verdict.lines:
        print(line)
    return EXIT_OK if verdict.ok else EXIT_FAILED


def _export(args: argparse.Namespace, practices_loader) -> int:
    from app.core.audit.export import to_csv, to_fhir_bundle

    entries = _entries(args)
    if args.format == "csv":
        text = to_csv(entries)
    else:
        practices = {p.id: p for p in (practices_loader() or [])}
        text = json.dumps(to_fhir_bundle(entries, practices), indent=2)
    if args.output:
        paths.write_private_text(args.output, text)  # patient identifiers: user-only (0600)
        print(f"Wrote {len(entries)} entries to {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _status(args: argparse.Namespace, practices_loader) -> int:
    from app.core.audit import destinations
    from app.core.display import format_datetime

    journal = _open_journal()
    if journal is None:
        print("No audit journal on this PC yet.")
        return EXIT_OK
    try:
        status = journal.outbox_status()
    finally:
        journal.close()
    if not status:
        print("Every audit entry has gone upstream.")
        return EXIT_OK
    loaded = practices_loader()  # to say which destinations are no longer configured here
    # an unreadable directory (the loader said why): the rows as they are, without "no longer configured"
    practices = loaded if loaded is not None else []
    stranded = []
    for d in status:
        line = f"{destinations.name_of(d, practices):<24} waiting {d.waiting:>6}   refused {d.refused:>4}"
        if d.oldest_waiting:
            line += f"   oldest {format_datetime(d.oldest_waiting)}"
        if d.last_error:
            line += f"   last error: {d.last_error}"
        print(line)
        sentence = destinations.stranded(d, practices) if loaded is not None else None
        if sentence:
            stranded.append(sentence)
    for sentence in stranded:  # kept, never sent elsewhere: said in words
        print(sentence)
    return EXIT_FAILED if any(d.refused for d in status) else EXIT_OK


def _flagged(args: argparse.Namespace, _practices_loader) -> int:
    """Break-glass, self/family and denied accesses, newest first, with user, patient, reason, time and who
    reviewed them."""
    from app.core.audit.export import entry_row
    from app.core.audit.review import review_text
    from app.core.display import format_datetime

    args.flagged_only = True  # chosen in SQL; the limit then counts flagged entries
    entries = _entries(args)
    if args.json:
        reviews = _reviews_of(args, [e.entry_id for e in entries])
        for e in entries:
            row = entry_row(e)
            row["flag"] = _flag_of(e)
            row["reviews"] = [{"reviewer": r.user.login, "reviewer_name": r.user.display_name,
                               "recorded_at": r.recorded_at.isoformat(), "note": r.details.get("note"),
                               "entry_id": r.entry_id} for r in reviews.get(e.entry_id, ())]
            row["reviewed"] = bool(row["reviews"])
            print(json.dumps(row, sort_keys=True))
        return EXIT_OK
    reviews = _reviews_of(args, [e.entry_id for e in entries])
    for e in entries:
        patient = nhs_number.format_nhs_number(e.patient_nhs_number) or e.patient_local_id or "-"
        why = e.purpose or "-"
        line = (f"{format_datetime(e.recorded_at):<18} {_flag_of(e):<14} {e.user.login:<12} {e.practice_id or '-':<12} "
                f"{patient:<13} reason: {why}")
        if e.outcome_detail:
            line += f"  ({e.outcome_detail})"
        line += "  [" + ("; ".join(review_text(r) for r in reviews.get(e.entry_id, ())) or
                         f"not reviewed: mosaic audit review {e.entry_id} --note TEXT") + "]"
        print(line)
    print(f"{len(entries)} flagged entries, {sum(1 for e in entries if e.entry_id in reviews)} reviewed",
          file=sys.stderr)
    return EXIT_OK


def _reviews_of(args: argparse.Namespace, entry_ids: list[str]) -> dict:
    """The reviews of these entries in this PC's journal (the central store's are listed by its own tools)."""
    from app.core.audit.review import reviews_of

    if args.central or not entry_ids:
        return {}
    journal = _open_journal()
    if journal is None:
        return {}
    try:
        return reviews_of(journal, entry_ids)
    finally:
        journal.close()


def _review(args: argparse.Namespace, practices_loader) -> int:
    """Journal a review of a flagged entry as the signed-in user (unattended: the OS account, or the journal key
    and identity the environment gives), then give it a short chance to go upstream; what does not go waits."""
    import asyncio
    import contextlib

    from app.core.audit.recorder import AuditError
    from app.core.audit.review import ReviewRefused, mark_reviewed, review_text
    from app.core.service import MosaicCore

    practices = practices_loader()
    if practices is None:
        return EXIT_USAGE

    async def run():
        core = MosaicCore(practices, central_url=getattr(args, "central_url", None),
                          policy=getattr(args, "policy", None), user=getattr(args, "acting_user", None))
        try:
            entry = await mark_reviewed(core, args.entry, args.note)
            if entry.practice_id and any(p.id == entry.practice_id for p in practices):
                with contextlib.suppress(Exception):  # offline, or no sign-in here: it waits in the outbox
                    await asyncio.wait_for(core.retry(entry.practice_id), timeout=10)
            else:
                await core.start_outbox()
            await core.flush_outbox(timeout_s=5)
            return entry
        finally:
            await core.close()

    try:
        entry = asyncio.run(run())
    except ReviewRefused as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AuditError as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{review_text(entry)} (journal entry {entry.seq}, reviewing entry {args.entry})")
    return EXIT_OK


def _flag_of(entry) -> str:
    from app.core.audit.model import Outcome

    if entry.outcome == Outcome.DENIED:
        return "denied"
    return str(entry.details.get("flag") or entry.action)
