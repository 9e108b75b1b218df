"""Test results in a GP Connect structured record: each value with its unit, reference range and abnormal flag,
and which report (DiagnosticReport) it belongs to.

GP Connect nests investigations three deep: a DiagnosticReport names its results; a result may be a *test
group* (an Observation with `related` has-member links and no value of its own, such as "FBC - Full blood
count") whose members are the values. The report's own code is almost always the generic "Diagnostic studies
report", so a report is titled by its test groups (or its one result) where that says more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from adapters.fhir_r4.mapping import (
    _UNITS,
    _first,
    _list,
    _number,
    _obj,
    _str,
    _unit,
    concept_text,
    format_quantity,
    interpretation,
    preferred_coding,
    reference_range,
    worked_out_flag,
)
from adapters.fhir_r4.mapping import measurements as fhir_measurements
from app.core.model import Measurement

Json = dict[str, Any]
#: resolve(reference object, container) -> the resource it points to, or None
Resolve = Callable[[Any, Json], "Json | None"]

GENERIC_REPORT_CODES = {"721981007", "4241000179101"}  # diagnostic studies report; laboratory report

def _measurement(holder: Json, name: str) -> Measurement | None:
    """One value[x] with its range and flag; None when the holder has no value."""
    code = preferred_coding(holder.get("code"))
    low, high, range_text = reference_range(holder)
    sent = interpretation(holder)
    quantity = _obj(holder.get("valueQuantity"))
    if quantity is not None and quantity.get("value") is not None:
        ucum = _str(quantity.get("code"))
        unit = (_unit(ucum) if ucum in _UNITS else _unit(_str(quantity.get("unit")) or ucum)) or None
        value = _number(quantity.get("value"))
        if _str(quantity.get("comparator")) or value is None:  # "<5": not a point to plot
            return Measurement(name=name, text=format_quantity(quantity), unit=unit, low=low, high=high,
                               range_text=range_text, flag=sent, code=code.code if code else None)
        return Measurement(name=name, value=value, unit=unit, low=low, high=high, range_text=range_text,
                           flag=worked_out_flag(sent, value, low, high), code=code.code if code else None)
    text = concept_text(holder.get("valueCodeableConcept")) if holder.get("valueCodeableConcept") else None
    if text is None:
        for key in ("valueString", "valueDateTime", "valueTime"):
            text = text or _str(holder.get(key))
    if text is None and isinstance(holder.get("valueBoolean"), bool):
        text = "Yes" if holder["valueBoolean"] else "No"
    if text is None and _number(holder.get("valueInteger")) is not None:
        value = _number(holder.get("valueInteger"))
        return Measurement(name=name, value=value, low=low, high=high, range_text=range_text,
                           flag=worked_out_flag(sent, value, low, high), code=code.code if code else None)
    if text is None:
        return None
    return Measurement(name=name, text=text, low=low, high=high, range_text=range_text, flag=sent,
                       code=code.code if code else None)


def measurements(observation: Json) -> tuple[Measurement, ...]:
    """The observation's value, then each component's (systolic and diastolic of a blood pressure)."""
    return fhir_measurements(observation, _measurement)


def members(observation: Json) -> list[Any]:
    """The has-member references of a test group."""
    return [(_obj(x) or {}).get("target") for x in _list(observation.get("related"))
            if _str((_obj(x) or {}).get("type")) == "has-member"]


def is_test_group(observation: Json) -> bool:
    return bool(members(observation)) and not measurements(observation)


@dataclass(frozen=True)
class ReportOf:
    """Where a result belongs: its report's title, id and date."""

    title: str
    report_id: str | None
    when: str | None


def report_title(report: Json, results: Iterable[Json]) -> str:
    """The test groups' names, else the report's own code when it is specific, else its one result's name."""
    results = list(results)
    groups = [t for t in (concept_text(r.get("code")) for r in results if is_test_group(r)) if t]
    if groups:
        return ", ".join(dict.fromkeys(groups))
    code = preferred_coding(report.get("code"))
    own = concept_text(report.get("code"))
    if own and not (code and code.code in GENERIC_REPORT_CODES):
        return own
    if len(results) == 1 and concept_text(results[0].get("code")):
        return concept_text(results[0].get("code")) or ""
    return own or "Test report"


def report_membership(reports: Iterable[Json], resolve: Resolve, key: Callable[[Json | None], str | None]
                      ) -> tuple[dict[str, ReportOf], dict[str, int]]:
    """(observation key -> its report, report key -> how many values it holds), following test groups down."""
    where: dict[str, ReportOf] = {}
    counts: dict[str, int] = {}
    for report in reports:
        results = [r for r in (resolve(x, report) for x in _list(report.get("result")))
                   if r and r.get("resourceType") == "Observation"]
        of = ReportOf(report_title(report, results), _str(report.get("id")),
                      _first(report, "effectiveDateTime", "effectivePeriod.start", "issued"))
        seen: set[str] = set()
        stack = list(results)
        values = 0
        while stack:
            observation = stack.pop(0)
            k = key(observation)
            if not k or k in seen:
                continue
            seen.add(k)
            where.setdefault(k, of)
            inner = [m for m in (resolve(x, observation) for x in members(observation))
                     if m and m.get("resourceType") == "Observation"]
            stack.extend(inner)
            values += 0 if inner else 1
        report_key = key(report)
        if report_key:
            counts[report_key] = values
    return where, counts
