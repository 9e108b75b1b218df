"""`--period` as `mosaic insight` reads it: one month or a range of months, and a message with the format."""

from __future__ import annotations

from datetime import date

import pytest

from app.cli.insight import UsageError, default_refresh_period, parse_period


@pytest.mark.parametrize(("text", "start", "end", "label"), [
    ("2026-03", date(2026, 3, 1), date(2026, 3, 31), "2026-03"),
    ("2024-02", date(2024, 2, 1), date(2024, 2, 29), "2024-02"),
    ("2025-04..2026-03", date(2025, 4, 1), date(2026, 3, 31), "2025-04..2026-03"),
    ("2025-12..2025-12", date(2025, 12, 1), date(2025, 12, 31), "2025-12"),
    (" 2025-11..2026-01 ", date(2025, 11, 1), date(2026, 1, 31), "2025-11..2026-01"),
])
def test_a_month_or_a_range_of_months(text: str, start: date, end: date, label: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.text) == (start, end, label)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-3", "March 2026", "2026-03..", "2026-03..2025-01",
                                  "2026-01..2026-02..2026-03", "2026-W10", ""])
def test_anything_else_is_refused_saying_the_format(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_period(text)
    assert "YYYY-MM" in str(raised.value)


def test_the_default_refresh_is_the_last_24_months_with_this_one() -> None:
    period = default_refresh_period(date(2026, 12, 4))
    assert (period.start, period.end, period.text) == (date(2025, 1, 1), date(2026, 12, 31), "2025-01..2026-12")
    period = default_refresh_period(date(2026, 1, 15))
    assert (period.start, period.end) == (date(2024, 2, 1), date(2026, 1, 31))


@pytest.mark.parametrize(("latest", "today", "shown"), [
    ("2026-12", date(2026, 12, 5), "2026-11"),  # this month is not over: the one before
    ("2026-10", date(2026, 12, 5), "2026-10"),  # nothing since October: October
    ("2027-01", date(2026, 12, 5), "2026-11"),  # a book into next month (booked ahead): still the last whole one
    (None, date(2026, 1, 3), "2025-12"),  # an empty store
])
def test_without_a_period_figures_are_for_the_latest_whole_month(latest: str | None, today: date, shown: str) -> None:
    """Every face (`mosaic insight show` and `peers`, the Locality view, the store) answers for the same month when
    none is asked for: a few days of this month are mostly counts under 5, and they move from day to day (the CLI's
    tests failed after midnight on the 5th when the default was this month)."""
    from app.insight.periods import default_month

    assert default_month(latest, today) == shown


def test_the_store_answers_for_the_latest_whole_month_by_default(tmp_path) -> None:
    from app.insight.periods import default_month
    from app.insight.store import InsightStore
    from tests.insight._activity import activity, appointments, utc

    today = date.today()
    last = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 10)
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        booked = [*appointments(30, start=utc(last.year, last.month, 10, 9), status="fulfilled"),
                  *appointments(7, start=utc(today.year, today.month, 1, 9), status="fulfilled", prefix="b")]
        store.apply(activity("A", appts=booked, first=date(last.year, last.month, 1), last=today))
        [figure] = store.figures("appointments", "locality")
        assert figure.period == f"{last:%Y-%m}" == default_month(store.latest_month(), today)
        assert figure.numerator == 30
    finally:
        store.close()
