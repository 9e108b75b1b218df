"""The `mosaic` command: the window, the demo practices, and the same core from a terminal.

Exit status: 0 success; 1 when a practice, patient or section could not be read, or the access
policy refused or wants more (a reason, break-glass: the message says exactly what); 2 for usage or
configuration errors (a malformed or user-writable access policy included).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import getpass
import json
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app import installed_version

if TYPE_CHECKING:
    from app.demo.network import DemoNetwork

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: the demo shows what a real network has: GP Connect practices (as EMIS and SystmOne practices are; which
#: ones: app.demo.sizes.gp_connect_indexes), one sign-in through an OpenID provider, and the client-credentials
#: practices on SMART Backend Services
DEMO_FEATURES: dict[str, Any] = {"identity": True, "smart_backend": True, "notify": True}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mosaic", description="One window onto every practice in your network.")
    parser.add_argument("--version", action="version", version=f"mosaic {installed_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to the console")
    parser.add_argument("--config", type=Path, help="practice directory file (replaces machine and user files)")
    sub = parser.add_subparsers(dest="command")

    def add_demo_options(p: argparse.ArgumentParser) -> None:
        from app.demo.sizes import MAX_PRACTICES, MIN_PRACTICES

        p.add_argument("--practices", type=_demo_practice_count, default=5, metavar="N",
                       help=f"how many practices, {MIN_PRACTICES} to {MAX_PRACTICES} (default 5); the 2nd and 4th "
                            "of every five speak GP Connect, the rest FHIR R4")
        p.add_argument("--patients", type=int, default=2000, help="patients per practice (default 2000)")
        p.add_argument("--latency-ms", type=int, default=0, help="delay added to every demo reply")
        p.add_argument("--load", type=Path, metavar="DIR", help="also load FHIR transaction bundles from DIR")

    demo = sub.add_parser("demo", help="start the demo practices and open the window, signed in")
    add_demo_options(demo)
    demo.add_argument("--role", choices=("hub", "gp", "researcher", "locality"), default="hub",
                      help="the demo user's role under the demo access policy (default hub: a reason for every "
                           "access; locality: the Locality view's figures only, no records); ignored when this "
                           "machine has an access policy of its own")
    server = sub.add_parser("demo-server", help="run the demo practices headless until interrupted")
    server.add_argument("--write-config", type=Path, required=True, metavar="FILE",
                        help="write the practice directory to FILE and secrets to FILE.env (mode 0600)")
    add_demo_options(server)

    for name, help_text in (("check", "check every configured practice answers"),):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    search = sub.add_parser("search", help="search every practice at once")
    search.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.add_argument("query", nargs="+", help="NHS number, name (family first) or date of birth; in the research "
                        "view study criteria instead: condition:<SNOMED CT code> age:<from>-<to> practice:<id>")
    show = sub.add_parser("show", help="show one patient's record from one practice")
    show.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    show.add_argument("--json", action="store_true")
    show.add_argument("--reason", metavar="TEXT", help="reason for access, where the access policy asks")
    show.add_argument("--break-glass", action="store_true",
                      help="open a restricted patient's record by break-glass (needs --reason; flagged for review)")
    show.add_argument("--criteria", metavar="TEXT",
                      help="research view: the study criteria search whose results hold the pseudonym (run first, "
                           "journaled; e.g. 'condition:44054006 age:40-60')")
    show.add_argument("--all-practices", action="store_true",
                      help="open the patient (by NHS number: mosaic show --all-practices NHS_NUMBER) at every "
                           "practice they are registered at, in one timeline with the differences between practices")
    show.add_argument("practice", help="practice id (with --all-practices: the NHS number)")
    show.add_argument("patient", nargs="?", help="practice-local patient id or NHS number; in the research view a "
                      "pseudonym from --criteria's results")
    creds = sub.add_parser("credentials", help="store or remove a practice's secret in the OS keyring")
    creds_sub = creds.add_subparsers(dest="action", required=True)
    creds_set = creds_sub.add_parser("set", help="prompt for the secret and store it in the keyring")
    creds_set.add_argument("practice")
    creds_del = creds_sub.add_parser("delete", help="remove the stored secret")
    creds_del.add_argument("practice")
    from app.cli.audit import add_parser as add_audit_parser

    add_audit_parser(sub)
    from app.cli.notify import add_parser as add_notify_parser

    add_notify_parser(sub)
    from app.cli.doctor import add_parser as add_doctor_parser

    add_doctor_parser(sub)
    from app.cli.config import add_parser as add_config_parser

    add_config_parser(sub)
    from app.cli.insight import add_parser as add_insight_parser

    add_insight_parser(sub)
    return parser


def _demo_practice_count(text: str) -> int:
    """--practices: a whole number in the range the demo serves, or argparse's usage error (exit 2)."""
    from app.demo.sizes import MAX_PRACTICES, MIN_PRACTICES

    try:
        count = int(text)
    except ValueError:
        count = MIN_PRACTICES - 1
    if not MIN_PRACTICES <= count <= MAX_PRACTICES:
        raise argparse.ArgumentTypeError(f"must be a whole number from {MIN_PRACTICES} to {MAX_PRACTICES}, "
                                         f"not {text!r}")
    return count


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from app.core.logs import setup_logging

    setup_logging(args.verbose)
    handlers = {
        None: cmd_window, "demo": cmd_demo, "demo-server": cmd_demo_server, "check": cmd_check,
        "search": cmd_search, "show": cmd_show, "credentials": cmd_credentials, "audit": cmd_audit,
        "notify": cmd_notify, "doctor": cmd_doctor, "config": cmd_config, "insight": cmd_insight,
    }
    from app.cli.errors import run_command

    def dispatch() -> int:
        if args.command in SIGNED_IN_COMMANDS:
            refused = _who_is_using(args)
            if refused is not None:
                return refused
        return handlers[args.command](args)

    # every failure a sentence and an exit status: a closed pipe, no keyring, anything unexpected (app/cli/errors.py)
    return run_command(dispatch)


