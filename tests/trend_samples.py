"""Hand-made observation entries with numeric series (blood pressure, weight, BMI, HbA1c in % and mmol/mol,
eGFR, cholesterol), for the trend chart tests and benchmark."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.model import Coding, Entry, Measurement, PatientRecord, PatientSummary, Section, SectionName

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def reading(when: str, code: str, value: float, unit: str, name: str, low: float | None = None,
            high: float | None = None, flag: str | None = None) -> Entry:
    return Entry(text=name, when=when, coding=Coding(LOINC, code, name),
                 measurements=(Measurement(name, value, unit, low=low, high=high, flag=flag, code=code),))


def blood_pressure(when: str, systolic: float, diastolic: float) -> Entry:
    return Entry(text="Blood pressure", when=when, coding=Coding(SNOMED, "75367002", "Blood pressure"),
                 measurements=(Measurement("Systolic blood pressure", systolic, "mm[Hg]", code="8480-6"),
                               Measurement("Diastolic blood pressure", diastolic, "mm[Hg]", code="271650006")))


def entries() -> list[Entry]:
    """Six series: blood pressure (7 readings), weight (6), BMI (3), HbA1c (7: 3 in %, 4 in mmol/mol),
    eGFR (5), total cholesterol (4); and two values recorded once (no series)."""
    result = [blood_pressure(f"20{19 + i // 2}-{(i % 2) * 6 + 2:02d}-11", s, d)
              for i, (s, d) in enumerate([(148, 92), (152, 95), (144, 90), (139, 86), (141, 88), (135, 84), (132, 80)])]
    result += [reading(f"20{20 + i // 2}-{(i % 2) * 5 + 3:02d}-04", "29463-7", w, "kg", "Body weight")
               for i, w in enumerate([92.4, 91.0, 89.8, 88.1, 87.5, 86.9])]
    result += [reading(f"202{1 + i}-03-04", "60621009", b, "kg/m2", "Body mass index") for i, b in
               enumerate([31.2, 30.1, 29.4])]
    result += [reading(f"2020-{i * 4 + 1:02d}-15", "4548-4", h, "%", "HbA1c", 4.0, 6.0)
               for i, h in enumerate([7.8, 8.1, 7.2])]
    result += [reading(f"202{2 + i // 2}-{(i % 2) * 6 + 1:02d}-20", "59261-8", h, "mmol/mol", "HbA1c", 20, 41)
               for i, h in enumerate([58, 54, 49, 52])]
    result += [reading(f"20{19 + i}-05-01", "62238-1", g, "mL/min/{1.73_m2}", "eGFR", 60, None)
               for i, g in enumerate([78, 72, 66, 61, 58])]
    result += [reading(f"20{20 + i}-09-01", "14647-2", c, "mmol/L", "Cholesterol", None, 5.0)
               for i, c in enumerate([6.4, 5.9, 5.2, 4.8])]
    result += [reading("2023-02-02", "2160-0", 88, "umol/L", "Creatinine"),
               reading("2023-02-02", "8302-2", 178, "cm", "Height")]
    return result


#: points per line of each chart `entries()` makes, in chart order
EXPECTED_POINTS = {"Blood pressure": [7, 7], "Weight": [6], "BMI": [3], "HbA1c": [7], "eGFR": [5],
                   "Total cholesterol": [4]}


def record(section: Section | None = None, *, patient: PatientSummary | None = None) -> PatientRecord:
    patient = patient or PatientSummary("p1", "1", "9434765919", "TRENDS", ("Alex",), None, "male", None)
    sections = {SectionName.OBSERVATIONS: section or Section.loaded(SectionName.OBSERVATIONS, entries())}
    return PatientRecord(patient, sections, datetime.now(UTC))
