"""GPAD import (app/insight/gpad.py) against files in the published format, counted by hand.

The fixture tests/insight/fixtures/Practice_Level_Crosstab_Oct_25.csv is hand-written in the practice-level
layout (columns, "01OCT2025", "8  to 14 Days" with two spaces, "Video Conference/Online"); each expected
figure below is counted from its rows in the comment beside it.
"""

from __future__ import annotations

import csv
import hashlib
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from app.demo.gpad_synthetic import demo_months, write_synthetic_gpad
from app.insight.csv_stream import UnreadableFile
from app.insight.gpad import (
    NOT_FROM_GPAD,
    figure_value,
    group_counts,
    import_gpad,
    read_gpad,
    read_gpad_counts,
    read_national,
)
from app.insight.national_model import NationalFigure, PracticeAttributes

FIXTURES = Path(__file__).parent / "fixtures"
GPAD = FIXTURES / "Practice_Level_Crosstab_Oct_25.csv"
REGISTERED = FIXTURES / "gp-reg-pat-prac-quin-age.csv"
ATTRIBUTES = FIXTURES / "practice-attributes.csv"
OCT, NOV = date(2025, 10, 1), date(2025, 11, 1)
A, B = "Y80001", "Y80002"

#: (practice, month, metric, group) -> (numerator, denominator), counted by hand from the fixture
EXPECTED: dict[tuple[str, date, str, str | None], tuple[float, float | None]] = {
    # Y80001 October: 40+3+25+20+10+2+5+4+1 rows
    (A, OCT, "appointments", None): (110, None),
    (A, OCT, "dna_rate", None): (5, 106),  # DNA 3+2 over attended 40+25+20+10+5+1=101 + DNA 5
    (A, OCT, "same_day_share", None): (68, 106),  # Same Day 40+3+25 over 110 - 4 "Unknown / Data Quality"
    (A, OCT, "within_7_days", None): (93, 106),  # 68 + "1 Day" 5 + "2 to 7 Days" 20
    (A, OCT, "within_14_days", None): (105, 106),  # 93 + "8  to 14 Days" 10+2
    (A, OCT, "appointments_per_1000", None): (110, 2000),  # list size 2000 (quin-age ALL/ALL)
    (A, OCT, "appointments", "mode:face-to-face"): (75, None),  # 40+3+20+10+2
    (A, OCT, "appointments", "mode:telephone"): (25, None),
    (A, OCT, "appointments", "mode:video"): (5, None),
    (A, OCT, "appointments", "mode:home-visit"): (1, None),
    (A, OCT, "appointments", "mode:unknown"): (4, None),
    (A, OCT, "appointments", "clinician-type:gp"): (74, None),  # 40+3+25+5+1
    (A, OCT, "appointments", "clinician-type:other-practice-staff"): (32, None),  # 20+10+2
    (A, OCT, "appointments", "clinician-type:unknown"): (4, None),
    (A, OCT, "appointments", "category:General Consultation Acute"): (43, None),
    (A, OCT, "appointments", "category:Clinical Triage"): (25, None),
    (A, OCT, "appointments", "category:Planned Clinics"): (32, None),
    (A, OCT, "appointments", "category:General Consultation Routine"): (5, None),
    (A, OCT, "appointments", "category:Unmapped"): (4, None),
    (A, OCT, "appointments", "category:Home Visit"): (1, None),
    # Y80001 November: 30 same day attended, 6 "22  to 28 Days" attended, 4 "More than 28 Days" DNA
    (A, NOV, "appointments", None): (40, None),
    (A, NOV, "dna_rate", None): (4, 40),
    (A, NOV, "same_day_share", None): (30, 40),
    (A, NOV, "within_7_days", None): (30, 40),
    (A, NOV, "within_14_days", None): (30, 40),
    (A, NOV, "appointments_per_1000", None): (40, 2000),  # the October snapshot is the nearest
    (A, NOV, "appointments", "mode:telephone"): (30, None),
    (A, NOV, "appointments", "mode:face-to-face"): (10, None),
    (A, NOV, "appointments", "clinician-type:gp"): (40, None),
    (A, NOV, "appointments", "category:Clinical Triage"): (30, None),
    (A, NOV, "appointments", "category:General Consultation Routine"): (10, None),
    # Y80002 October: 7 same day attended, 3 attended with an unknown band; no list size
    (B, OCT, "appointments", None): (10, None),
    (B, OCT, "dna_rate", None): (0, 10),
    (B, OCT, "same_day_share", None): (7, 7),
    (B, OCT, "within_7_days", None): (7, 7),
    (B, OCT, "within_14_days", None): (7, 7),
    (B, OCT, "appointments", "mode:face-to-face"): (7, None),
    (B, OCT, "appointments", "mode:telephone"): (3, None),
    (B, OCT, "appointments", "clinician-type:gp"): (7, None),
    (B, OCT, "appointments", "clinician-type:unknown"): (3, None),
    (B, OCT, "appointments", "category:General Consultation Acute"): (7, None),
    (B, OCT, "appointments", "category:Unmapped"): (3, None),
}