#: commands that act for a person (journaled as them, decided by the policy for them): they need to know who
SIGNED_IN_COMMANDS = frozenset({"check", "search", "show", "audit", "insight"})


def _who_is_using(args: argparse.Namespace) -> int | None:
    """Set `args.acting_user`: with [identity] in the machine-wide file, the person who signs in now through the same
    OpenID Connect flow as the window (the system browser); without it, the OS account running Mosaic (never an
    environment variable). Returns an exit status when the command must stop: it never falls back to the OS
    account when IT configured an identity provider."""
    from app.core.audit.model import AuditUser
    from app.core.config import ConfigError, load_identity_settings

    try:
        settings = load_identity_settings(args.config)
    except ConfigError as exc:
        _print_err(f"configuration error: {exc}")
        return EXIT_USAGE
    if not settings.configured:
        args.acting_user = AuditUser.from_os()
        return None
    if not _can_sign_in_here():
        _print_err(f"this computer signs its users in through {settings.issuer} ([identity] in the machine-wide "
                   "directory), which needs an interactive terminal and a display for the browser; run the "
                   "command there (Mosaic never acts as the computer account instead).")
        return EXIT_USAGE
    from app.core.identity import Identity, IdentityError

    try:
        signed_in = asyncio.run(Identity(settings).sign_in())
    except IdentityError as exc:
        _print_err(f"sign-in failed: {' '.join(str(exc).split())}")
        return EXIT_FAILED
    print(f"Signed in as {signed_in.display_name}.", file=sys.stderr)
    args.acting_user = signed_in.audit_user()
    return None


def _can_sign_in_here() -> bool:
    """Whether a person is at this terminal with a screen the sign-in browser can open on."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    has_screen = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return has_screen or not sys.platform.startswith("linux")


def _load_practices(args: argparse.Namespace):
    """The practice directory, with the machine's [audit] and [identity] settings checked and kept on `args`."""
    from app.core.config import (
        ConfigError,
        load_audit_settings,
        load_directory,
        load_identity_settings,
        load_notify_settings,
    )
    from app.core.policy import PolicyFileError, load_policy

    try:
        practices = load_directory(args.config)
        args.central_url = load_audit_settings(args.config).central_url
        args.identity = load_identity_settings(args.config)
        args.notify = load_notify_settings(args.config)
        args.policy = load_policy(config_file=args.config)  # malformed, or [policy] in --config: stop here
    except ConfigError as exc:
        print(f"mosaic: configuration error: {exc}", file=sys.stderr)
        return None
    except PolicyFileError as exc:
        print(f"mosaic: {exc}", file=sys.stderr)
        return None
    return practices


