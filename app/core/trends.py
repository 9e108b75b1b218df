"""Numeric series in a record, for trend charts: blood pressure, weight, BMI, HbA1c, eGFR, cholesterol and
any other value recorded at least twice.

Values are grouped by their code (LOINC from FHIR practices, SNOMED CT from GP Connect ones); the common codes
of each clinical measure are mapped to one name, so a weight coded 29463-7 at one visit and 27113001 at the
next is one line. A line only ever joins values of one unit: a value in another unit is converted where the
conversion is standard (HbA1c % (DCCT) to mmol/mol (IFCC), g and lb to kg, cholesterol mg/dL to mmol/L) and
otherwise starts a series of its own. Pure: no Qt, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.core.model import Entry, Measurement, PatientRecord, Section, SectionName


@dataclass(frozen=True)
class Concept:
    """A clinical measure: the chart it belongs to, its line on that chart, and the unit its values are kept in."""

    chart: str  # the chart's key: "bp", "weight", ...
    title: str  # the chart's title
    line: str  # the line's name on the chart ("Systolic"; the title for a one-line chart)
    unit: str  # the unit the chart is drawn in (values in other units are converted or kept apart)
    order: int  # where the chart comes among the known ones


_BP = ("bp", "Blood pressure")
SYSTOLIC = Concept(*_BP, "Systolic", "mmHg", 0)
DIASTOLIC = Concept(*_BP, "Diastolic", "mmHg", 0)
WEIGHT = Concept("weight", "Weight", "Weight", "kg", 1)
BMI = Concept("bmi", "BMI", "BMI", "kg/m²", 2)
HBA1C = Concept("hba1c", "HbA1c", "HbA1c", "mmol/mol", 3)
EGFR = Concept("egfr", "eGFR", "eGFR", "mL/min/1.73m²", 4)
CHOLESTEROL = Concept("cholesterol", "Total cholesterol", "Total cholesterol", "mmol/L", 5)
HEIGHT = Concept("height", "Height", "Height", "cm", 6)

#: LOINC and SNOMED CT codes (UK extension included) of the measures charted under one clinical name
CONCEPTS: dict[str, Concept] = {
    # systolic: LOINC; SNOMED systolic BP, systolic arterial pressure, sitting / standing / lying systolic
    **dict.fromkeys(("8480-6", "271649006", "72313002", "407554009", "400974009", "407556006"), SYSTOLIC),
    **dict.fromkeys(("8462-4", "271650006", "1091811000000102", "407555005", "400975005", "407557002"),
                    DIASTOLIC),
    # body weight: LOINC measured / stated; SNOMED body weight, measured body weight, O/E - weight
    **dict.fromkeys(("29463-7", "3141-9", "27113001", "363808001", "162763007"), WEIGHT),
    # BMI: LOINC; SNOMED body mass index, finding of BMI
    **dict.fromkeys(("39156-5", "60621009", "301331008"), BMI),
    # HbA1c: LOINC IFCC (mmol/mol), NGSP/DCCT (%) and by method; SNOMED IFCC level, DCCT aligned level, measurement
    **dict.fromkeys(("59261-8", "4548-4", "17856-6", "4549-2", "999791000000106", "1019431000000105", "43396009"),
                    HBA1C),
    # eGFR: LOINC CKD-EPI (2009, 2021, by race), MDRD; SNOMED CKD-EPI creatinine / cystatin C, MDRD, GFR
    **dict.fromkeys(("62238-1", "98979-8", "88293-6", "88294-4", "33914-3", "48642-3", "48643-1", "50044-7",
                     "1011481000000105", "1011491000000107", "1020291000000106", "80274001"), EGFR),
    # total cholesterol: LOINC molar and mass; SNOMED serum / plasma / total cholesterol level, measurement
    **dict.fromkeys(("14647-2", "2093-3", "1005671000000105", "994351000000103", "1017161000000104",
                     "850981000000101", "77068002", "121868005"), CHOLESTEROL),
    **dict.fromkeys(("8302-2", "50373000", "248333004"), HEIGHT),
}

#: how a unit is written on screen, by how senders write it (UCUM codes and common spellings), lower-cased
_UNIT_SPELLINGS: dict[str, str] = {
    "mm[hg]": "mmHg", "mmhg": "mmHg", "kg": "kg", "g": "g", "[lb_av]": "lb", "lb": "lb", "lbs": "lb",
    "kg/m2": "kg/m²", "kg/m^2": "kg/m²", "kg/m²": "kg/m²", "kg/(m2)": "kg/m²",
    "mmol/mol": "mmol/mol", "mmol/mol{hb}": "mmol/mol", "%": "%", "%{hb}": "%", "% hb": "%",
    "mmol/l": "mmol/L", "mg/dl": "mg/dL",
    "ml/min/{1.73_m2}": "mL/min/1.73m²", "ml/min/1.73m2": "mL/min/1.73m²", "ml/min/1.73m²": "mL/min/1.73m²",
    "ml/min/1.73 m2": "mL/min/1.73m²", "ml/min/1.73m^2": "mL/min/1.73m²", "ml/min": "mL/min",
    "cm": "cm", "m": "m", "[in_i]": "in",
}


def normalise_unit(unit: str | None) -> str:
    """The unit as shown on screen ("mm[Hg]" -> "mmHg"); an unknown unit as the sender wrote it."""
    text = (unit or "").strip()
    return _UNIT_SPELLINGS.get(text.lower(), text)


def _hba1c_dcct_to_ifcc(percent: float) -> float:
    """The IFCC-DCCT master equation, as UK laboratories use it: mmol/mol = (% - 2.15) x 10.929."""
    return (percent - 2.15) * 10.929


_Convert = Callable[[float], float]

#: (chart, from unit) -> conversion into the chart's unit; exact or standard conversions only
_CONVERSIONS: dict[tuple[str, str], _Convert] = {
    ("hba1c", "%"): _hba1c_dcct_to_ifcc,
    ("weight", "g"): lambda v: v / 1000,
    ("weight", "lb"): lambda v: v * 0.45359237,
    ("cholesterol", "mg/dL"): lambda v: v / 38.67,
    ("height", "m"): lambda v: v * 100,
    ("height", "in"): lambda v: v * 2.54,
}

_ABNORMAL_FLAGS = {"H", "HH", "HU", "L", "LL", "LU", "A", "AA", ">", "<", "POS", "DET", "W"}
_HIGH_FLAGS = {"H", "HH", "HU", ">"}
_LOW_FLAGS = {"L", "LL", "LU", "<"}


@dataclass(frozen=True)
class Point:
    """One value on a line."""

    when: datetime  # for plotting (a partial date at its start, UTC)
    when_text: str  # the date as the sender gave it ("2019", "2019-04", "2019-04-05T10:00:00Z")
    value: float  # in the line's unit
    low: float | None = None  # the reference range sent with this value, in the line's unit
    high: float | None = None
    flag: str | None = None  # "H", "L", ... as sent, or worked out from the range
    original: str | None = None  # the value as sent, when it was converted ("7.5 %")

    @property
    def abnormal(self) -> bool:
        return self.flag is not None and self.flag.upper() in _ABNORMAL_FLAGS

    @property
    def direction(self) -> str | None:
        """"high", "low", or None (normal, or abnormal without a direction)."""
        flag = (self.flag or "").upper()
        return "high" if flag in _HIGH_FLAGS else "low" if flag in _LOW_FLAGS else None


@dataclass(frozen=True)
class Line:
    name: str
    unit: str
    points: tuple[Point, ...]  # oldest first

    @property
    def latest(self) -> Point:
        return self.points[-1]


@dataclass(frozen=True)
class Trend:
    """One chart: one or more lines in one unit (systolic and diastolic share the blood pressure chart)."""

    key: str
    title: str
    unit: str
    lines: tuple[Line, ...]
    order: int = 100  # known measures first, in clinical order

    @property
    def point_count(self) -> int:
        return sum(len(line.points) for line in self.lines)

    @property
    def latest_when(self) -> datetime:
        return max(line.latest.when for line in self.lines)

    @property
    def reference_range(self) -> tuple[float | None, float | None]:
        """The range to shade: the one sent with the latest value that has one (None, None where none is)."""
        if len(self.lines) != 1:
            return None, None  # a band on a two-line chart would belong to neither
        for point in reversed(self.lines[0].points):
            if point.low is not None or point.high is not None:
                return point.low, point.high
        return None, None

    def latest_text(self) -> str:
        """The latest value(s) with the unit: "142/88 mmHg", "58 mmol/mol"."""
        last = self.latest_when
        values = [self.format(line.latest.value) if line.latest.when == last else "–" for line in self.lines]
        return f"{'/'.join(values)} {self.unit}".strip()


    @property
    def decimals(self) -> int:
        """The decimals the series was sent with (at most 2): its values are all written so, as a laboratory
        writes them ("5.0 mmol/L", not "5"); values converted from another unit are rounded to them."""
        sent = [p.value for line in self.lines for p in line.points if p.original is None]
        return max((_decimals(v) for v in sent), default=1)

    def format(self, value: float) -> str:
        """A value of this series, with the series' decimals."""
        return format_value(value, self.decimals)


