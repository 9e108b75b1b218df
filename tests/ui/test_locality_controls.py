"""The Locality view's query bar never asks for a figure crossing mode, clinician type and category at once: the
store refuses it (its suppression is kept in two-way tables), so the bar greys the third choice and says why."""

from __future__ import annotations

from app.core.model import Practice
from app.ui.locality.controls import QueryBar

PRACTICES = [Practice(id="riverside", name="Riverside Surgery", ods_code="Y91001", adapter="fhir-r4",
                      base_url="https://riverside.example/fhir")]


def crossed(bar: QueryBar) -> set[str]:
    query = bar.query({})
    assert query is not None
    dims = {"mode", "clinician-type", "category"}
    return ({query.cut} & dims) | {k for k in query.filters if k in dims}


def cut_enabled(bar: QueryBar, dim: str) -> bool:
    return bool(bar.cut.model().item(bar.cut.findData(dim)).isEnabled())  # type: ignore[attr-defined]


def test_two_filters_grey_the_third_filter_and_the_cut_by_it(qtbot) -> None:
    bar = QueryBar(PRACTICES)
    qtbot.addWidget(bar)
    bar.period.addItem("November 2026", "2026-11")
    bar.category.addItem("Clinical Triage", "Clinical Triage")
    assert all(box.isEnabled() for box in (bar.mode, bar.clinician, bar.category))

    bar.mode.setCurrentIndex(bar.mode.findData("telephone"))
    bar.clinician.setCurrentIndex(bar.clinician.findData("gp"))
    assert not bar.category.isEnabled() and "two of mode, clinician type and category" in bar.category.toolTip()
    assert not cut_enabled(bar, "category") and cut_enabled(bar, "mode") and cut_enabled(bar, "practice")
    assert crossed(bar) == {"mode", "clinician-type"}

    bar.clinician.setCurrentIndex(0)  # back to Any: the category is free again
    assert bar.category.isEnabled() and cut_enabled(bar, "category")


def test_a_cut_and_a_filter_grey_the_third_filter(qtbot) -> None:
    bar = QueryBar(PRACTICES)
    qtbot.addWidget(bar)
    bar.period.addItem("November 2026", "2026-11")
    bar.cut.setCurrentIndex(bar.cut.findData("category"))
    bar.mode.setCurrentIndex(bar.mode.findData("video"))
    assert not bar.clinician.isEnabled() and bar.mode.isEnabled() and bar.category.isEnabled()
    assert len(crossed(bar)) <= 2


def test_by_week_a_figure_takes_one_of_mode_clinician_type_and_category(qtbot) -> None:
    """Cross-cuts are by month (the store refuses them by week: its weekly cells crossing two dimensions could be
    set against its months). Switching to weeks with two in use sets the second filter back to Any; by week the
    others are greyed."""
    bar = QueryBar(PRACTICES)
    qtbot.addWidget(bar)
    bar.set_months(["2026-11", "2026-10"], "2026-11")
    bar.mode.setCurrentIndex(bar.mode.findData("telephone"))
    bar.clinician.setCurrentIndex(bar.clinician.findData("gp"))
    assert crossed(bar) == {"mode", "clinician-type"}

    bar.grain.setCurrentIndex(bar.grain.findData("week"))
    query = bar.query({})
    assert query is not None and "-W" in str(query.period)
    assert crossed(bar) == {"mode"} and bar.clinician.currentIndex() == 0
    assert not bar.clinician.isEnabled() and "By week" in bar.clinician.toolTip()
    assert not bar.category.isEnabled() and bar.mode.isEnabled()
    assert not cut_enabled(bar, "clinician-type") and cut_enabled(bar, "practice")

    bar.grain.setCurrentIndex(bar.grain.findData("month"))  # back to months: two may be crossed again
    assert bar.clinician.isEnabled() and bar.category.isEnabled()