def _print_err(message: str) -> None:
    print(f"mosaic: {message}", file=sys.stderr)


# --- the window ---------------------------------------------------------------------------------

def _qt_libraries_present() -> bool:
    """On Linux, the system libraries Qt's window needs, looked for before Qt would abort with its own message;
    when some are missing, says which packages to install (app/core/qt_libs.py)."""
    from app.core import qt_libs

    found = qt_libs.check()
    if not found.ok:
        _print_err(found.message())
    return found.ok


def cmd_window(args: argparse.Namespace) -> int:
    if not _qt_libraries_present():
        return EXIT_FAILED
    if not _policy_usable():
        return EXIT_USAGE
    practices = _load_practices(args)
    if practices is None:
        return EXIT_USAGE
    holder: dict[str, DemoNetwork] = {}

    def start_demo():
        network = _start_demo_network(patients=2000, latency_ms=0, load=None)
        holder["network"] = network
        return network.practices

    try:
        return _run_window_safely(practices, start_demo=start_demo, central_url=args.central_url,
                                  identity=args.identity, core_options={"notify": args.notify})
    finally:
        network = holder.get("network")
        if network is not None:
            network.stop()


def _run_window_safely(practices, **kwargs) -> int:
    """The window, or, when the audit journal cannot be opened, a message saying so (nothing is shown
    without a journal to record it)."""
    from app.core.audit.journal import JournalError
    from app.core.policy import PolicyFileError
    from app.ui.app import ensure_application, run_window

    try:
        return run_window(practices, **kwargs)
    except PolicyFileError as exc:  # the policy changed since it was checked: it never falls open
        _stop_for_policy(exc)
        return EXIT_USAGE
    except JournalError as exc:
        _print_err(str(exc))
        from PySide6.QtWidgets import QMessageBox

        ensure_application()
        QMessageBox.critical(None, "Mosaic cannot start", f"{exc}\n\nNo patient data can be shown until the "
                             "audit journal can be written. Free disk space or ask IT.")
        return EXIT_FAILED


def _policy_usable() -> bool:
    """Check the access policy before anything starts; a malformed or user-writable one stops Mosaic (with
    a one-line message on stderr, and a message box when there is a screen to show it on)."""
    from app.core.policy import PolicyFileError, load_policy

    try:
        load_policy()
    except PolicyFileError as exc:
        _stop_for_policy(exc)
        return False
    return True


def _stop_for_policy(exc: Exception) -> None:
    message = " ".join(str(exc).split())  # one line, naming the file and line
    _print_err(f"{message.rstrip('.')}. Mosaic cannot start; ask IT to correct the access policy.")
    if _can_show_dialog():
        from PySide6.QtWidgets import QMessageBox

        from app.ui.app import ensure_application

        ensure_application()
        box = QMessageBox(QMessageBox.Icon.Critical, "Mosaic cannot start",
                          f"The access policy cannot be used:\n\n{message}\n\nMosaic does not open records without "
                          "a valid policy. Ask IT to correct the file.")
        box.setObjectName("policyError")
        box.exec()


def _can_show_dialog() -> bool:
    """Whether a message box would reach a person: not offscreen, and on Linux only with a display."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in ("offscreen", "minimal", "vnc"):
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return True


def _start_demo_network(patients: int, latency_ms: int, load: Path | None, practices: int = 5) -> DemoNetwork:
    """Start the demo practices in this process and put their secrets in this process's environment."""
    from app.core.secrets import env_name
    from app.demo.network import DemoNetwork
    from app.demo.session import use_demo_files
    from app.demo.sizes import gp_connect_indexes

    use_demo_files()  # the demo's journal and files apart from the user's real ones (app/demo/session.py)
    network = DemoNetwork.start(practices=practices, patients=patients, latency_ms=latency_ms, load_dir=load,
                                gp_connect=gp_connect_indexes(practices), **DEMO_FEATURES)
    for practice_id, secret in network.secrets.items():
        os.environ[env_name(practice_id)] = secret
    if network.notify is not None:
        os.environ[env_name("notify")] = network.notify.api_key
    return network


