"""The Locality view's side of the core: every query journaled, then read from the insight store, off the GUI thread.

Everything here runs on the core's loop (submitted through the bridge); the store's work runs in a worker thread
(`asyncio.to_thread`), one call at a time (a DuckDB connection is not shared by threads). As in `mosaic insight`
(app/cli/insight.py), a query is committed to the journal (MosaicCore.journal_insight) before any figure of it is
read, so no figure reaches the screen unrecorded; a role without insight is refused (PolicyError) and journaled
as denied. No Qt here: the answers are plain data the window draws.
"""

from __future__ import annotations

import asyncio
import gc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.insight_access import InsightQuery
from app.insight.measures import MEASURES, Figure
from app.insight.national_model import NationalFigure, PracticeAttributes
from app.insight.peer_report import FUNNEL_KINDS, PeerReport, peer_report
from app.insight.peers import DEFAULT_WEIGHTS, deciles, funnel_limits, similar_practices
from app.insight.periods import default_month, months_back
from app.insight.store_rows import PracticeStatusRow, QualityRow

if TYPE_CHECKING:
    from app.core.service import MosaicCore
    from app.insight.gpad import ImportReport
    from app.insight.refresh import PracticeRefresh, RefreshReport
    from app.insight.store import InsightStore

#: how many months a refresh reads, ending with this one (the demo publishes two years)
REFRESH_MONTHS = 24
#: the cuts the view offers (the store's names)
VIEW_CUTS = ("practice", "mode", "clinician-type", "category")
#: national files to import when the store has none (set by `mosaic demo`: its synthetic GPAD files)
NationalFiles = Callable[[], Sequence[Path]]
_national_files: NationalFiles | None = None


def use_national_files(source: NationalFiles | None) -> None:
    """Name where national (GPAD) files come from when the store has none yet: `mosaic demo` gives its
    synthetic files, so the Locality view has national context on first open. None: nothing is imported."""
    global _national_files
    _national_files = source


@dataclass(frozen=True)
class ViewQuery:
    """What the user asked the view for."""

    metric: str
    cut: str  # one of VIEW_CUTS
    period: str  # "2026-03", "2026-W10" or "2025-12..2026-11"
    practice: str | None = None  # zoomed to one practice; None = the locality
    filters: Mapping[str, str] = field(default_factory=dict)  # {"mode": "telephone", ...}
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @property
    def grain(self) -> str:
        return "week" if "-W" in self.period else "range" if ".." in self.period else "month"


@dataclass(frozen=True)
class FunnelPoint:
    practice_id: str
    name: str
    denominator: float
    value: float


@dataclass(frozen=True)
class Funnel:
    """A funnel plot: practices (value against denominator) and the 95 % / 99.8 % limits around the target."""

    target: float
    target_from: str  # "national" | "locality"
    points: tuple[FunnelPoint, ...]
    #: (denominator, lower 99.8, lower 95, upper 95, upper 99.8) along the x axis
    limits: tuple[tuple[float, float, float, float, float], ...]
    denominator_words: str


@dataclass(frozen=True)
class National:
    """The nation's practices for this measure and month (GPAD): the nine decile cut points."""

    month: str
    practices: int
    cuts: tuple[float, ...]


@dataclass(frozen=True)
class Similar:
    code: str
    name: str
    distance: float
    value: float | None  # its national figure for this measure and month, None when GPAD has none
    list_size: int


@dataclass(frozen=True)
class Answer:
    """Everything one query shows, in the measure's unit."""

    query: ViewQuery
    figures: tuple[Figure, ...]
    series: tuple[Figure, ...]
    series_period: str
    names: Mapping[str, str]
    practices: tuple[PracticeStatusRow, ...]
    quality: tuple[QualityRow, ...]
    categories: tuple[str, ...]
    national: National | None = None
    funnel: Funnel | None = None
    peer: PeerReport | None = None
    similar: tuple[Similar, ...] = ()
    similar_note: str | None = None
    journaled_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Overview:
    """What the view needs before its first query: the practices' state and the months there are."""

    practices: tuple[PracticeStatusRow, ...]
    latest_month: str | None
    months: tuple[str, ...]  # newest first
    national_months: int
    categories: tuple[str, ...] = ()  # national categories seen in the latest month (the filter's list)


