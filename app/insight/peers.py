"""Peer comparison without league tables: funnel plot limits, national deciles and similar practices.

Funnel limits follow Spiegelhalter (2005), "Funnel plots for comparing institutional performance", Stat Med
24:1185-1202: exact limits from the binomial (proportions) or Poisson (counts, rates per 1,000) distribution
at the target, with his interpolation between the integer quantiles so the limits are smooth in the
denominator. The normal approximation (target ± z·se) is offered too (`method="normal"`); it is what the
exact limits tend to for large denominators, and is wrong for small ones or targets near 0 or 1. Limits are
two-sided 95 % (z 1.96, the "warning" limits) and 99.8 % (z 3.09, the "control" limits).

Proportions are fractions 0..1 (a Figure's % value / 100); rates are per 1,000 with the denominator the list
size. Computed with the standard library (math.lgamma): no SciPy for four quantiles.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from app.insight.national_model import PracticeAttributes

Kind = Literal["proportion", "rate"]
#: two-sided coverage -> the lower and upper tail probabilities
LEVELS: dict[str, tuple[float, float]] = {"95": (0.025, 0.975), "99.8": (0.001, 0.999)}


@dataclass(frozen=True)
class FunnelLimits:
    denominator: float
    target: float
    kind: str
    lower_95: float
    upper_95: float
    lower_998: float
    upper_998: float

    def position(self, value: float) -> str:
        """Where a practice's value falls: "within", "above 95 %", "above 99.8 %", "below 95 %", ..."""
        if value > self.upper_998:
            return "above 99.8 %"
        if value > self.upper_95:
            return "above 95 %"
        if value < self.lower_998:
            return "below 99.8 %"
        if value < self.lower_95:
            return "below 95 %"
        return "within"


def funnel_limits(denominator: float, target: float, kind: Kind, *,
                  method: Literal["exact", "normal"] = "exact") -> FunnelLimits:
    """The 95 % and 99.8 % limits around `target` for a unit with this `denominator`.

    proportion: target and limits are fractions 0..1, denominator the number of trials (appointments);
    rate: target and limits are per 1,000, denominator the population (list size)."""
    if denominator <= 0:
        raise ValueError("a funnel limit needs a positive denominator")
    if kind == "proportion" and not 0 <= target <= 1:
        raise ValueError("a proportion's target is a fraction from 0 to 1")
    if target < 0:
        raise ValueError("a target cannot be negative")
    ceiling = 1.0 if kind == "proportion" else math.inf
    # a limit past 0 (or 1) is clamped there: the interpolation at r_p = 0 and the normal approximation can
    # cross it, and no practice can be below none
    limits = [min(ceiling, max(0.0, _limit(denominator, target, kind, p, method)))
              for p in (*LEVELS["95"], *LEVELS["99.8"])]
    return FunnelLimits(denominator, target, kind, limits[0], limits[1], limits[2], limits[3])


def _limit(denominator: float, target: float, kind: Kind, p: float, method: str) -> float:
    if method == "normal":
        z = statistics.NormalDist().inv_cdf(p)
        if kind == "proportion":
            return target + z * math.sqrt(target * (1 - target) / denominator)
        per = denominator / 1000.0  # thousands of patients
        return target + z * math.sqrt(target / per)
    if kind == "proportion":
        n = round(denominator)
        cdf = _binomial_cdf(n, target)
        r, alpha = _interpolated_quantile(cdf, p, n)
        return (r - alpha) / n
    per = denominator / 1000.0
    expected = target * per
    cdf = _poisson_cdf(expected)
    r, alpha = _interpolated_quantile(cdf, p, None)
    return (r - alpha) / per


def _interpolated_quantile(cdf: Callable[[int], float], p: float, top: int | None) -> tuple[int, float]:
    """Spiegelhalter's r_p (the smallest r with F(r) >= p) and α = (F(r_p) - p) / (F(r_p) - F(r_p - 1))."""
    low, high = 0, 1
    while cdf(high) < p and (top is None or high < top):
        low, high = high, high * 2 if top is None else min(high * 2, top)
    while low < high:
        middle = (low + high) // 2
        if cdf(middle) >= p:
            high = middle
        else:
            low = middle + 1
    r = low
    upper, lower = cdf(r), cdf(r - 1) if r > 0 else 0.0
    alpha = (upper - p) / (upper - lower) if upper > lower else 0.0
    return r, alpha


