"""Every measure against a hand count, on DuckDB and PostgreSQL alike (the `store` fixture runs each test on
both). The expected numbers are worked out in the comments from the appointments each test makes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.activity import ActivityAppointment
from app.insight.measures import MEASURE_SQL, MEASURES, Figure
from app.insight.store import InsightStore
from tests.insight._activity import activity, appointments, slots, utc

MARCH = utc(2026, 3, 10, 9, 0)  # a Tuesday in ISO week 2026-W11, GMT


def _load_two_practices(store: InsightStore) -> None:
    # P1, list 2000. Counted: 10 fulfilled (booked same day) + 6 noshow (3 days before) + 5 booked (10 days
    # before) + 5 arrived (no creation time) = 26; 5 cancelled and 1 entered-in-error are not counted.
    p1 = (appointments(10, start=MARCH, status="fulfilled", created_days_before=0)
          + appointments(6, start=MARCH, status="noshow", created_days_before=3)
          + appointments(5, start=MARCH, status="booked", created_days_before=10)
          + appointments(5, start=MARCH, status="arrived", created_days_before=None)
          + appointments(5, start=MARCH, status="cancelled", created_days_before=0)
          + appointments(1, start=MARCH, status="entered-in-error", created_days_before=0))
    # slots: 20 busy + 10 free bookable; 5 busy-unavailable and 5 busy-tentative are not
    p1_slots = (slots(20, start=MARCH, status="busy") + slots(10, start=MARCH, status="free")
                + slots(5, start=MARCH, status="busy-unavailable") + slots(5, start=MARCH, status="busy-tentative"))
    store.apply(activity("P1", appts=p1, slot_list=p1_slots, list_size=2000))
    # P2, list 5000: 8 telephone/nurse/Planned Clinics fulfilled booked 1 day before, 7 face-to-face/gp noshow
    # booked the same day, 6 video/pharmacist fulfilled booked 20 days before = 21 counted
    p2 = (appointments(8, start=MARCH, status="fulfilled", created_days_before=1, mode="telephone",
                       clinician="nurse", category="Planned Clinics")
          + appointments(7, start=MARCH, status="noshow", created_days_before=0)
          + appointments(6, start=MARCH, status="fulfilled", created_days_before=20, mode="video",
                         clinician="pharmacist"))
    p2_slots = slots(10, start=MARCH, status="busy") + slots(15, start=MARCH, status="free")
    store.apply(activity("P2", appts=p2, slot_list=p2_slots, list_size=5000))


def _by(figures: list[Figure], key: str) -> dict[str | None, Figure]:
    return {getattr(f, key): f for f in figures}


EXPECTED_PRACTICE: dict[str, dict[str, tuple[float, float | None, float | None]]] = {
    # metric: {practice: (value, numerator, denominator)}
    "appointments": {"P1": (26, 26, None), "P2": (21, 21, None)},
    "appointments_per_1000": {"P1": (13.0, 26, 2000), "P2": (4.2, 21, 5000)},
    "dna_rate": {"P1": (37.5, 6, 16), "P2": (33.33, 7, 21)},
    "same_day_share": {"P1": (47.62, 10, 21), "P2": (33.33, 7, 21)},
    "within_7_days": {"P1": (76.19, 16, 21), "P2": (71.43, 15, 21)},
    "within_14_days": {"P1": (100.0, 21, 21), "P2": (71.43, 15, 21)},
    # P1: 0 x10, 3 x6, 10 x5 -> the 11th of 21 is 3; P2: 0 x7, 1 x8, 20 x6 -> the 11th is 1
    "median_days_to_appointment": {"P1": (3.0, None, 21), "P2": (1.0, None, 21)},
    "slots_per_1000": {"P1": (15.0, 30, 2000), "P2": (5.0, 25, 5000)},
    "utilisation": {"P1": (66.67, 20, 30), "P2": (40.0, 10, 25)},
}
EXPECTED_LOCALITY: dict[str, tuple[float, float | None, float | None]] = {
    "appointments": (47, 47, None),
    "appointments_per_1000": (6.71, 47, 7000),
    "dna_rate": (35.14, 13, 37),
    "same_day_share": (40.48, 17, 42),
    "within_7_days": (73.81, 31, 42),
    "within_14_days": (85.71, 36, 42),
    # 0 x17, 1 x8, 3 x6, 10 x5, 20 x6: the 21st and 22nd of 42 are both 1
    "median_days_to_appointment": (1.0, None, 42),
    "slots_per_1000": (7.86, 55, 7000),
    "utilisation": (54.55, 30, 55),
}


def test_the_measures_are_the_issues_nine() -> None:
    assert set(MEASURES) == set(MEASURE_SQL) == set(EXPECTED_LOCALITY)
    for m in MEASURES.values():
        assert m.definition and m.title and m.unit in ("count", "per 1,000 patients", "%", "days")


@pytest.mark.parametrize("metric", sorted(EXPECTED_PRACTICE))
def test_each_measure_by_practice_and_for_the_locality(store: InsightStore, metric: str) -> None:
    _load_two_practices(store)
    by_practice = _by(store.figures(metric, "practice", "2026-03"), "practice_id")
    assert set(by_practice) == {"P1", "P2"}
    for pid, (value, numerator, denominator) in EXPECTED_PRACTICE[metric].items():
        f = by_practice[pid]
        assert (f.status, f.suppressed, f.period, f.group) == ("ok", False, "2026-03", None)
        assert f.value == pytest.approx(value, abs=0.005), pid
        assert (f.numerator, f.denominator) == (numerator, denominator), pid
    [total] = store.figures(metric, "locality", "2026-03")
    value, numerator, denominator = EXPECTED_LOCALITY[metric]
    assert total.practice_id is None
    assert total.value == pytest.approx(value, abs=0.005)
    assert (total.numerator, total.denominator) == (numerator, denominator)


def test_mix_by_mode_clinician_type_and_category(store: InsightStore) -> None:
    _load_two_practices(store)
    by_mode = {f.group: f.value for f in store.figures("appointments", "mode", "2026-03")}
    assert by_mode == {"face-to-face": 33, "telephone": 8, "video": 6}
    by_type = {f.group: f.value for f in store.figures("appointments", "clinician-type", "2026-03")}
    assert by_type == {"gp": 33, "nurse": 8, "pharmacist": 6}
    by_category = {f.group: f.value for f in store.figures("appointments", "category", "2026-03")}
    assert by_category == {"General Consultation Routine": 39, "Planned Clinics": 8}
    dna = {f.group: (f.numerator, f.denominator) for f in store.figures("dna_rate", "mode", "2026-03")}
    assert dna == {"face-to-face": (13, 23), "telephone": (0, 8), "video": (0, 6)}
    # zoom: one practice by clinician type, and a filter
    p2 = {f.group: f.value for f in store.figures("appointments", "clinician-type", "2026-03", practices=["P2"])}
    assert p2 == {"gp": 7, "nurse": 8, "pharmacist": 6}
    phone = _by(store.figures("appointments", "practice", "2026-03", filters={"mode": "telephone"}), "practice_id")
    assert (phone["P1"].value, phone["P2"].value) == (0, 8)
    # a cross-cut: the face-to-face appointments by clinician type (P1 26 gp; P2 7 gp)
    cross = {f.group: f.value for f in store.figures("appointments", "clinician-type", "2026-03",
                                                     filters={"mode": "face-to-face"})}
    assert cross == {"gp": 33, "nurse": 0, "pharmacist": 0}  # 0: a cut value seen elsewhere, none here
    medians = {f.group: f.value for f in store.figures("median_days_to_appointment", "mode", "2026-03")}
    # face-to-face: 0 x17, 3 x6, 10 x5: the 14th and 15th of 28 are 0
    assert medians == {"face-to-face": 0.0, "telephone": 1.0, "video": 20.0}


def test_weeks_and_months(store: InsightStore) -> None:
    _load_two_practices(store)
    weeks = {f.period: f.value for f in store.figures("appointments", "week", "2026-03")}
    # the weeks whose Monday is in March 2026: 2, 9, 16, 23 and 30 March
    assert weeks == {"2026-W10": 0, "2026-W11": 47, "2026-W12": 0, "2026-W13": 0, "2026-W14": 0}
    months = {f.period: f.value for f in store.figures("appointments", "month", "2026-02..2026-04")}
    assert months == {"2026-02": 0, "2026-03": 47, "2026-04": 0}
    [ranged] = store.figures("dna_rate", "locality", "2026-01..2026-06")
    assert (ranged.numerator, ranged.denominator, ranged.period) == (13, 37, "2026-01..2026-06")
    [week] = store.figures("appointments", "locality", "2026-W11")
    assert week.value == 47


def test_local_dates_decide_the_month_and_same_day(store: InsightStore) -> None:
    """BST began on 29 March 2026: 23:30 UTC on 31 March is 00:30 on 1 April in London."""
    april_first = utc(2026, 3, 31, 23, 30)
    late = [ActivityAppointment(f"x{i}", "fulfilled", april_first + timedelta(minutes=i),
                                april_first - timedelta(minutes=40) + timedelta(minutes=i),  # 22:50 UTC, 23:50 BST
                                "telephone", "gp", "General Consultation Routine") for i in range(5)]
    # 00:30 GMT on 1 March is 1 March in London too (GMT = UTC in winter)
    early = appointments(6, start=utc(2026, 3, 1, 0, 30), status="fulfilled", created_days_before=0)
    store.apply(activity("P3", appts=late + early, list_size=1000))
    months = {f.period: f.value for f in store.figures("appointments", "month", "2026-03..2026-04")}
    assert months == {"2026-03": 6, "2026-04": 5}
    [april] = store.figures("same_day_share", "practice", "2026-04")
    assert (april.numerator, april.denominator) == (0, 5)  # booked 23:50 on 31 March: not the same local day
    [march] = store.figures("same_day_share", "practice", "2026-03")
    assert (march.numerator, march.denominator) == (6, 6)


def test_not_provided_and_failed_practices_are_named_never_zero(store: InsightStore) -> None:
    _load_two_practices(store)
    store.set_status("P4", "Practice Four", "not provided")
    store.set_status("P5", "Practice Five", "failed", "timed out after 30 s")
    for metric in MEASURES:
        for by in ("practice", "locality", "mode", "month"):
            figures = store.figures(metric, by, "2026-03")
            named = _by([f for f in figures if f.status != "ok"], "practice_id")
            assert named["P4"].status == "not provided" and named["P4"].value is None
            assert "Practice Four" in (named["P4"].error or "")
            assert named["P5"].status == "failed" and named["P5"].value is None
            assert "Practice Five" in (named["P5"].error or "") and "timed out" in (named["P5"].error or "")
    figures = store.figures("appointments", "locality", "2026-03", practices=["P1", "P2", "P4", "P5"])
    assert [(f.practice_id, f.value, f.status) for f in figures] == [
        (None, 47, "ok"), ("P4", None, "not provided"), ("P5", None, "failed")]  # the others' figures stand
    [unknown] = store.figures("appointments", "practice", "2026-03", practices=["P9"])
    assert unknown.status == "failed" and "never refreshed" in (unknown.error or "")


def test_per_1000_without_a_list_size_is_not_provided(store: InsightStore) -> None:
    _load_two_practices(store)
    store.apply(activity("P6", appts=appointments(5, start=MARCH, status="fulfilled"), list_size=None))
    figures = _by(store.figures("appointments_per_1000", "practice", "2026-03"), "practice_id")
    assert figures["P6"].status == "not provided" and figures["P6"].value is None
    assert "list size" in (figures["P6"].error or "")
    locality = store.figures("appointments_per_1000", "locality", "2026-03")
    ok = [f for f in locality if f.status == "ok"]
    assert [(f.numerator, f.denominator) for f in ok] == [(47, 7000)]  # P6 in neither
    assert [f.practice_id for f in locality if f.status == "not provided"] == ["P6"]
    [count] = store.figures("appointments", "locality", "2026-03")
    assert count.value == 52  # the count itself includes P6


def test_unknown_names_are_refused(store: InsightStore) -> None:
    with pytest.raises(ValueError, match="unknown measure"):
        store.figures("dna", "practice", "2026-03")
    with pytest.raises(ValueError, match="unknown cut"):
        store.figures("dna_rate", "ward", "2026-03")
    with pytest.raises(ValueError, match="not a month"):
        store.figures("dna_rate", "practice", "2026-13")
    with pytest.raises(ValueError, match="unknown filter"):
        store.figures("dna_rate", "practice", "2026-03", filters={"ward": "x"})