class LocalitySource:
    """The insight store as the Locality window uses it (one per window; close() when the window goes)."""

    def __init__(self, target: str | Path | None = None) -> None:
        self._target = target
        self._store: InsightStore | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> InsightStore:
        if self._store is None:
            from app.insight.location import store_target
            from app.insight.store import InsightStore

            target = self._target if self._target is not None else store_target(None)
            self._store = await asyncio.to_thread(InsightStore.open, target)
        return self._store

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            store = await self._open()
            return await asyncio.to_thread(fn, store, *args, **kwargs)

    async def close(self) -> None:
        async with self._lock:
            if self._store is not None:
                store, self._store = self._store, None
                await asyncio.to_thread(store.close)

    # --- what there is ------------------------------------------------------------------------------

    async def overview(self, core: MosaicCore) -> Overview:
        """The practices' state and the months there are: only the practices the role covers (a shared store,
        or the user's own from before the role was narrowed, may hold others)."""
        from app.core.insight_access import require_insight

        # PolicyError for a role without insight, journaled as denied, before the store is opened
        ids = [p.id for p in await require_insight(core, InsightQuery("view", extra={"face": "window"}))]

        def read(store: InsightStore) -> Overview:
            latest = store.latest_month()
            last = date.today()
            national = len({n.month for n in store.national("dna_rate")})
            month = default_month(latest)
            categories = tuple(sorted({f.group for f in store.figures("appointments", "category", month,
                                                                      practices=ids) if f.group})) if latest else ()
            return Overview(_covered(store.practices(), ids), latest, tuple(months_back(last, REFRESH_MONTHS)),
                            national, categories)

        result: Overview = await self._run(read)
        return result

    # --- refreshing ---------------------------------------------------------------------------------

    async def refresh(self, core: MosaicCore, on_progress: Callable[[PracticeRefresh], None] | None = None,
                      today: date | None = None) -> RefreshReport:
        """Every practice's appointment book into the store (journaled by the core), then the national files
        when the store has none and a source is named (`use_national_files`), journaled as an import.

        The cyclic collector is paused throughout, as the FHIR adapter pauses it for each practice's read (whose
        pause this one shares): each read's own pause ended as the read did, and the young collection that followed
        walked everything the reads and the demo's in-process books had made meanwhile, 40-55 ms of every thread
        between practices, and the national files' import made gen-2 passes of 50-90 ms (bench_locality --why). A
        refresh makes no reference cycles to speak of. After the process's first refresh what it brought in is taken
        out of the collector's sight for good (`settle_after_first_refresh`)."""
        from adapters.fhir_r4.activity import collector_paused
        from app.core.insight_access import require_insight

        today = today or date.today()
        first = date.fromisoformat(months_back(today, REFRESH_MONTHS)[-1] + "-01")
        await require_insight(core, InsightQuery("refresh", extra={"face": "window"}))  # refused: journaled
        with collector_paused():
            try:
                store = await self._open()
                async with self._lock:
                    report = await core.refresh_insight(store, start=first, end=today, on_progress=on_progress)
                await self._import_national(core)
            finally:
                settle_after_first_refresh()
        return report

    async def _import_national(self, core: MosaicCore) -> None:
        source = _national_files
        if source is None:
            return
        has: bool = await self._run(lambda store: bool(store.national("dna_rate")))
        if has:
            return
        from app.ui.locality.national import NationalRead

        reading = await asyncio.to_thread(NationalRead, source)
        try:
            files = await asyncio.to_thread(reading.files)
            await core.journal_insight(InsightQuery("import-gpad", extra={"files": files}))
            figures, report = await asyncio.to_thread(reading.result)
        finally:
            await asyncio.to_thread(reading.close)
        await self._run(store_national, figures, report)

    # --- one query ----------------------------------------------------------------------------------

    async def load(self, core: MosaicCore, query: ViewQuery) -> Answer:
        """Journal `query`, then read what it shows (PolicyError, AuditError: nothing is read)."""
        from app.core.insight_access import checked_insight_practices

        # refused (no insight, or a practice outside the role): journaled as a denied insight query, then PolicyError
        ids = await checked_insight_practices(core, InsightQuery("view", metric=query.metric, by=query.cut,
                                                                 period=query.period, extra={"face": "window"}),
                                              [query.practice] if query.practice else [])
        scope = (query.practice,) if query.practice else ids
        series_period = _series_period(query.period)
        peers = query.practice is not None and query.grain == "month"
        extra: dict[str, object] = {"face": "window", "series": series_period}
        if query.filters:
            extra["filters"] = dict(query.filters)
        await core.journal_insight(InsightQuery("view", metric=query.metric, by=query.cut, period=query.period,
                                                practices=scope, extra=extra))
        if peers:
            await core.journal_insight(InsightQuery("peers", metric=query.metric, period=query.period,
                                                    practices=scope, extra={"face": "window",
                                                                            "weights": dict(query.weights)}))
        odses = {p.id: p.ods_code for p in core.practices}
        names = {p.id: p.name for p in core.practices}
        covered = tuple(p.id for p in core.insight_practices())
        answer: Answer = await self._run(_read, query, ids, scope, series_period, peers, odses, names, covered)
        return answer


