"""Results as a clinician reads them: grouped by report (the report's title and date, then its values), each
value with its unit, reference range and abnormal flag in a symbol, words and colour
("6.4 mmol/L  ▲ High  0–5"). Pure (no Qt): rows for app/ui/record_sections.py."""

from __future__ import annotations

import re

from app.core.display import (
    flag_words,
    format_partial_date,
    format_range,
    format_value,
    measurement_flag,
    status_words,
)
from app.core.model import Entry, Measurement
from app.ui.record_rows import Group, Row, TableSpec, group_of

RESULTS_TABLE = TableSpec(("Date", "Test", "Value", "Flag", "Range"), fit=(0, 2, 3, 4), wrap=(1,), alert_column=3)
INDENT = "    "  # a report's values under its title
_COUNT = re.compile(r"\d+ results?")
SHORT_VALUE = 24  # a text result longer than this goes on a line of its own, under the test's name


def results_group(title: str, entries: tuple[Entry, ...] | list[Entry]) -> Group:
    """Every result, newest report first: a report's title row then its values; a result without a report is
    one row (or its values under its name, when it has several)."""
    reports: dict[str, list[Entry]] = {}
    blocks: list[tuple[str, list[Row]]] = []  # (date for ordering, rows)
    for entry in entries:
        key = entry.report_id or entry.report
        if key and entry.report:
            reports.setdefault(key, []).append(entry)
        else:
            blocks.append((entry.when or "", _result_rows(entry)))
    for members in reports.values():
        heads = [e for e in members if e.resource_type == "DiagnosticReport"]  # the report itself: its heading
        values = [e for e in members if e.resource_type != "DiagnosticReport"]
        when = max((e.when or "" for e in (heads or members)), default="")
        rows = [Row((_day(when), _heading(members[0].report or "", heads), "", "", ""), span=True,
                    bold=True)]
        for entry in values:
            rows.extend(_result_rows(entry, under_report=True))
        blocks.append((when, rows))
    blocks.sort(key=lambda block: block[0], reverse=True)
    return group_of("observations", title, RESULTS_TABLE, [rows for _, rows in blocks], "results")


def _day(when: str | None) -> str:
    """A result's date without its time (the column stays narrow enough for the values beside it)."""
    return format_partial_date((when or "")[:10])


def _heading(title: str, heads: list[Entry]) -> str:
    """'Renal function · Leeds Pathology': the report's title, what it says besides its count of results (who
    reported, a conclusion), and its status when not final."""
    parts = [title]
    for head in heads[:1]:
        parts += [p.strip() for p in (head.detail or "").split(";") if p.strip() and not _COUNT.fullmatch(p.strip())]
        status = status_words("observations", head.status)
        if status:
            parts.append(status.lower())
    return " · ".join(parts)


def _result_rows(entry: Entry, under_report: bool = False) -> list[Row]:
    date = "" if under_report else _day(entry.when)
    indent = INDENT if under_report else ""
    status = status_words("observations", entry.status)
    name = f"{entry.text} ({status.lower()})" if status else entry.text
    values = entry.measurements
    if not values:  # a result as text only (its value, where there is one, in the detail)
        detail = (entry.detail or "").strip()
        if len(detail) <= SHORT_VALUE:
            return [Row((date, indent + name, detail, "", ""))]
        return [Row((date, indent + name, "", "", "")), Row(("", detail, "", "", ""), span=True, muted=True)]
    if len(values) == 1:
        return [_value_row(date, indent + name, values[0])]
    joined = _joined(values)
    if joined is not None:  # blood pressure: 142/88 mmHg
        value, flag, level, ranges = joined
        return [Row((date, indent + name, value, flag, ranges), alert=level)]
    rows = [Row((date, indent + name, "", "", ""), span=True, bold=not under_report)]
    rows.extend(_value_row("", indent + INDENT + (m.name or name), m) for m in values)
    return rows


def _value_row(date: str, name: str, m: Measurement) -> Row:
    flag, level = flag_words(measurement_flag(m.flag, m.value, m.low, m.high))
    return Row((date, name, format_value(m.value, m.unit, m.text), flag, format_range(m.low, m.high, m.range_text)),
               alert=level)


def _joined(values: tuple[Measurement, ...]) -> tuple[str, str, int, str] | None:
    """Two numbers in one unit (systolic / diastolic) as one value, '142/88 mmHg'; else None."""
    if len(values) != 2 or any(m.value is None for m in values) or values[0].unit != values[1].unit:
        return None
    flags = [flag_words(measurement_flag(m.flag, m.value, m.low, m.high)) for m in values]
    level = max(level for _, level in flags)
    flag = "; ".join(f"{words} ({m.name.lower()})" for (words, _), m in zip(flags, values, strict=True) if words)
    ranges = [format_range(m.low, m.high, m.range_text) for m in values]
    unit = values[0].unit or ""
    value = "/".join(format_value(m.value, None, None) for m in values) + (f" {unit}" if unit else "")
    return value, flag, level, " / ".join(ranges) if all(ranges) else ""