def _decimals(value: float) -> int:
    text = format_value(value)
    return len(text.split(".")[1]) if "." in text else 0


def format_value(value: float, decimals: int | None = None) -> str:
    """A value as a clinician reads it: with `decimals` decimals, else no trailing zeros and at most two."""
    text = f"{value:.{decimals}f}" if decimals is not None else f"{value:.2f}".rstrip("0").rstrip(".")
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def parse_when(text: str | None) -> datetime | None:
    """A FHIR date or dateTime ("2019", "2019-04", "2019-04-05", "2019-04-05T10:00:00+01:00") as a UTC moment;
    a partial date at its start. None when absent or not a date."""
    if not text:
        return None
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}", text):
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = text.split("-")
            return datetime(int(year), int(month), 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flag(measurement: Measurement, value: float, low: float | None, high: float | None) -> str | None:
    if measurement.flag:
        return measurement.flag
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return None


def _code_of(entry: Entry, measurement: Measurement) -> str | None:
    if measurement.code:
        return measurement.code
    if len(entry.measurements) == 1 and entry.coding is not None:
        return entry.coding.code  # a one-value observation: the value is the observation's own code
    return None


def _name_of(entry: Entry, measurement: Measurement) -> str:
    name = (measurement.name or "").strip()
    if not name and len(entry.measurements) == 1:
        name = (entry.coding.display if entry.coding else None) or entry.text
    return name or "Value"


@dataclass
class _Builder:
    key: str
    title: str
    unit: str
    order: int
    lines: dict[str, dict[tuple[str, float], Point]]

    def add(self, line: str, point: Point) -> None:
        # The same value at the same moment (a result listed in a report and again in a consultation) once.
        self.lines.setdefault(line, {})[(point.when_text, round(point.value, 6))] = point

    def trend(self) -> Trend:
        lines = tuple(Line(name, self.unit, tuple(sorted(points.values(), key=lambda p: p.when)))
                      for name, points in self.lines.items())
        if self.key.split("|")[0] == "bp":  # systolic above diastolic, as the reading is written
            lines = tuple(sorted(lines, key=lambda line: line.name != SYSTOLIC.line))
        return Trend(self.key, self.title, self.unit, lines, self.order)


def _point(entry: Entry, measurement: Measurement, when: datetime, convert: _Convert | None,
           unit_as_sent: str) -> Point:
    sent = measurement.value
    assert sent is not None
    flag = _flag(measurement, sent, measurement.low, measurement.high)  # in the units it was sent in
    value, low, high, original = sent, measurement.low, measurement.high, None
    if convert is not None:
        original = f"{format_value(sent)} {unit_as_sent}".strip()
        value = convert(sent)
        low = convert(low) if low is not None else None
        high = convert(high) if high is not None else None
    return Point(when, entry.when or "", value, low, high, flag, original)


def series(entries: Iterable[Entry], *, minimum_points: int = 2) -> list[Trend]:
    """The charts for these observation entries: every series with at least `minimum_points` values, known
    measures first in clinical order (blood pressure, weight, BMI, HbA1c, eGFR, cholesterol), then the others
    by title. Values without a date or a number are left out (they cannot be placed on a time axis)."""
    builders: dict[str, _Builder] = {}
    for entry in entries:
        when = parse_when(entry.when)
        if when is None:
            continue
        for measurement in entry.measurements:
            if measurement.value is None or not math.isfinite(measurement.value):
                continue
            code = _code_of(entry, measurement)
            unit = normalise_unit(measurement.unit)
            concept = CONCEPTS.get(code or "")
            if concept is not None:
                convert = None if unit == concept.unit else _CONVERSIONS.get((concept.chart, unit))
                if unit == concept.unit or convert is not None:
                    key, title, line, chart_unit, order = concept.chart, concept.title, concept.line, concept.unit, \
                        concept.order
                else:  # a unit this chart cannot take: a chart of its own, never the same line
                    key, title, line, chart_unit, order = f"{concept.chart}|{unit}", \
                        f"{concept.title} ({unit or 'no unit'})", concept.line, unit, concept.order
            else:
                convert = None
                name = _name_of(entry, measurement)
                ident = f"code:{code}" if code else f"name:{name.casefold()}"
                key, title, line, chart_unit, order = f"{ident}|{unit}", name, name, unit, 100
            builder = builders.get(key)
            if builder is None:
                builder = builders[key] = _Builder(key, title, chart_unit, order, {})
            builder.add(line, _point(entry, measurement, when, convert, unit))
    trends = [b.trend() for b in builders.values()]
    trends = [t for t in trends if any(len(line.points) >= minimum_points for line in t.lines)]
    # Titles of other series that share a name but not a unit say their unit.
    titles = [t.title for t in trends]
    trends = [_with_unit_title(t) if titles.count(t.title) > 1 and t.order == 100 else t for t in trends]
    trends.sort(key=lambda t: (t.order, t.title.casefold(), t.unit))
    return trends


def _with_unit_title(trend: Trend) -> Trend:
    return Trend(trend.key, f"{trend.title} ({trend.unit or 'no unit'})", trend.unit, trend.lines, trend.order)


def observations_section(record: PatientRecord) -> Section | None:
    return record.sections.get(SectionName.OBSERVATIONS)


def record_trends(record: PatientRecord) -> list[Trend]:
    """The charts of a record; none when its observations did not load (failed, withheld, not provided):
    an unknown section is never drawn as an empty one."""
    section = observations_section(record)
    if section is None or section.status != "loaded":
        return []
    return series(section.entries)
