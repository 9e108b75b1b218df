"""One practice against its peers for one measure and month, as `mosaic insight peers` prints it: where it sits on
the funnel plot (95 % and 99.8 % limits around the national figure, or the locality's when no national data is
imported) and its national decile. Never a league table: the practice is placed, not ranked.

A count (appointments) or a median has no funnel: the report says so and points to the per-1,000 or share
measures. A practice that did not provide data, or failed, is reported as that, never as a position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Protocol

from app.insight.measures import MEASURES, Figure
from app.insight.national_model import NationalFigure
from app.insight.peers import Kind, decile_of, deciles, funnel_limits

#: the measures a funnel plot fits, and how their limits are drawn
FUNNEL_KINDS: dict[str, Kind] = {"%": "proportion", "per 1,000 patients": "rate"}


class PeerStore(Protocol):
    def figures(self, metric: str, by: str, period: str | None = None, *,
                practices: Sequence[str] | None = None) -> list[Figure]: ...

    def national(self, metric: str | None = None, month: date | None = None) -> list[NationalFigure]: ...

    def latest_month(self) -> str | None: ...


@dataclass(frozen=True)
class PeerReport:
    practice: str
    metric: str
    period: str
    status: str  # the practice's figure: "ok" | "not provided" | "failed"
    value: float | None = None
    denominator: float | None = None
    target: float | None = None  # the funnel's centre line, in the measure's unit
    target_from: str | None = None  # "national" | "locality"
    lower_95: float | None = None
    upper_95: float | None = None
    lower_998: float | None = None
    upper_998: float | None = None
    funnel_position: str | None = None  # "within", "above 95 %", "below 99.8 %", …
    national_decile: int | None = None  # 1 (lowest tenth) .. 10
    national_practices: int = 0
    note: str | None = None  # why a part is missing, in words

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        measure = MEASURES[self.metric]
        head = f"{self.practice}: {measure.title}, {self.period}"
        if self.status != "ok":
            return [head, f"  {self.note or self.status}"]
        unit = "" if measure.unit == "count" else f" {measure.unit}"
        out = [head, f"  value: {_number(self.value)}{unit}"]
        if self.funnel_position is not None:
            out.append(f"  funnel plot (around the {self.target_from} figure {_number(self.target)}{unit}): "
                       f"{self.funnel_position} the limits; 95 % {_number(self.lower_95)} to {_number(self.upper_95)}, "
                       f"99.8 % {_number(self.lower_998)} to {_number(self.upper_998)} for a denominator of "
                       f"{_number(self.denominator)}")
        if self.national_decile is not None:
            out.append(f"  national decile: {self.national_decile} of 10 (1 lowest) among "
                       f"{self.national_practices:,} practices")
        if self.note:
            out.append(f"  {self.note}")
        return out


def peer_report(store: PeerStore, practice: str, metric: str, period: str | None,
                practices: Sequence[str]) -> PeerReport:
    """`practice` against the nation (or the locality: `practices`) for `metric` in `period` (one month; default
    the latest month with appointments)."""
    measure = MEASURES[metric]
    month = period or store.latest_month()
    if month is None:
        return PeerReport(practice, metric, "-", "not provided", note="No appointments in the insight store yet: "
                          "run mosaic insight refresh first.")
    if ".." in month or "-W" in month:
        raise ValueError(f"peers compares one month: give --period YYYY-MM, not {month}")
    mine = [f for f in store.figures(metric, "practice", month, practices=[practice]) if f.practice_id == practice]
    if not mine or mine[0].status != "ok" or mine[0].value is None:
        figure = mine[0] if mine else None
        status = figure.status if figure else "failed"
        why = (figure.error if figure and figure.error else
               "suppressed (a count under 5)" if figure and figure.suppressed else "no figure for this month")
        return PeerReport(practice, metric, month, status if status != "ok" else "ok", note=why)
    figure = mine[0]
    value = figure.value
    assert value is not None  # an ok figure that was not suppressed (above)
    scale = 100.0 if measure.unit == "%" else 1.0
    national = [n for n in store.national(metric, _first_day(month)) if n.group is None]
    national_values = [v * scale for n in national if (v := _value(n)) is not None]
    report = PeerReport(practice, metric, month, "ok", value=value, denominator=figure.denominator,
                        national_practices=len(national_values))
    notes: list[str] = []
    if len(national_values) >= 2:
        report = _replace(report, national_decile=decile_of(value, deciles(national_values)))
    else:
        notes.append("No national figures for this month: import NHS England's GPAD files "
                     "(mosaic insight import-gpad) for the national decile.")
    kind = FUNNEL_KINDS.get(measure.unit)
    if kind is None:
        notes.append(f"A funnel plot needs a share or a rate; {measure.title.lower()} is a {measure.unit}: compare "
                     "appointments_per_1000 instead." if measure.unit == "count" else
                     f"A funnel plot needs a share or a rate, not a {measure.unit}.")
    elif figure.denominator:
        target, source = _target(national, store, metric, month, practices, scale)
        if target is not None:
            limits = funnel_limits(figure.denominator, target / scale, kind)
            report = _replace(report, target=target, target_from=source, lower_95=limits.lower_95 * scale,
                              upper_95=limits.upper_95 * scale, lower_998=limits.lower_998 * scale,
                              upper_998=limits.upper_998 * scale,
                              funnel_position=limits.position(value / scale))
    return _replace(report, note=" ".join(notes) or None)


def _target(national: list[NationalFigure], store: PeerStore, metric: str, month: str, practices: Sequence[str],
            scale: float) -> tuple[float | None, str]:
    """The funnel's centre: the national pooled figure (sum of numerators ÷ sum of denominators), else the
    locality's."""
    pooled = [(n.numerator, n.denominator) for n in national if n.denominator]
    if pooled:
        value = sum(a for a, _ in pooled) / sum(b for _, b in pooled if b)
        return value * (1000.0 if metric.endswith("_per_1000") else scale), "national"
    locality = [f for f in store.figures(metric, "locality", month, practices=list(practices)) if f.status == "ok"]
    if locality and locality[0].value is not None:
        return locality[0].value, "locality"
    return None, ""


def _value(n: NationalFigure) -> float | None:
    if n.denominator is None:
        return n.numerator
    if not n.denominator:
        return None
    return n.numerator / n.denominator * (1000.0 if n.metric.endswith("_per_1000") else 1.0)


def _first_day(month: str) -> date:
    year, number = month.split("-")
    return date(int(year), int(number), 1)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")


def _replace(report: PeerReport, **changes: Any) -> PeerReport:
    from dataclasses import replace

    return replace(report, **changes)
