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
