"""Numeric series for trend charts (app/core/trends.py), from hand-written observation entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core.model import Coding, Entry, Measurement, PatientRecord, PatientSummary, Section, SectionName
from app.core.trends import Trend, format_value, normalise_unit, parse_when, record_trends, series

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def value(when: str | None, code: str, number: float | None, unit: str | None, *, name: str = "",
          low: float | None = None, high: float | None = None, flag: str | None = None,
          entry_code: bool = False) -> Entry:
    """A one-value observation; `entry_code` puts the code on the entry only (as a sender may)."""
    measurement = Measurement(name or code, number, unit, low=low, high=high, flag=flag,
                              code=None if entry_code else code)
    return Entry(text=name or code, when=when, coding=Coding(LOINC, code, name or None), measurements=(measurement,))


def bp(when: str, systolic: float, diastolic: float, *, snomed: bool = False) -> Entry:
    codes = ("271649006", "271650006") if snomed else ("8480-6", "8462-4")
    return Entry(text="Blood pressure", when=when, coding=Coding(SNOMED, "75367002", "Blood pressure"),
                 measurements=(Measurement("Systolic blood pressure", systolic, "mm[Hg]", code=codes[0]),
                               Measurement("Diastolic blood pressure", diastolic, "mmHg", code=codes[1])))


def by_key(entries: list[Entry]) -> dict[str, Trend]:
    return {t.key: t for t in series(entries)}


def test_blood_pressure_is_one_chart_with_systolic_above_diastolic_from_loinc_and_snomed_readings() -> None:
    trends = series([bp("2024-03-01", 150, 95), bp("2023-01-10", 142, 88, snomed=True), bp("2025-06-02", 138, 84)])
    assert [t.key for t in trends] == ["bp"]
    chart = trends[0]
    assert chart.title == "Blood pressure" and chart.unit == "mmHg"
    assert [line.name for line in chart.lines] == ["Systolic", "Diastolic"]
    assert [p.value for p in chart.lines[0].points] == [142, 150, 138]  # oldest first, whatever the order sent
    assert [p.value for p in chart.lines[1].points] == [88, 95, 84]
    assert chart.latest_text() == "138/84 mmHg"
    assert chart.latest_when == datetime(2025, 6, 2, tzinfo=UTC)


@pytest.mark.parametrize(("codes", "unit", "key", "title"), [
    (("29463-7", "27113001"), "kg", "weight", "Weight"),
    (("39156-5", "60621009"), "kg/m2", "bmi", "BMI"),
    (("59261-8", "999791000000106"), "mmol/mol", "hba1c", "HbA1c"),
    (("62238-1", "1011481000000105"), "mL/min/{1.73_m2}", "egfr", "eGFR"),
    (("14647-2", "1005671000000105"), "mmol/L", "cholesterol", "Total cholesterol"),
])
def test_loinc_and_snomed_codes_of_one_measure_make_one_line(codes: tuple[str, str], unit: str, key: str,
                                                             title: str) -> None:
    trends = series([value("2022-01-01", codes[0], 10, unit), value("2023-01-01", codes[1], 11, unit)])
    assert [(t.key, t.title, len(t.lines), t.point_count) for t in trends] == [(key, title, 1, 2)]


def test_known_measures_come_first_in_clinical_order_then_others_by_title() -> None:
    entries = [value(f"202{i}-01-01", code, 5 + i, unit, name=name) for i in (1, 2)
               for code, unit, name in (("2160-0", "umol/L", "Creatinine"), ("14647-2", "mmol/L", ""),
                                        ("59261-8", "mmol/mol", ""), ("29463-7", "kg", ""),
                                        ("1751-7", "g/L", "Albumin"))]
    entries += [bp("2021-01-01", 120, 80), bp("2022-01-01", 121, 81)]
    assert [t.title for t in series(entries)] == ["Blood pressure", "Weight", "HbA1c", "Total cholesterol",
                                                  "Albumin", "Creatinine"]


def test_a_value_recorded_once_is_no_series() -> None:
    assert series([value("2022-01-01", "29463-7", 80, "kg"), value("2022-02-01", "39156-5", 27, "kg/m2")]) == []
    assert series([bp("2022-01-01", 120, 80)]) == []


def test_hba1c_in_percent_is_converted_to_mmol_per_mol_and_says_what_was_sent() -> None:
    trends = series([value("2019-05-01", "4548-4", 7.5, "%", low=4.0, high=6.0),
                     value("2020-05-01", "59261-8", 53, "mmol/mol", low=20, high=42)])
    assert len(trends) == 1 and trends[0].unit == "mmol/mol"
    old, new = trends[0].lines[0].points
    assert old.value == pytest.approx(58.47, abs=0.01) and old.original == "7.5 %"
    assert old.high == pytest.approx(42.08, abs=0.01)  # the range converted with it
    assert old.flag == "H"  # worked out in the units it was sent in
    assert new.value == 53 and new.original is None


def test_weight_is_drawn_in_kg_only() -> None:
    trends = series([value("2020-01-01", "29463-7", 80500, "g"), value("2021-01-01", "29463-7", 176.4, "[lb_av]"),
                     value("2022-01-01", "27113001", 79, "kg"), value("2023-01-01", "27113001", 12.5, "[st_av]"),
                     value("2024-01-01", "27113001", 12.8, "[st_av]")])
    weight = {t.key: t for t in trends}
    assert [round(p.value, 1) for p in weight["weight"].lines[0].points] == [80.5, 80.0, 79]
    # stones are not converted: a chart of their own, never a point on the kg line
    assert weight["weight|[st_av]"].title == "Weight ([st_av])"
    assert [p.value for p in weight["weight|[st_av]"].lines[0].points] == [12.5, 12.8]


def test_values_in_units_that_do_not_convert_are_never_joined_on_one_line() -> None:
    entries = [value("2020-01-01", "2345-7", 5.1, "mmol/L", name="Glucose"),
               value("2021-01-01", "2345-7", 5.6, "mmol/L", name="Glucose"),
               value("2022-01-01", "2345-7", 101, "mg/dL", name="Glucose"),
               value("2023-01-01", "2345-7", 99, "mg/dL", name="Glucose")]
    trends = series(entries)
    assert sorted((t.title, t.unit, t.point_count) for t in trends) == [
        ("Glucose (mg/dL)", "mg/dL", 2), ("Glucose (mmol/L)", "mmol/L", 2)]
    for trend in trends:
        assert {p.value > 50 for line in trend.lines for p in line.points} in ({True}, {False})


def test_abnormal_values_by_flag_or_by_range() -> None:
    points = series([value("2020-01-01", "14647-2", 6.4, "mmol/L", high=5.0),
                     value("2021-01-01", "14647-2", 4.2, "mmol/L", high=5.0),
                     value("2022-01-01", "14647-2", 4.9, "mmol/L", flag="H"),
                     value("2023-01-01", "14647-2", 2.0, "mmol/L", low=2.5, high=5.0),
                     value("2024-01-01", "14647-2", 4.0, "mmol/L", flag="N", low=2.5, high=5.0)])[0].lines[0].points
    assert [(p.abnormal, p.direction) for p in points] == [(True, "high"), (False, None), (True, "high"),
                                                           (True, "low"), (False, None)]


def test_reference_range_is_the_latest_one_sent_and_never_on_a_two_line_chart() -> None:
    trends = by_key([value("2020-01-01", "62238-1", 70, "mL/min/{1.73_m2}", low=60),
                     value("2021-01-01", "62238-1", 65, "mL/min/{1.73_m2}", low=90),
                     value("2022-01-01", "62238-1", 61, "mL/min/{1.73_m2}"),
                     bp("2021-01-01", 120, 80), bp("2022-01-01", 121, 81)])
    assert trends["egfr"].reference_range == (90, None)
    assert trends["bp"].reference_range == (None, None)


def test_the_code_on_the_entry_serves_a_one_value_observation_and_undated_or_textual_values_are_left_out() -> None:
    entries = [value("2020-01-01", "29463-7", 80, "kg", entry_code=True),
               value("2021-01-01", "27113001", 81, "kg", entry_code=True),
               value(None, "29463-7", 90, "kg"), value("not a date", "29463-7", 91, "kg"),
               value("2022-01-01", "29463-7", None, "kg"), value("2023-01-01", "29463-7", float("nan"), "kg"),
               value("2024-01-01", "29463-7", float("inf"), "kg")]
    trends = series(entries)
    assert [(t.key, [p.value for p in t.lines[0].points]) for t in trends] == [("weight", [80, 81])]


def test_the_same_value_listed_twice_is_one_point() -> None:
    entries = [value("2020-01-01T09:00:00Z", "29463-7", 80, "kg"), value("2020-01-01T09:00:00Z", "27113001", 80, "kg"),
               value("2021-01-01", "29463-7", 81, "kg")]
    assert series(entries)[0].point_count == 2


def test_partial_dates_and_times() -> None:
    assert parse_when("2019") == datetime(2019, 1, 1, tzinfo=UTC)
    assert parse_when("2019-04") == datetime(2019, 4, 1, tzinfo=UTC)
    assert parse_when("2019-04-05") == datetime(2019, 4, 5, tzinfo=UTC)
    assert parse_when("2019-04-05T10:00:00+01:00") == datetime(2019, 4, 5, 9, tzinfo=UTC)
    assert parse_when("2019-04-05T10:00:00Z") == datetime(2019, 4, 5, 10, tzinfo=UTC)
    assert parse_when("") is None and parse_when("soon") is None and parse_when("2019-13") is None


def test_units_and_values_as_written() -> None:
    assert normalise_unit("mm[Hg]") == "mmHg" and normalise_unit("kg/m2") == "kg/m²"
    assert normalise_unit("mL/min/{1.73_m2}") == "mL/min/1.73m²" and normalise_unit(" mmol/l ") == "mmol/L"
    assert normalise_unit("furlongs") == "furlongs" and normalise_unit(None) == ""
    assert [format_value(v) for v in (58.0, 6.4, 6.456, -0.001, 120)] == ["58", "6.4", "6.46", "0", "120"]


def _record(section: Section) -> PatientRecord:
    patient = PatientSummary("p1", "1", None, "TEST", ("A",), None, None, None)
    return PatientRecord(patient, {SectionName.OBSERVATIONS: section}, datetime.now(UTC))


def test_a_record_whose_observations_did_not_load_has_no_trends() -> None:
    entries = [value("2020-01-01", "29463-7", 80, "kg"), value("2021-01-01", "29463-7", 81, "kg")]
    assert len(record_trends(_record(Section.loaded(SectionName.OBSERVATIONS, entries)))) == 1
    for section in (Section.failed(SectionName.OBSERVATIONS, "timed out"), Section.withheld(SectionName.OBSERVATIONS),
                    Section.unsupported(SectionName.OBSERVATIONS)):
        assert record_trends(_record(section)) == []
    empty = PatientRecord(_record(Section.withheld(SectionName.OBSERVATIONS)).patient, {}, datetime.now(UTC))
    assert record_trends(empty) == []


def test_the_research_view_keeps_values_units_ranges_and_codes_but_no_words() -> None:
    from app.core.research import pseudonymise_entry, pseudonymise_record

    sent = Entry("BP taken by Jane's husband", when="2024-01-02", coding=Coding(SNOMED, "75367002", "Blood pressure"),
                 detail="Dr Who", measurements=(
                     Measurement("Systolic as Jane said", 150, "mm[Hg]", text="high for Jane", low=90, high=140,
                                 range_text="Jane's usual", flag="H", code="8480-6"),
                     Measurement("Jane's own reading", 7, "x", code=None)))
    kept = pseudonymise_entry(sent).measurements
    assert kept == (Measurement("Systolic", 150, "mm[Hg]", low=90, high=140, flag="H", code="8480-6"),
                    Measurement("", 7, None))  # "x" is no unit's word: a sender's unit is text (b8b3d66)
    uncoded = Entry("Jane weighed 80 kg", when="2024-01-02",
                    measurements=(Measurement("Jane", 80, "kg", code="29463-7"),))
    assert pseudonymise_entry(uncoded).measurements == ()  # an entry withheld whole withholds its values
    entries = [value("2020-01-01", "29463-7", 80, "kg", name="Weight (Jane)"),
               value("2021-01-01", "29463-7", 81, "kg", name="Weight (Jane)"), bp("2021-01-01", 120, 80),
               bp("2022-01-01", 121, 81)]
    record = pseudonymise_record(_record(Section.loaded(SectionName.OBSERVATIONS, entries)), "R-AAAA-BBBB-CCCC")
    trends = record_trends(record)
    assert [(t.title, t.point_count) for t in trends] == [("Blood pressure", 4), ("Weight", 2)]
    assert "Jane" not in repr(trends)


def test_values_are_written_with_the_decimals_the_series_was_sent_with() -> None:
    cholesterol = series([value("2020-01-01", "14647-2", 6.1, "mmol/L"),
                          value("2021-01-01", "14647-2", 5.0, "mmol/L")])[0]
    assert cholesterol.decimals == 1 and cholesterol.latest_text() == "5.0 mmol/L"
    hba1c = series([value("2019-05-01", "4548-4", 7.8, "%"), value("2020-05-01", "59261-8", 53, "mmol/mol")])[0]
    assert hba1c.decimals == 0 and hba1c.format(hba1c.lines[0].points[0].value) == "62"  # 61.75, converted
    egfr = series([value("2020-01-01", "62238-1", 88, "mL/min"), value("2021-01-01", "62238-1", 90, "mL/min")])[0]
    assert egfr.latest_text() == "90 mL/min"
    assert series([bp("2021-01-01", 120, 80), bp("2022-01-01", 121.5, 81)])[0].latest_text() == "121.5/81.0 mmHg"