def cmd_demo(args: argparse.Namespace) -> int:
    if args.load is not None and not args.load.is_dir():
        _print_err(f"--load {args.load}: not a folder")
        return EXIT_USAGE
    if not _qt_libraries_present():
        return EXIT_FAILED
    if not _policy_usable():  # before starting the demo practices: nothing would be allowed to use them
        return EXIT_USAGE
    network = _start_demo_network(args.patients, args.latency_ms, args.load, args.practices)
    print(f"Demo: {network.summary()}", file=sys.stderr)
    from app.core.policy import policy_file
    from app.demo.oidc_provider import demo_browser

    options: dict[str, object] = {"notify": network.notify_settings()}
    _demo_national_files()
    if policy_file() is None:  # no policy on this machine: the demo's own, so that it shows what one does
        from app.core.secrets import env_name
        from app.demo.policy import DEMO_STUDY, demo_policy

        demo = demo_policy(network, args.role)
        os.environ[env_name(f"study-{DEMO_STUDY}")] = demo.study_key
        options["policy"] = demo.policy
        print(demo.describe(), file=sys.stderr)
    try:
        identity = network.identity.settings if network.identity is not None else None  # the demo always has one
        return _run_window_safely(network.practices, identity=identity, open_url=demo_browser, core_options=options)
    finally:
        network.stop()


def _demo_national_files() -> None:
    """The Locality view imports the demo's synthetic GPAD files (~100 other practices, written once into the
    demo's folder when first needed) when its store has no national figures: national context on first open.
    `demo_files` pickles, so the files are written and read in the view's child process, not the window's."""
    from app.core import paths
    from app.ui.locality.national import demo_files
    from app.ui.locality.source import use_national_files

    use_national_files(demo_files(paths.user_data_dir() / "gpad-synthetic"))