def _by_key(figures: list[NationalFigure]) -> dict[tuple[str, date, str, str | None], NationalFigure]:
    out = {(f.practice_code, f.month, f.metric, f.group): f for f in figures}
    assert len(out) == len(figures), "one figure per practice, month, metric and group"
    return out


def test_every_figure_matches_the_hand_count() -> None:
    figures = read_gpad([GPAD, REGISTERED])
    got = {key: (f.numerator, f.denominator) for key, f in _by_key(figures).items()}
    assert got == EXPECTED
    names = {f.practice_code: f.practice_name for f in figures}
    assert names == {A: "FIXTURE LANE SURGERY", B: "BRIDGE STREET MEDICAL CENTRE, FIXTURE"}
    by_key = _by_key(figures)
    assert figure_value(by_key[(A, OCT, "dna_rate", None)]) == pytest.approx(5 / 106)
    assert figure_value(by_key[(A, OCT, "appointments_per_1000", None)]) == pytest.approx(55.0)
    assert figure_value(by_key[(A, OCT, "appointments", None)]) == 110
    # GPAD cannot give these: none is ever made, and the report says why
    assert not {f.metric for f in figures} & set(NOT_FROM_GPAD)


def test_the_mix_adds_up_to_the_total() -> None:
    counts = group_counts(read_gpad([GPAD]))
    for (code, month, metric, group), total in counts.items():
        if metric == "appointments" and group is None:
            for cut in ("mode", "clinician-type", "category"):
                parts = sum(v for (c, m, met, g), v in counts.items()
                            if (c, m, met) == (code, month, metric) and g and g.startswith(cut + ":"))
                assert parts == total, (code, month, cut)


def test_the_report_names_practices_without_a_list_size_and_what_gpad_cannot_give() -> None:
    figures, report = read_national([GPAD, REGISTERED, ATTRIBUTES])
    assert report.practices == 2 and report.months == [OCT, NOV]
    assert report.rows_rejected == 0 and report.problems == []
    assert report.without_list_size == [B]
    [attributes] = report.attributes  # 65+: 520 of 2000; under 18: 300 + 3/5 of the 100 aged 15-19
    assert attributes == PracticeAttributes(A, 2000, 4, 0.26, attributes.share_under_18, "rural")
    assert attributes.share_under_18 == pytest.approx(0.18)
    assert report.attributes_without_list_size == [B]
    text = "\n".join(report.lines())
    assert "Y80002" in text and "slots_per_1000" in text and "median_days_to_appointment" in text
    print(text)


def test_malformed_rows_are_named_by_file_and_line_and_counted(tmp_path: Path) -> None:
    lines = GPAD.read_text(encoding="utf-8").splitlines()
    header, good = lines[0], lines[1]
    bad = [
        good.replace(",40,Attended", ",forty,Attended"),  # line 3: the count
        good.replace(",40,Attended", ",40,Cancelled"),  # line 4: the status
        good.replace("Y80001", ""),  # line 5: no practice
        good.replace("Same Day", "Next Week"),  # line 6: the band
        good + ",surplus",  # line 7: one field too many
        good.replace("01OCT2025", "sometime"),  # line 8: the month
        good.replace("Face-to-Face", "Carrier Pigeon"),  # line 9: the mode
    ]
    path = tmp_path / "Practice_Level_Crosstab_Broken.csv"
    path.write_text("\n".join([header, good, *bad, good]) + "\n", encoding="utf-8")
    read = read_gpad_counts([path])
    assert read.rows_rejected == len(bad)
    assert [p.line for p in read.problems] == [3, 4, 5, 6, 7, 8, 9]
    assert all(p.file == str(path) for p in read.problems)
    reasons = [p.reason for p in read.problems]
    assert "forty" in reasons[0] and "Cancelled" in reasons[1] and "GP_CODE" in reasons[2]
    assert "Next Week" in reasons[3] and "fields" in reasons[4] and "sometime" in reasons[5]
    assert "Carrier Pigeon" in reasons[6]
    assert read.months[(A, OCT)].total == 80  # the two good rows, nothing from the bad ones
    print("\n".join(str(p) for p in read.problems))


def test_bom_case_single_spaces_and_windows_1252_read_the_same(tmp_path: Path) -> None:
    text = GPAD.read_text(encoding="utf-8")
    header, *rows = text.splitlines()
    variant = ",".join(h.lower() for h in header.split(",")) + "\r\n"
    variant += "\r\n".join(r.replace("8  to 14", "8 to 14").replace("15  to 21 Days", "15 TO 21 DAYS") for r in rows)
    variant = variant.replace("FIXTURE LANE SURGERY", "FIXTURE LANE SURGERY \u2013 CAF\u00c9")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + variant.encode("utf-8") + b"\r\n\r\n")  # and Excel's blank line at the end
    cp1252 = tmp_path / "cp1252.csv"
    cp1252.write_bytes(variant.encode("cp1252"))
    expected = {k: v for k, v in EXPECTED.items() if k[2] != "appointments_per_1000"}
    for path in (bom, cp1252):
        figures = read_gpad([path])
        assert {k: (f.numerator, f.denominator) for k, f in _by_key(figures).items()} == expected, path.name
        assert {f.practice_name for f in figures if f.practice_code == A} == {"FIXTURE LANE SURGERY – CAFÉ"}


