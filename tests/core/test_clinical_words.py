"""Clinical words for record entries: groups, statuses, abnormal flags, values and ranges (never raw FHIR codes)."""

from __future__ import annotations

import pytest

from app.core.display import (
    entry_group,
    flag_words,
    format_range,
    format_value,
    measurement_flag,
    severity_words,
    status_words,
)


@pytest.mark.parametrize(("section", "group", "status", "expected"), [
    ("problems", None, "active", "active"),
    ("problems", None, "resolved", "past"),
    ("problems", None, "remission", "past"),
    ("problems", None, None, "active"),  # unknown: kept with the current ones, where it is seen
    ("problems", "past", "active", "past"),  # the sender's own grouping first
    ("medications", "repeat", "active", "repeat"),
    ("medications", "acute", "active", "acute"),
    ("medications", "repeat", "stopped", "past"),  # a stopped repeat is past, whatever the sender's group
    ("medications", None, "active", "current"),
    ("medications", None, "completed", "past"),
    ("allergies", None, "active", None),
])
def test_entry_groups(section, group, status, expected) -> None:
    assert entry_group(section, group, status) == expected


@pytest.mark.parametrize(("section", "status", "expected"), [
    ("observations", "final", ""),  # the ordinary case says nothing
    ("observations", "preliminary", "Preliminary result"),
    ("encounters", "finished", ""),
    ("encounters", "in-progress", "In progress"),
    ("medications", "stopped", "Stopped"),
    ("medications", "active", ""),
    ("problems", "active", ""),
    ("problems", "recurrence", "Recurrence"),
    ("immunisations", "not-done", "Not given"),
    ("immunisations", "completed", ""),
    ("allergies", "unconfirmed", "Unconfirmed"),
    ("observations", "some-new_code", "Some new code"),  # unknown codes become words, never raw
    ("observations", None, ""),
])
def test_status_words(section, status, expected) -> None:
    assert status_words(section, status) == expected


def test_no_raw_code_survives() -> None:
    for code in ("final", "finished", "completed", "entered-in-error", "on-hold", "not-done", "in-progress"):
        for section in ("problems", "medications", "allergies", "encounters", "observations", "immunisations"):
            words = status_words(section, code)
            assert words != code and "-" not in words


@pytest.mark.parametrize(("flag", "value", "low", "high", "expected"), [
    ("h", None, None, None, "H"),
    (None, 6.4, 0.0, 5.0, "H"),
    (None, 2.0, 3.0, None, "L"),
    (None, 4.0, 0.0, 5.0, None),
    (None, None, 0.0, 5.0, None),
])
def test_measurement_flag(flag, value, low, high, expected) -> None:
    assert measurement_flag(flag, value, low, high) == expected


def test_flag_words_say_it_in_words_and_a_symbol() -> None:
    assert flag_words("H") == ("▲ High", 1)
    assert flag_words("LL") == ("▼▼ Critically low", 2)
    assert flag_words("N") == ("", 0)
    assert flag_words(None) == ("", 0)
    assert flag_words("XYZ") == ("◆ Abnormal (XYZ)", 1)


def test_values_ranges_and_severity() -> None:
    assert format_value(6.4, "mmol/L", None) == "6.4 mmol/L"
    assert format_value(142.0, "mmHg", None) == "142 mmHg"
    assert format_value(None, None, "Positive") == "Positive"
    assert format_range(0.0, 5.0, None) == "0–5"
    assert format_range(None, 5.2, None) == "< 5.2"
    assert format_range(60.0, None, None) == "> 60"
    assert format_range(None, None, "negative") == "negative"
    assert severity_words("severe") == "Severe"
    assert severity_words("high") == "High risk"