def _binomial_cdf(n: int, theta: float) -> Callable[[int], float]:
    if theta <= 0:
        return lambda r: 1.0 if r >= 0 else 0.0
    if theta >= 1:
        return lambda r: 1.0 if r >= n else 0.0
    log_t, log_f = math.log(theta), math.log1p(-theta)
    log_n = math.lgamma(n + 1)

    def pmf(r: int) -> float:
        return math.exp(log_n - math.lgamma(r + 1) - math.lgamma(n - r + 1) + r * log_t + (n - r) * log_f)

    return _cumulative(pmf, n * theta, math.sqrt(n * theta * (1 - theta)), n)


def _poisson_cdf(mean: float) -> Callable[[int], float]:
    if mean <= 0:
        return lambda r: 1.0 if r >= 0 else 0.0
    log_m = math.log(mean)

    def pmf(r: int) -> float:
        return math.exp(r * log_m - mean - math.lgamma(r + 1))

    return _cumulative(pmf, mean, math.sqrt(mean), None)


def _cumulative(pmf: Callable[[int], float], mean: float, sd: float, top: int | None) -> Callable[[int], float]:
    """F(r) by summing the pmf from where it is not negligible (mean - 12 sd), memoised."""
    start = max(0, int(mean - 12 * sd - 10))
    sums: list[float] = []

    def cdf(r: int) -> float:
        if r < start:
            return 0.0
        if top is not None and r >= top:
            return 1.0
        while len(sums) <= r - start:
            k = start + len(sums)
            sums.append((sums[-1] if sums else 0.0) + pmf(k))
        return min(1.0, sums[r - start])

    return cdf


# --- national deciles --------------------------------------------------------------------------------

def deciles(values: Iterable[float]) -> list[float]:
    """The nine cut points between national deciles (inclusive method: the data's own 10th..90th centiles)."""
    data = sorted(v for v in values if v is not None)
    if len(data) < 2:
        raise ValueError("deciles need at least two values")
    return statistics.quantiles(data, n=10, method="inclusive")


def decile_of(value: float, cuts: Sequence[float]) -> int:
    """1 (lowest tenth) .. 10 (highest): a value on a cut point belongs to the decile above it."""
    return bisect.bisect_right(list(cuts), value) + 1


# --- similar practices -------------------------------------------------------------------------------

#: how much each attribute counts in "similar": shown beside the list and adjustable
DEFAULT_WEIGHTS: dict[str, float] = {
    "list_size": 1.0, "imd_decile": 1.0, "share_over_65": 1.0, "share_under_18": 1.0, "rurality": 0.5,
}
ATTRIBUTES: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)


def _attribute(practice: PracticeAttributes, name: str) -> float | None:
    if name == "rurality":
        return None if practice.rurality is None else 1.0 if practice.rurality == "rural" else 0.0
    raw = getattr(practice, name)
    return None if raw is None else float(raw)


def similar_practices(target: PracticeAttributes, candidates: Iterable[PracticeAttributes],
                      weights: Mapping[str, float] | None = None, *, limit: int | None = None
                      ) -> list[tuple[PracticeAttributes, float]]:
    """Candidates nearest `target`, nearest first: the weighted Euclidean distance between attributes each
    standardised (z-score over the target and candidates), divided by the weights both practices have a value
    for (a missing attribute is left out, not guessed). A candidate comparable on less than half the weight
    in use is not listed: being alike on list size alone does not make a practice similar."""
    chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = set(chosen) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}; weights are for {', '.join(ATTRIBUTES)}")
    others = [c for c in candidates if c.practice_code != target.practice_code]
    scale: dict[str, tuple[float, float]] = {}
    for name in chosen:
        values = [v for v in (_attribute(p, name) for p in [target, *others]) if v is not None]
        if len(values) >= 2:
            sd = statistics.pstdev(values)
            if sd > 0:
                scale[name] = (statistics.fmean(values), sd)
    in_use = sum(w for name, w in chosen.items() if w > 0 and name in scale and _attribute(target, name) is not None)
    ranked = []
    for other in others:
        total, weight = 0.0, 0.0
        for name, w in chosen.items():
            a, b = _attribute(target, name), _attribute(other, name)
            if w <= 0 or name not in scale or a is None or b is None:
                continue
            _, sd = scale[name]
            total += w * ((a - b) / sd) ** 2
            weight += w
        if weight > 0 and weight >= in_use / 2:
            ranked.append((other, math.sqrt(total / weight)))
    ranked.sort(key=lambda item: (item[1], item[0].practice_code))
    return ranked[:limit] if limit is not None else ranked