def store_national(store: InsightStore, figures: list[NationalFigure], report: ImportReport) -> ImportReport:
    """What `import_gpad` does with what it read: the store's national figures and attributes replaced."""
    report.figures_stored = store.replace_national(figures)
    if report.attributes:
        report.attributes_stored = store.replace_attributes(report.attributes)
    return report


_settled = [False]


def settle_after_first_refresh() -> None:
    """Inside the process's first refresh's pause: what it brought in (the store's and the adapters' libraries,
    an in-process demo's appointment books) lives as long as the process, so it is taken out of the collector's
    sight (`gc.freeze`, which walks nothing) rather than collected (a young pass over all of it was 40-55 ms of
    the GUI thread, and left in sight every later full pass walked it: 100-130 ms while charts drew). The
    little cyclic garbage it made is kept with it, once. Later refreshes are collected as usual after the pause."""
    if _settled[0]:
        return
    _settled[0] = True
    gc.freeze()


def _covered(rows: Sequence[PracticeStatusRow], ids: Sequence[str]) -> tuple[PracticeStatusRow, ...]:
    """The store's practice rows the role covers: another practice's name, state and error are not the user's."""
    return tuple(row for row in rows if row.id in ids)


def _series_period(period: str) -> str:
    """The time series beside a figure: the 12 months to a month, the 13 weeks to a week, or the range itself."""
    if ".." in period:
        return period
    if "-W" in period:
        from app.insight.periods import parse_period

        monday = parse_period(period).first
        months = months_back(monday, 3)
        return f"{months[-1]}..{months[0]}"
    year, month = (int(part) for part in period.split("-"))
    months = months_back(date(year, month, 1), 12)
    return f"{months[-1]}..{months[0]}"


def _read(store: InsightStore, query: ViewQuery, ids: tuple[str, ...], scope: tuple[str, ...], series_period: str,
          peers: bool, odses: Mapping[str, str], names: Mapping[str, str], covered: Sequence[str]) -> Answer:
    """The store's side of one query (a worker thread): figures, the series, quality and the peer comparison."""
    filters = {k: v for k, v in query.filters.items() if k != query.cut}
    figures = store.figures(query.metric, query.cut, query.period, practices=list(scope), filters=filters)
    series_by = "week" if query.grain == "week" else "month"
    # one figure a week or month (its period is the unit); a practice's "not provided" or "failed" figure for the
    # whole span is left out here (the quality badge and the figures name it)
    series = [f for f in store.figures(query.metric, series_by, series_period, practices=list(scope),
                                       filters=filters) if f.period != series_period and f.status == "ok"]
    month = query.period if query.grain == "month" else None
    quality = [row for row in store.quality(query.period) if row.practice_id in covered]
    # the categories seen, for the filter's list: from this answer when it is cut by category (a query of its own
    # over a year costs ~200 ms; the overview gives the list once)
    categories = tuple(f.group for f in figures if f.group) if query.cut == "category" else ()
    national = _national(store, query.metric, month)
    funnel = None
    if query.cut == "practice" and query.practice is None:
        funnel = _funnel(store, query, figures, names, national)
    answer = Answer(query, tuple(figures), tuple(series), series_period, dict(names),
                    _covered(store.practices(), covered), tuple(quality), categories, national, funnel)
    if peers and query.practice is not None and month is not None:
        report = peer_report(store, query.practice, query.metric, month, ids)
        similar, note = _similar(store, query, odses, month)
        from dataclasses import replace

        answer = replace(answer, peer=report, similar=tuple(similar), similar_note=note)
    return answer


