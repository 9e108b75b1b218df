"""Funnel limits against reference values computed independently (exact rational arithmetic for the
binomial and Poisson sums, the published standard normal quantiles for the normal approximation), national
deciles and similar practices."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from app.insight.national_model import PracticeAttributes
from app.insight.peers import DEFAULT_WEIGHTS, decile_of, deciles, funnel_limits, similar_practices

# the standard normal quantiles as published in statistical tables
Z_975, Z_999 = 1.959964, 3.090232


def _exact_binomial_limit(n: int, theta: Fraction, p: Fraction) -> float:
    """Spiegelhalter (2005) appendix, in exact arithmetic: r_p = min r with F(r) >= p;
    α = (F(r_p) - p) / (F(r_p) - F(r_p - 1)); limit (r_p - α) / n."""
    cdf, previous = Fraction(0), Fraction(0)
    for r in range(n + 1):
        previous, cdf = cdf, cdf + math.comb(n, r) * theta**r * (1 - theta) ** (n - r)
        if cdf >= p:
            return float((r - (cdf - p) / (cdf - previous)) / n)
    raise AssertionError


def _exact_poisson_limit(mean: Fraction, per: Fraction, p: Fraction) -> float:
    """The same for a Poisson count with this mean (e^-mean as a float: 1e-16 relative, far inside the check)."""
    term = Fraction(math.exp(-float(mean)))
    cdf, previous, r = Fraction(0), Fraction(0), 0
    while True:
        previous, cdf = cdf, cdf + term
        if cdf >= p:
            return float((r - (cdf - p) / (cdf - previous)) / per)
        r += 1
        term = term * mean / r


@pytest.mark.parametrize(("n", "theta"), [(20, "0.1"), (100, "0.5"), (250, "0.15"), (60, "0.95")])
def test_proportion_limits_match_exact_binomial_arithmetic(n: int, theta: str) -> None:
    limits = funnel_limits(n, float(theta), "proportion")
    t = Fraction(theta)
    expected = [min(1.0, max(0.0, _exact_binomial_limit(n, t, Fraction(p))))  # clamped to 0..1
                for p in ("0.025", "0.975", "0.001", "0.999")]
    got = [limits.lower_95, limits.upper_95, limits.lower_998, limits.upper_998]
    assert got == pytest.approx(expected, abs=1e-9)
    assert limits.lower_998 <= limits.lower_95 <= float(t) <= limits.upper_95 <= limits.upper_998


def test_binomial_worked_example() -> None:
    """n=100, target 0.5: F(39) = 0.0176, F(40) = 0.0284, so r_0.025 = 40, α = 0.3176, limit 0.3968;
    F(59) = 0.9716, F(60) = 0.9824, so r_0.975 = 60, α = 0.6848, limit 0.5932 (the interpolation is not
    symmetric about the target)."""
    limits = funnel_limits(100, 0.5, "proportion")
    assert limits.lower_95 == pytest.approx(0.39682, abs=5e-5)
    assert limits.upper_95 == pytest.approx(0.59315, abs=5e-5)


@pytest.mark.parametrize(("population", "rate"), [(1000, 10.0), (5000, 3.0), (2000, 40.0)])
def test_rate_limits_match_exact_poisson_arithmetic(population: int, rate: float) -> None:
    limits = funnel_limits(population, rate, "rate")
    per = Fraction(population, 1000)
    mean = Fraction(rate) * per
    expected = [_exact_poisson_limit(mean, per, Fraction(p)) for p in ("0.025", "0.975", "0.001", "0.999")]
    got = [limits.lower_95, limits.upper_95, limits.lower_998, limits.upper_998]
    assert got == pytest.approx(expected, rel=1e-9)


def test_normal_approximation_and_convergence() -> None:
    normal = funnel_limits(400, 0.2, "proportion", method="normal")
    se = math.sqrt(0.2 * 0.8 / 400)
    assert normal.upper_95 == pytest.approx(0.2 + Z_975 * se, abs=1e-6)
    assert normal.lower_998 == pytest.approx(0.2 - Z_999 * se, abs=1e-6)
    rate = funnel_limits(8000, 50.0, "rate", method="normal")
    assert rate.upper_95 == pytest.approx(50 + Z_975 * math.sqrt(50 / 8), abs=1e-5)
    # exact limits approach the normal ones as the denominator grows
    big_exact, big_normal = (funnel_limits(200_000, 0.3, "proportion", method=m) for m in ("exact", "normal"))
    assert big_exact.upper_998 == pytest.approx(big_normal.upper_998, abs=2e-4)
    small_exact, small_normal = (funnel_limits(20, 0.05, "proportion", method=m) for m in ("exact", "normal"))
    # n=20 at 5 %: the normal limit would be below 0 (clamped), the exact upper limit is far from the normal one
    assert small_normal.lower_95 == 0.0
    assert small_exact.upper_998 - small_normal.upper_998 > 0.03


def test_funnel_narrows_and_positions() -> None:
    widths = [funnel_limits(n, 0.3, "proportion").upper_95 - funnel_limits(n, 0.3, "proportion").lower_95
              for n in (50, 500, 5000)]
    assert widths[0] > widths[1] > widths[2]
    limits = funnel_limits(1000, 0.1, "proportion")
    assert limits.position(0.1) == "within"
    assert limits.position(limits.upper_95 + 1e-6) == "above 95 %"
    assert limits.position(limits.upper_998 + 1e-6) == "above 99.8 %"
    assert limits.position(limits.lower_998 - 1e-6) == "below 99.8 %"
    with pytest.raises(ValueError):
        funnel_limits(0, 0.1, "proportion")
    with pytest.raises(ValueError):
        funnel_limits(10, 1.5, "proportion")


def test_deciles() -> None:
    values = list(range(1, 101))  # 1..100
    cuts = deciles(values)
    assert cuts == pytest.approx([10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1])
    assert [decile_of(v, cuts) for v in (1, 10, 11, 50, 95, 100)] == [1, 1, 2, 5, 10, 10]
    with pytest.raises(ValueError):
        deciles([1.0])


def _practice(code: str, size: int, imd: int | None, old: float | None, young: float | None,
              rural: str | None) -> PracticeAttributes:
    return PracticeAttributes(code, size, imd, old, young, rural)


def test_similar_practices_by_weighted_standardised_distance() -> None:
    target = _practice("T", 8000, 3, 0.15, 0.22, "urban")
    twin = _practice("TWIN", 8100, 3, 0.15, 0.22, "urban")
    older = _practice("OLD", 8000, 3, 0.35, 0.12, "urban")
    rural = _practice("RURAL", 8000, 3, 0.15, 0.22, "rural")
    big = _practice("BIG", 30000, 9, 0.15, 0.22, "urban")
    unknown = _practice("UNKNOWN", 8000, None, None, None, None)
    ranked = similar_practices(target, [big, older, rural, twin, unknown, target], DEFAULT_WEIGHTS)
    codes = [p.practice_code for p, _ in ranked]
    assert codes[0] == "TWIN"
    assert "T" not in codes
    assert "UNKNOWN" not in codes  # alike on list size alone: not comparable enough to be listed
    # rurality at weight 0.5 by default; raise it and the rural practice moves to the bottom
    heavy = similar_practices(target, [older, rural, twin], {**DEFAULT_WEIGHTS, "rurality": 10.0})
    assert [p.practice_code for p, _ in heavy][-1] == "RURAL"
    # age mix weighed out: the older practice (otherwise identical) comes first, at distance 0
    with_age = similar_practices(target, [older, twin])
    assert [p.practice_code for p, _ in with_age] == ["TWIN", "OLD"]
    no_age = similar_practices(target, [older, twin], {**DEFAULT_WEIGHTS, "share_over_65": 0, "share_under_18": 0})
    assert [(p.practice_code, d) for p, d in no_age][0] == ("OLD", 0.0)
    assert similar_practices(target, [big, twin], limit=1)[0][0].practice_code == "TWIN"
    with pytest.raises(ValueError, match="unknown attributes"):
        similar_practices(target, [twin], {"postcode": 1.0})
