"""`mosaic insight …`: the locality's activity, capacity and demand from a terminal (issue 13).

    mosaic insight refresh [--full] [--period YYYY-MM[..YYYY-MM]]
    mosaic insight show --metric NAME --by practice|mode|clinician-type|category|week|month [--period …] [--json|--csv]
    mosaic insight peers PRACTICE --metric NAME [--period …]
    mosaic insight export --parquet DIR
    mosaic insight import-gpad FILE…

Every command goes through MosaicCore: the access policy decides (a role needs `insight = true`), and the action
is journaled (who, what, when) before any figure is read or printed. Unattended: no prompt, no browser (with
[identity] configured the dispatcher signs the person in first, as for search). Exit 0; 1 when a practice failed,
the policy refused or the journal could not be written; 2 for usage or configuration errors.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.service import MosaicCore
    from app.insight.measures import Figure

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CUTS = ("practice", "mode", "clinician-type", "category", "week", "month")
GROUP_CUTS = frozenset({"mode", "clinician-type", "category"})
#: a refresh with no --period reads this many months, ending with the current one
DEFAULT_REFRESH_MONTHS = 24
PERIOD_FORMAT = "YYYY-MM or YYYY-MM..YYYY-MM (e.g. 2026-03, or 2025-04..2026-03)"
_MONTH = re.compile(r"(\d{4})-(\d{2})")
#: the years a --period may name (year 9999's last month has no month after it: a traceback, not a sentence)
FIRST_YEAR, LAST_YEAR = 1900, 2199
#: the longest --period range: a figure is a grouped sum a month, so a range of centuries is thousands of them
MAX_PERIOD_MONTHS = 120


class UsageError(Exception):
    """A command line Mosaic cannot act on: the message says what to write instead (exit 2)."""


@dataclass(frozen=True)
class Period:
    start: date  # the first day of the first month
    end: date  # the last day of the last month
    text: str  # "2026-03" or "2025-04..2026-03", as the store and the journal name it


def parse_period(text: str) -> Period:
    """--period: one month, or a range of months (inclusive)."""
    parts = text.strip().split("..")
    if len(parts) > 2 or not all(_MONTH.fullmatch(p) for p in parts):
        raise UsageError(f"--period must be {PERIOD_FORMAT}, not '{text}'")
    months = [_month(p, text) for p in parts]
    first, last = months[0], months[-1]
    if last < first:
        raise UsageError(f"--period {text}: the range ends before it starts (write {PERIOD_FORMAT})")
    if (last.year - first.year) * 12 + last.month - first.month >= MAX_PERIOD_MONTHS:
        raise UsageError(f"--period {text}: a range may span at most {MAX_PERIOD_MONTHS} months")
    return Period(first, _month_end(last), f"{first:%Y-%m}" if first == last else f"{first:%Y-%m}..{last:%Y-%m}")


def default_refresh_period(today: date | None = None) -> Period:
    """The last DEFAULT_REFRESH_MONTHS months, this one included."""
    today = today or date.today()
    index = today.year * 12 + today.month - 1 - (DEFAULT_REFRESH_MONTHS - 1)
    first = date(index // 12, index % 12 + 1, 1)
    return Period(first, _month_end(today), f"{first:%Y-%m}..{today:%Y-%m}")


def _month(part: str, text: str) -> date:
    found = _MONTH.fullmatch(part)
    assert found is not None
    year, month = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12 or not FIRST_YEAR <= year <= LAST_YEAR:
        raise UsageError(f"--period {text}: '{part}' is not a month (write {PERIOD_FORMAT})")
    return date(year, month, 1)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def add_parser(sub: argparse._SubParsersAction) -> None:
    insight = sub.add_parser("insight", help="locality insight: activity, capacity and demand across the practices")
    verbs = insight.add_subparsers(dest="insight_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                       help="practice directory file (replaces machine and user files)")

    refresh = verbs.add_parser("refresh", help="read every practice's appointment book into the insight store")
    common(refresh)
    refresh.add_argument("--full", action="store_true", help="read the whole period again, not only what changed")
    refresh.add_argument("--period", metavar="YYYY-MM[..YYYY-MM]",
                         help=f"the months to read (default: the last {DEFAULT_REFRESH_MONTHS}, this one included)")
    show = verbs.add_parser("show", help="one measure, cut one way, for a period")
    common(show)
    show.add_argument("--metric", required=True, metavar="NAME", help="appointments, dna_rate, utilisation, …")
    show.add_argument("--by", choices=CUTS, default="practice", help="the cut (default practice)")
    show.add_argument("--period", metavar="YYYY-MM[..YYYY-MM]", help="the months (default: all that are stored)")
    show.add_argument("--practice", action="append", default=[], metavar="ID",
                      help="only this practice (repeat for more; default: every practice your role covers)")
    output = show.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--csv", action="store_true", help="CSV with a header row")
    peers = verbs.add_parser("peers", help="a practice against its peers: funnel position and national decile")
    common(peers)
    peers.add_argument("practice", metavar="PRACTICE", help="practice id")
    peers.add_argument("--metric", required=True, metavar="NAME")
    peers.add_argument("--period", metavar="YYYY-MM[..YYYY-MM]", help="the months (default: all that are stored)")
    peers.add_argument("--json", action="store_true", help="one JSON object")
    export = verbs.add_parser("export", help="write the insight store's aggregates as Parquet files")
    common(export)
    export.add_argument("--parquet", type=Path, required=True, metavar="DIR", help="folder to write the files to")
    quality = verbs.add_parser("quality", help="each practice's data quality, and local slot types mapped to "
                                               "different national categories")
    common(quality)
    quality.add_argument("--period", metavar="YYYY-MM[..YYYY-MM]", help="the months (default: all that are stored)")
    quality.add_argument("--json", action="store_true", help="one JSON object per line")
    gpad = verbs.add_parser("import-gpad", help="import NHS England's practice-level GPAD CSV files (national "
                                                "context for peers)")
    common(gpad)
    gpad.add_argument("files", nargs="+", type=Path, metavar="FILE")


def run(args: argparse.Namespace, load_practices: Callable[[argparse.Namespace], Any]) -> int:
    """The `insight` command: checked, then run on the core; every failure a sentence and an exit status."""
    try:
        action = _prepare(args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    practices = load_practices(args)
    if practices is None:
        return EXIT_USAGE
    from app.core.config import ConfigError
    from app.insight.location import InsightLocationError, store_target

    try:
        target = store_target(args.config)
    except (ConfigError, InsightLocationError) as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    return _run_on_core(args, practices, target, action)


Action = Callable[["MosaicCore", Any, argparse.Namespace], Any]


def _prepare(args: argparse.Namespace) -> Action:
    """Check what can be checked before anything is opened: the metric, the period, the files."""
    command = args.insight_command
    if getattr(args, "metric", None) is not None:
        _check_metric(args.metric)
    period = getattr(args, "period", None)
    args.parsed_period = parse_period(period) if period else None
    if command == "peers" and args.parsed_period is not None and ".." in args.parsed_period.text:
        raise UsageError(f"peers places a practice in one month: give --period YYYY-MM, not {period}")
    if command == "import-gpad":
        missing = [str(f) for f in args.files if not f.is_file()]
        if missing:
            raise UsageError(f"import-gpad: no such file: {', '.join(missing)}")
    actions: dict[str, Action] = {"refresh": _refresh, "show": _show, "peers": _peers, "export": _export,
                                  "import-gpad": _import_gpad, "quality": _quality}
    return actions[command]


def _check_metric(name: str) -> None:
    from app.insight.measures import MEASURES

    if name not in MEASURES:
        raise UsageError(f"unknown metric '{name}' (known: {', '.join(MEASURES)})")


def _run_on_core(args: argparse.Namespace, practices: list, target: Any, action: Action) -> int:
    from adapters.base import AdapterError
    from app.core.audit.journal import JournalError
    from app.core.audit.recorder import AuditError
    from app.core.insight_access import require_insight
    from app.core.policy import PolicyError
    from app.core.service import MosaicCore

    async def main() -> int:
        core = MosaicCore(practices, central_url=args.central_url, policy=args.policy, notify=None,
                          user=args.acting_user, health_interval_s=None)
        store = None
        try:
            if args.central_url:
                await core.start_outbox()  # the insight entries go to the central store (a refusal's too)
            try:  # PolicyError, journaled as denied, before the store is opened or anything asked
                await require_insight(core, attempted(args))
            except PolicyError:
                await core.flush_outbox()
                raise
            store = await asyncio.to_thread(_open_store, target)
            status: int = await action(core, store, args)
            await core.flush_outbox()
            return status
        finally:
            if store is not None:
                await asyncio.to_thread(store.close)
            await core.close()

    try:
        return asyncio.run(main())
    except PolicyError as exc:
        return _fail(f"access policy: {exc}", EXIT_FAILED)
    except (JournalError, AuditError) as exc:
        return _fail(f"nothing was shown: {exc}", EXIT_FAILED)
    except (AdapterError, _StoreError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)


class _StoreError(Exception):
    pass


def attempted(args: argparse.Namespace) -> Any:
    """What a command asked for, as its journal entry names it (a refused one's too)."""
    from app.core.insight_access import InsightQuery

    period = getattr(args, "parsed_period", None)
    wanted = getattr(args, "practice", None)
    practices = tuple(wanted) if isinstance(wanted, list) else (wanted,) if isinstance(wanted, str) else ()
    return InsightQuery(args.insight_command, metric=getattr(args, "metric", None), by=getattr(args, "by", None),
                        period=period.text if period is not None else None, practices=practices,
                        extra={"face": "cli"})


def _open_store(target: Any) -> Any:
    from app.insight.location import describe
    from app.insight.store import InsightStore

    try:
        return InsightStore.open(target)
    except Exception as exc:  # duckdb / psycopg errors: named with where the store is, never a traceback
        raise _StoreError(f"the insight store {describe(target)} cannot be opened: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}") from None


# --- the commands ---------------------------------------------------------------------------------------------

async def _refresh(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    period = args.parsed_period or default_refresh_period()

    def progress(done: Any) -> None:
        words = {"ok": f"ok ({done.appointments:,} appointments, {done.slots:,} slots"
                       f"{', only what changed' if done.incremental else ''})",
                 "not provided": "not provided by this practice's system",
                 "failed": f"FAILED  {done.error}"}
        print(f"{done.practice_id:<12}  {words.get(done.status, done.status)}  {done.seconds:.1f} s", flush=True)

    report = await core.refresh_insight(store, start=period.start, end=period.end, full=args.full,
                                        on_progress=progress)
    print(f"{report.summary()} ({period.text}, {report.seconds:.1f} s)", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


async def _show(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    from app.core.insight_access import InsightQuery

    ids = await _practices(core, args, args.practice)
    period = await _period_shown(store, args)
    await core.journal_insight(InsightQuery("show", metric=args.metric, by=args.by, period=period, practices=ids,
                                            extra={"output": "json" if args.json else "csv" if args.csv else
                                                   "text"}))
    figures = await asyncio.to_thread(store.figures, args.metric, args.by, period, practices=ids)
    names = {p.id: p.name for p in core.practices}
    if args.json:
        for figure in figures:
            print(json.dumps(figure_row(figure, args.by)), flush=True)
    elif args.csv:
        _write_csv(figures, args.by)
    else:
        _print_table(figures, args.metric, args.by, names)
    return EXIT_FAILED if any(f.status == "failed" for f in figures) else EXIT_OK


def figure_row(figure: Figure, by: str) -> dict[str, Any]:
    """A figure as `show --json` prints it: exactly practice, metric, period, value, numerator, denominator,
    suppressed, status (+ error when failed; + group, the cut's value, when cut by mode, clinician type or
    category: without it those rows could not be told apart)."""
    row: dict[str, Any] = {"practice": figure.practice_id, "metric": figure.metric, "period": figure.period}
    if by in GROUP_CUTS:
        row["group"] = figure.group
    row.update({"value": figure.value, "numerator": figure.numerator, "denominator": figure.denominator,
                "suppressed": figure.suppressed, "status": figure.status})
    if figure.status == "failed":
        row["error"] = figure.error
    return row


def _write_csv(figures: Sequence[Figure], by: str) -> None:
    columns = ["practice", "metric", "period", *(["group"] if by in GROUP_CUTS else []), "value", "numerator",
               "denominator", "suppressed", "status", "error"]
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for figure in figures:
        row = figure_row(figure, by)
        row.setdefault("error", "")
        row["suppressed"] = "true" if figure.suppressed else "false"
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _print_table(figures: Sequence[Figure], metric: str, by: str, names: dict[str, str]) -> None:
    from app.insight.measures import MEASURES

    measure = MEASURES[metric]
    print(f"{measure.title}: {measure.definition}")
    for figure in figures:
        who = names.get(figure.practice_id or "", figure.practice_id) if figure.practice_id else "Locality"
        cut = f"  {figure.group}" if figure.group else ""
        print(f"{who:<28} {figure.period:<18}{cut:<16} {shown_value(figure, measure.unit)}")


def shown_value(figure: Figure, unit: str) -> str:
    """A figure as words: never a zero for "not provided" or "failed", "<5" for a suppressed count."""
    if figure.status == "not provided":
        return "not provided by this practice's system"
    if figure.status == "failed":
        return f"failed: {figure.error or 'no reason given'}"
    if figure.suppressed:  # "<5" for a count of 1-4; "suppressed" for one hidden so a total cannot reveal it
        return "<5" if getattr(figure, "suppression", "primary") == "primary" else "suppressed"
    if figure.value is None:
        return "no data"
    value = f"{figure.value:,.2f}".rstrip("0").rstrip(".")  # a share is 0..100 already
    parts = f" ({figure.numerator:,.0f} / {figure.denominator:,.0f})" if figure.numerator is not None \
        and figure.denominator else ""
    return f"{value}{' %' if unit == '%' else '' if unit == 'count' else ' ' + unit}{parts}"


async def _peers(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    from app.core.insight_access import InsightQuery
    from app.insight.peer_report import peer_report

    await _practices(core, args, [args.practice])  # PolicyError (journaled as denied), or not configured
    period = await _period_shown(store, args)
    await core.journal_insight(InsightQuery("peers", metric=args.metric, period=period, practices=(args.practice,)))
    ids = tuple(p.id for p in core.insight_practices())
    try:
        report = await asyncio.to_thread(peer_report, store, args.practice, args.metric, period, ids)
    except ValueError as exc:  # a range or a week: peers place a practice in one month
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        for line in report.lines():
            print(line)
    return EXIT_OK


async def _export(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    import duckdb  # the export writes through DuckDB whatever the store's engine

    from app.core.insight_access import InsightQuery

    ids = tuple(p.id for p in core.insight_practices())
    folder: Path = args.parquet
    query = InsightQuery("export", practices=ids, extra={"format": "parquet", "folder": str(folder)})
    await core.journal_insight(query)
    # a role's export holds its practices alone (the practices table, every figure, the locality's sums), however
    # many the store holds
    chosen = ids if core.policy is not None else None
    try:
        written = await asyncio.to_thread(store.export_parquet, folder, chosen)
    except (OSError, duckdb.Error) as exc:
        raise _StoreError(f"the Parquet files could not be written to {folder}: {exc}") from exc
    for path in written:
        print(path)
    print(f"{len(written)} Parquet file(s) written to {folder}", file=sys.stderr)
    return EXIT_OK


async def _import_gpad(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    from app.core.insight_access import InsightQuery
    from app.insight.gpad import import_gpad

    files = [str(f) for f in args.files]
    await core.journal_insight(InsightQuery("import-gpad", extra={"files": files}))
    try:
        report = await asyncio.to_thread(import_gpad, store, args.files)
    except ValueError as exc:  # UnreadableFile: not a GPAD file; named, nothing replaced
        raise UsageError(f"import-gpad: {exc}") from None
    for line in report.lines():
        print(line)
    return EXIT_OK


async def _quality(core: MosaicCore, store: Any, args: argparse.Namespace) -> int:
    """Each practice's data-quality badge, then the mapping check: the same local slot type mapped to different
    national categories (what makes practices' figures incomparable). Counts from 1 to 4 read "<5", and a local
    type's text is shown only as app/insight/shown_quality.py allows: no patient."""
    from app.core.insight_access import InsightQuery
    from app.insight.shown_quality import count_text, shown_mapping, shown_quality

    ids = tuple(p.id for p in core.insight_practices())
    period = args.parsed_period.text if args.parsed_period is not None else None
    await core.journal_insight(InsightQuery("quality", period=period, practices=ids))
    rows = [shown_quality(r) for r in await asyncio.to_thread(store.quality, period) if r.practice_id in ids]
    issues, rare = shown_mapping(await asyncio.to_thread(store.mapping_consistency), ids)
    if args.json:
        for r in rows:
            print(json.dumps(r.as_json()))
        for issue in issues:
            print(json.dumps({"local_type": issue.local_type, "mapped_to": [
                {"practice": u.practice_id, "category": u.category, "slots": u.slots} for u in issue.uses]}))
        if rare:
            print(json.dumps({"unnamed_local_types": rare}))
        return EXIT_OK

    def share(row: Any, name: str) -> str:
        value = row.shares[name]
        return "<5" if name in row.suppressed else "-" if value is None else f"{value * 100:.1f} %"

    print(f"{'practice':<12}  {'status':<13} {'appointments':>12}  unmapped: category  mode  clinician   "
          "no status  no booking time  unreadable")
    for r in rows:
        appointments = count_text(r.appointments) if r.appointments is not None else "<5"
        print(f"{r.practice_id:<12}  {r.status:<13} {appointments:>12}  {share(r, 'unmapped_category'):>18} "
              f"{share(r, 'unmapped_mode'):>5} "
              f"{share(r, 'unmapped_clinician_type'):>10}  {share(r, 'missing_status'):>9} "
              f"{share(r, 'missing_created'):>16}  {r.unreadable if r.unreadable is not None else '<5':>10}"
              + (f"  not provided: {', '.join(r.not_provided)}" if r.not_provided else ""))
    if issues:
        print("\nThe same local slot type mapped to different national categories:")
        for issue in issues:
            print(f"  \"{issue.local_type}\": " + "; ".join(
                f"{u.practice_id} -> {u.category or 'unmapped'} ({u.slots} slots)" for u in issue.uses))
    else:
        print("\nEvery local slot type is mapped to one national category.")
    if rare:
        print(f"({rare} local type(s) used for fewer than 5 slots are not named: a one-off text may be a note about "
              "a patient.)")
    return EXIT_OK


async def _period_shown(store: Any, args: argparse.Namespace) -> str:
    """The period the figures will be for, as the journal records it: --period, else the latest whole month with
    appointments, as the Locality view opens on (app/insight/periods.py `default_month`)."""
    from app.insight.periods import default_month

    if args.parsed_period is not None:
        return str(args.parsed_period.text)
    return default_month(await asyncio.to_thread(store.latest_month))


async def _practices(core: MosaicCore, args: argparse.Namespace, wanted: Sequence[str]) -> tuple[str, ...]:
    """The practices asked for, each one the role covers: PolicyError, journaled as denied, for one it does not;
    UsageError for one not configured."""
    from app.core.insight_access import checked_insight_practices

    try:
        return await checked_insight_practices(core, attempted(args), wanted)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _fail(message: str, status: int) -> int:
    print(f"mosaic: {message}", file=sys.stderr)
    return status