def national_value(figure: NationalFigure) -> float | None:
    """A national figure in the measure's unit (a share as %, a rate per 1,000)."""
    unit = MEASURES[figure.metric].unit if figure.metric in MEASURES else "count"
    if figure.denominator is None:
        return figure.numerator
    if not figure.denominator:
        return None
    share = figure.numerator / figure.denominator
    return share * 100.0 if unit == "%" else share * 1000.0 if unit == "per 1,000 patients" else share


def _national(store: InsightStore, metric: str, month: str | None) -> National | None:
    if month is None or MEASURES[metric].unit == "count":
        return None  # a count depends on the practice's size: deciles of it compare nothing
    rows = [n for n in store.national(metric, date.fromisoformat(month + "-01")) if n.group is None]
    values = [v for n in rows if (v := national_value(n)) is not None]
    if len(values) < 2:
        return None
    return National(month, len(values), tuple(deciles(values)))


def _funnel(store: InsightStore, query: ViewQuery, figures: Sequence[Figure], names: Mapping[str, str],
            national: National | None) -> Funnel | None:
    measure = MEASURES[query.metric]
    kind = FUNNEL_KINDS.get(measure.unit)
    if kind is None:
        return None
    points = tuple(FunnelPoint(f.practice_id, names.get(f.practice_id, f.practice_id), f.denominator, f.value)
                   for f in figures if f.status == "ok" and not f.suppressed and f.practice_id and f.value is not None
                   and f.denominator)
    if not points:
        return None
    scale = 100.0 if measure.unit == "%" else 1.0
    target, source = None, "locality"
    if national is not None and query.grain == "month" and not query.filters:
        pooled = [(n.numerator, n.denominator) for n in store.national(query.metric,
                                                                      date.fromisoformat(query.period + "-01"))
                  if n.group is None and n.denominator]
        if pooled:
            share = sum(a for a, _ in pooled) / sum(b for _, b in pooled if b)
            target, source = share * (1000.0 if kind == "rate" else scale), "national"
    if target is None:
        # the locality's own figure: the pooled numerators over the pooled denominators of the practices shown
        numerator = sum(p.value * p.denominator / (scale if kind == "proportion" else 1000.0) for p in points)
        denominator = sum(p.denominator for p in points)
        target = numerator / denominator * (scale if kind == "proportion" else 1000.0)
    low = min(p.denominator for p in points) * 0.5
    high = max(p.denominator for p in points) * 1.6
    steps = 16  # exact limits cost ~2 ms each at a few thousand appointments: a smooth enough curve
    limits = []
    for i in range(steps + 1):
        den = low * math.exp(math.log(high / low) * i / steps)
        fitted = funnel_limits(den, min(1.0, target / scale) if kind == "proportion" else target, kind)
        limits.append((den, fitted.lower_998 * scale, fitted.lower_95 * scale, fitted.upper_95 * scale,
                       fitted.upper_998 * scale))
    return Funnel(target, source, points, tuple(limits), measure.denominator or "registered patients")


def _similar(store: InsightStore, query: ViewQuery, odses: Mapping[str, str], month: str
             ) -> tuple[list[Similar], str | None]:
    """The practices nationally most like this one on list size, deprivation, age mix and rurality (the weights
    the user set), each with its national figure this month."""
    assert query.practice is not None
    candidates = store.attributes()
    if not candidates:
        return [], "No practice attributes are imported (mosaic insight import-gpad with the registered-patients " \
                   "and attributes files), so similar practices cannot be found."
    code = odses.get(query.practice, query.practice)
    own = next((a for a in candidates if a.practice_code == code), None)
    note = None
    if own is None:
        row = next((p for p in store.practices() if p.id == query.practice), None)
        size = row.list_size if row is not None else None
        if not size:
            return [], "This practice gave no list size, and no attributes of it are imported: it cannot be " \
                       "compared with similar practices."
        own = PracticeAttributes(code, size, None, None, None, None)
        note = ("Only list size is known for this practice (its deprivation, age mix and rurality are not in the "
                "imported attributes), so it is compared on list size alone.")
    ranked = similar_practices(own, candidates, {k: float(v) for k, v in query.weights.items()}, limit=10)
    values = {n.practice_code: (n.practice_name, national_value(n))
              for n in store.national(query.metric, date.fromisoformat(month + "-01")) if n.group is None}
    out = [Similar(a.practice_code, values.get(a.practice_code, (a.practice_code, None))[0] or a.practice_code,
                   distance, values.get(a.practice_code, ("", None))[1], a.list_size) for a, distance in ranked]
    return out, note
