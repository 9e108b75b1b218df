"""Suppression holds across time when a practice's refresh fails: an attacker who collected every figure before the
failure and every figure after it cannot difference the two to get a hidden cell of the failed practice.

Before the fix the tables were over the practices whose last refresh ended well, so when one failed its cells left
them: the locality total asked after the failure was the total before it less that practice's cells, both shown,
and their difference was the practice's hidden count."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from app.insight.store import InsightStore
from tests.insight.test_suppression import MONTHS, PRACTICES, Atom, _load, _revealed


def _published(store: InsightStore, metric: str, period: str, months: Sequence[str]) -> list[tuple[set[Atom], float]]:
    """Every figure of `metric` for `period` the store shows now: each practice, every subset's total and months,
    as (the atoms (practice, month) it adds, its value). A practice that is not ok adds nothing: it is not shown."""
    shown: list[tuple[set[Atom], float]] = []
    ok = {f.practice_id for f in store.figures(metric, "practice", period) if f.status == "ok"}
    for f in store.figures(metric, "practice", period):
        if f.status == "ok" and not f.suppressed:
            shown.append(({(str(f.practice_id), m) for m in months}, float(f.numerator or 0)))
    for size in range(1, len(PRACTICES) + 1):
        for members in itertools.combinations(PRACTICES, size):
            adds = [p for p in members if p in ok]
            for f in store.figures(metric, "locality", period, practices=list(members)):
                if f.status == "ok" and not f.suppressed and adds:
                    shown.append(({(p, m) for p in adds for m in months}, float(f.numerator or 0)))
    return shown


def test_a_practice_failing_does_not_let_its_hidden_cells_be_differenced(store: InsightStore) -> None:
    counts = {("A", "MARCH", "telephone"): 50, ("B", "MARCH", "telephone"): 60, ("C", "MARCH", "telephone"): 3,
              ("D", "MARCH", "telephone"): 70, ("E", "MARCH", "telephone"): 80}
    counts.update({(p, "FEB", "telephone"): n for p, n in zip(PRACTICES, (40, 45, 20, 30, 35), strict=True)})
    _load(store, counts)
    atoms = [(p, m) for p in PRACTICES for m in MONTHS.values()]
    before = _published(store, "appointments", "2026-03", ["2026-03"])
    [total] = store.figures("appointments", "locality", "2026-03")
    assert total.numerator == 263 and not _revealed(before, atoms, ("C", "2026-03"))

    for failing in ("A", "C"):  # the practice with the small count, and the one hidden to protect it
        store.set_status(failing, failing, "failed", f"{failing} did not answer")
        after = _published(store, "appointments", "2026-03", ["2026-03"])
        shown = {f.practice_id: f for f in store.figures("appointments", "practice", "2026-03")}
        assert shown[failing].status == "failed" and shown[failing].error == f"{failing}: {failing} did not answer"
        assert not _revealed([*before, *after], atoms, ("C", "2026-03")), failing
        assert not _revealed([*before, *after], atoms, ("A", "2026-03")), failing
        # the others' figures stand: B, D and E as before
        assert {p: shown[p].numerator for p in "BDE"} == {"B": 60, "D": 70, "E": 80}
        store.set_status(failing, failing, "ok")


def test_a_practice_that_never_refreshed_well_is_in_no_table(store: InsightStore) -> None:
    """Failing at its first refresh, a practice has no rows: the tables are the others', as before."""
    _load(store, {("A", "MARCH", "telephone"): 50, ("B", "MARCH", "telephone"): 60})
    store.set_status("N", "New Practice", "failed", "New Practice did not answer")
    rows = {r.id: r for r in store.practices()}
    assert rows["A"].tabled and not rows["N"].tabled and not rows["N"].has_rows
    [total] = [f for f in store.figures("appointments", "locality", "2026-03") if f.status == "ok"]
    assert total.numerator == 110 and not total.suppressed