def test_a_sub_icb_file_and_a_stranger_are_refused_by_name(tmp_path: Path) -> None:
    regional = tmp_path / "Regional_CSV_NE.csv"
    regional.write_text("SUB_ICB_LOCATION_CODE,APPOINTMENT_MONTH,APPT_STATUS,HCP_TYPE,APPT_MODE,"
                        "TIME_BETWEEN_BOOK_AND_APPT,COUNT_OF_APPOINTMENTS\n00L,APR2024,Attended,GP,Telephone,"
                        "Same Day,12\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="Regional_CSV_NE.csv.*no GP_CODE"):
        read_gpad([regional])
    stranger = tmp_path / "shopping.csv"
    stranger.write_text("item,price\nbread,1.20\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="shopping.csv.*ITEM, PRICE"):
        read_gpad([stranger])


def test_the_synthetic_files_round_trip(tmp_path: Path) -> None:
    months = demo_months(date(2026, 12, 4))
    files = write_synthetic_gpad(tmp_path / "a", months, count=100, seed=7)
    again = write_synthetic_gpad(tmp_path / "b", months, count=100, seed=7)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files.all]
    assert digest == [hashlib.sha256(p.read_bytes()).hexdigest() for p in again.all], "seeded: same bytes"
    with files.gpad[0].open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:3] == ["APPOINTMENT_MONTH_START_DATE", "GP_CODE", "GP_NAME"]
    figures, report = read_national(files.all)
    assert report.rows_rejected == 0
    assert report.practices == 100 and report.months == months and len(months) == 24
    assert report.without_list_size == [] and len(report.attributes) == 100
    assert all(3000 <= a.list_size <= 25000 and a.imd_decile and a.rurality for a in report.attributes)
    values: dict[str, list[float]] = {}
    for fig in figures:
        if fig.group is None:
            value = figure_value(fig)
            assert value is not None
            values.setdefault(fig.metric, []).append(value)
    assert len(values["appointments"]) == 100 * 24
    dna, same_day = sorted(values["dna_rate"]), sorted(values["same_day_share"])
    median = len(dna) // 2
    assert 0.03 <= dna[median] <= 0.08 and 0.35 <= same_day[median] <= 0.50
    print(f"{report.rows_read:,} rows; DNA {dna[0]:.3f}..{dna[-1]:.3f}; same day {same_day[0]:.3f}..{same_day[-1]:.3f}")


def _write_big(path: Path, repeats: int) -> int:
    """The fixture's rows `repeats` times over (same practices and months, so only the row count grows)."""
    header, *rows = GPAD.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as handle:
        handle.write(header + "\n")
        for _ in range(repeats):
            handle.write("\n".join(rows) + "\n")
    return repeats * len(rows)


def test_a_large_file_reads_in_constant_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small_rows, large_rows = _write_big(small, 1_000), _write_big(large, 10_000)
    peaks = []
    for path in (small, large):
        tracemalloc.start()
        read = read_gpad_counts([path])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert read.rows_rejected == 0
    size_mb = large.stat().st_size / 1e6
    print(f"{small_rows:,} rows: peak {peaks[0] / 1e3:.0f} kB; {large_rows:,} rows ({size_mb:.0f} MB): "
          f"peak {peaks[1] / 1e3:.0f} kB")
    assert read.months[(A, OCT)].total == 110 * 10_000
    assert peaks[1] < peaks[0] + 256_000, "10 times the rows must not need more memory"


class _RecordingStore:
    """Stands in for InsightStore until app/insight/store.py lands (see test_import_into_the_real_store)."""

    def __init__(self) -> None:
        self.figures: list[NationalFigure] = []

    def replace_national(self, figures: object) -> int:
        self.figures = list(figures)  # type: ignore[call-overload]
        return len(self.figures)


def test_import_gpad_hands_the_store_every_figure() -> None:
    store = _RecordingStore()
    report = import_gpad(store, [GPAD, REGISTERED, ATTRIBUTES])
    assert report.figures_stored == len(store.figures) == len(EXPECTED)
    assert report.attributes_stored is None  # this store keeps no attributes


def test_import_into_the_real_store(tmp_path: Path) -> None:
    store_module = pytest.importorskip("app.insight.store")
    store = store_module.InsightStore.open(tmp_path / "insight.duckdb")
    try:
        report = import_gpad(store, [GPAD, REGISTERED, ATTRIBUTES])
        assert report.figures_stored == len(EXPECTED) and report.attributes_stored == 1
        stored = {(f.practice_code, f.month, f.metric, f.group): (f.numerator, f.denominator)
                  for f in store.national()}
        assert stored == EXPECTED
        again = import_gpad(store, [GPAD])  # replaces, never adds
        assert again.figures_stored == len(EXPECTED) - 2  # no list size given: no per 1,000
    finally:
        store.close()