def cmd_demo_server(args: argparse.Namespace) -> int:
    if args.load is not None and not args.load.is_dir():
        _print_err(f"--load {args.load}: not a folder")
        return EXIT_USAGE
    from app.demo.network import DemoNetwork
    from app.demo.sizes import gp_connect_indexes

    network = DemoNetwork.start(practices=args.practices, patients=args.patients, latency_ms=args.latency_ms,
                                load_dir=args.load, gp_connect=gp_connect_indexes(args.practices), **DEMO_FEATURES)
    # The populations live until the process ends: take them out of the collector's view, or each full
    # collection (~125 ms at 5 x 20,000) pauses every practice. (`mosaic demo` gets the same from the
    # window, which freezes the heap once it is built.)
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        network.write_config(args.write_config)
        print(f"Demo: {network.summary()}; config written to {args.write_config}", file=sys.stderr, flush=True)
        print("ready", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        network.stop()
    return EXIT_OK


# --- the same core from a terminal ---------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    practices = _load_practices(args)
    if practices is None:
        return EXIT_USAGE
    if not practices:
        _print_err("no practices are configured (see README: Configuration).")
        return EXIT_USAGE
    from app.core.service import MosaicCore
    from app.core.sessions import PracticeStatus

    async def run():
        core = MosaicCore(practices, central_url=args.central_url, notify=args.notify, user=args.acting_user)
        try:
            return await core.sign_in()
        finally:
            await core.close()

    from app.core.audit.journal import JournalError

    try:
        states = asyncio.run(run())
    except JournalError as exc:
        _print_err(str(exc))
        return EXIT_FAILED
    width = max(len(p.id) for p in practices)
    failed = 0
    for state in states:
        p = state.practice
        if state.status is PracticeStatus.ONLINE and state.server:
            s = state.server
            print(f"{p.id:<{width}}  online  {s.round_trip_ms:6.0f} ms  FHIR {s.fhir_version or '?'}  "
                  f"{s.software or 'unknown server'}  {p.base_url}")
        else:
            failed += 1
            print(f"{p.id:<{width}}  FAILED  {state.detail}  ({p.base_url})")
    print(f"{len(states) - failed} of {len(states)} practices online")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from app.core.query import QueryError, parse_query

    try:
        query = parse_query(" ".join(args.query))
    except QueryError as exc:
        _print_err(str(exc))
        return EXIT_USAGE
    practices = _load_practices(args)
    if practices is None:
        return EXIT_USAGE
    from app.core.display import display_name, format_date
    from app.core.nhs_number import format_nhs_number
    from app.core.service import MosaicCore

    def on_result(result) -> None:
        # printed as each practice answers, like the window
        if args.json:
            for patient in result.patients:
                print(json.dumps(_patient_row(patient)), flush=True)
            if result.error:
                print(json.dumps({"practice": result.practice_id, "error": result.error}), flush=True)
            elif result.note:
                print(json.dumps({"practice": result.practice_id, "note": result.note}), flush=True)
            if result.unreadable:
                print(json.dumps({"practice": result.practice_id, "unreadable": result.unreadable,
                                  "warning": result.unreadable_text}), flush=True)
            return
        for p in result.patients:
            born = str(p.birth_year or "") if p.pseudonym else format_date(p.birth_date)
            number = "withheld" if p.pseudonym else format_nhs_number(p.nhs_number)
            print(f"{p.practice_id:<12} {p.local_id:<14} {display_name(p):<32} {born:<12} "
                  f"{number:<13} {p.postcode or ''}", flush=True)
        if result.error:
            print(f"{result.practice_id:<12} ERROR {result.error}", flush=True)
        elif result.note:
            print(f"{result.practice_id:<12} NOTE  {result.note}", flush=True)
        if result.unreadable_text:
            print(f"{result.practice_id:<12} WARN  {result.unreadable_text}.", flush=True)

    async def run():
        core = MosaicCore(practices, central_url=args.central_url, policy=args.policy, notify=args.notify,
                          user=args.acting_user)
        try:
            await core.sign_in()
            return await core.search(query, on_result=on_result)
        finally:
            await core.close()

    from app.core.audit.journal import JournalError
    from app.core.policy import PolicyError

    try:
        outcome = asyncio.run(run())
    except JournalError as exc:
        _print_err(f"nothing was searched: {exc}")
        return EXIT_FAILED
    except PolicyError as exc:
        _print_err(f"access policy: {exc}")
        return EXIT_FAILED
    if not args.json:  # the window's words: practices that could not take the search counted apart
        from app.core.search_summary import SearchTally

        names = {p.id: p.name for p in practices}
        tally = SearchTally()
        for result in outcome.results:
            tally.add(result, names.get(result.practice_id, result.practice_id))
        print(tally.summary(len(outcome.patients), len(outcome.results)), file=sys.stderr)
    return EXIT_FAILED if outcome.failures else EXIT_OK


#: what `mosaic show` needs to be given, by what the access policy says is missing
_CLI_HINTS = {"reason": "--reason TEXT", "break-glass": "--break-glass --reason TEXT"}


def _with_hint(why: str, hint: str | None) -> str:
    """The policy's words with the option that answers them at the end of the first sentence."""
    if not hint:
        return why
    end = why.find(". ")
    return f"{why.rstrip('.')} ({hint})." if end < 0 else f"{why[:end]} ({hint}){why[end:]}"


T = TypeVar("T")


def _run_open(opening: Coroutine[Any, Any, T]) -> T | None:
    """Run an open (one record, or every practice's) to its end: its result, or None once it has said on
    standard error why nothing was opened (the access policy with the option that answers it, a practice,
    the patient, the journal); the caller then exits EXIT_FAILED."""
    from adapters.base import AdapterError
    from app.core.audit.journal import JournalError
    from app.core.audit.recorder import AuditError
    from app.core.policy import PolicyError
    from app.core.service import PatientNotFound

    try:
        return asyncio.run(opening)
    except PolicyError as exc:
        message = _with_hint(str(exc), _CLI_HINTS.get(exc.needs))
        _print_err(f"access policy: {message}")
        if exc.reasons and exc.needs in ("reason", "break-glass") and not all(r in message for r in exc.reasons):
            print("Reasons offered: " + "; ".join(exc.reasons) + " (or your own words)", file=sys.stderr)
    except (AdapterError, PatientNotFound, AuditError, JournalError) as exc:
        _print_err(str(exc))
    return None


def cmd_show(args: argparse.Namespace) -> int:
    practices = _load_practices(args)
    if practices is None:
        return EXIT_USAGE
    if args.all_practices:  # one patient at every practice, in one timeline (app/cli/all_practices.py)
        from app.cli.all_practices import run as show_all_practices

        return show_all_practices(args, practices)
    if args.patient is None:
        _print_err("show needs a practice and a patient: mosaic show PRACTICE PATIENT "
                   "(or mosaic show --all-practices NHS_NUMBER)")
        return EXIT_USAGE
    if args.practice not in {p.id for p in practices}:
        _print_err(f"no practice '{args.practice}' is configured (configured: "
                   f"{', '.join(p.id for p in practices) or 'none'})")
        return EXIT_USAGE
    from adapters.base import AdapterError
    from app.core.service import MosaicCore
    from app.core.sessions import PracticeStatus

    if args.break_glass and not (args.reason or "").strip():
        _print_err("--break-glass needs a written reason: add --reason TEXT")
        return EXIT_USAGE
    criteria = None
    if args.criteria is not None:
        from app.core.query import QueryError, parse_criteria

        try:
            criteria = parse_criteria(args.criteria)
        except QueryError as exc:
            _print_err(f"--criteria: {exc}")
            return EXIT_USAGE

    async def run():
        core = MosaicCore(practices, central_url=args.central_url, policy=args.policy, notify=args.notify,
                          user=args.acting_user)
        try:
            state = await core.retry(args.practice)
            if state.status is not PracticeStatus.ONLINE:
                raise AdapterError(state.detail, "network")
            if criteria is not None:  # the research view opens only what its own search handed out
                await core.search(dataclasses.replace(criteria, practices=(args.practice,)))
            local_id = await core.resolve_patient(args.practice, args.patient)
            record = await core.open_record(args.practice, local_id, purpose=args.reason,
                                            break_glass=args.break_glass)
            await core.flush_outbox(timeout_s=5)  # what does not go now waits in the journal's outbox
            return record
        finally:
            await core.close()

    record = _run_open(run())
    if record is None:
        return EXIT_FAILED
    if args.json:
        from app.core.serialise import record_json

        data = record_json(record)
        data["patient"] = _patient_row(record.patient)
        if record.patient.pseudonym:
            data["research_consent"] = record.research_consent
        print(json.dumps(data, indent=2))
    else:
        from app.cli.render import render_record

        print(render_record(record, next(p for p in practices if p.id == args.practice)))
    return EXIT_FAILED if any(s.status == "failed" for s in record.sections.values()) else EXIT_OK


def _patient_row(patient) -> dict:
    """search/show --json's patient object; in the research view also the pseudonym and year of birth."""
    from app.core.serialise import patient_json

    row = patient_json(patient)
    if patient.pseudonym:
        row.update(pseudonym=patient.pseudonym, birth_year=patient.birth_year)
    return row


def cmd_audit(args: argparse.Namespace) -> int:
    from app.cli.audit import run

    return run(args, lambda: _load_practices(args))


def cmd_insight(args: argparse.Namespace) -> int:
    from app.cli.insight import run

    return run(args, _load_practices)


def cmd_doctor(args: argparse.Namespace) -> int:
    from app.cli.doctor import run

    return run(args)


def cmd_notify(args: argparse.Namespace) -> int:
    from app.cli.notify import run

    return run(args)


def cmd_config(args: argparse.Namespace) -> int:
    from app.cli.config import run

    return run(args)


def cmd_credentials(args: argparse.Namespace) -> int:
    from app.core.secrets import SecretError, store_secret

    practices = _load_practices(args)
    if practices is None:
        return EXIT_USAGE
    studies = {f"study-{s}" for s in args.policy.studies} if args.policy is not None else set()
    if args.practice not in {p.id for p in practices} | {"central", "notify"} | studies:
        _print_err(f"no practice '{args.practice}' is configured ('central' is the central audit store's "
                   "password, 'notify' the GOV.UK Notify API key, 'study-<id>' a research study's pseudonym "
                   "key for a study in the access policy)")
        return EXIT_USAGE
    try:
        if args.action == "set":
            if not sys.stdin.isatty():
                _print_err("credentials set needs a terminal to prompt for the secret "
                           "(secrets are never taken from arguments).")
                return EXIT_USAGE
            secret = getpass.getpass(f"Secret for {args.practice}: ")
            if not secret:
                _print_err("nothing entered; nothing stored")
                return EXIT_USAGE
            store_secret(args.practice, secret)
            print(f"Stored the secret for {args.practice} in the OS keyring.")
        else:
            import keyring

            try:
                keyring.delete_password("mosaic", args.practice)
            except keyring.errors.PasswordDeleteError:
                print(f"No secret was stored for {args.practice}.")
                return EXIT_OK
            print(f"Removed the secret for {args.practice}.")
    except SecretError as exc:
        _print_err(str(exc))
        return EXIT_FAILED
    return EXIT_OK
