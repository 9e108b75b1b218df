"""Small-number suppression: primary (1-4), secondary along every line, and an attacker who collects every
figure the store will publish (each practice, the locality, every subset of practices, every range of
months, every mode, filtered and not) and tries to work out a hidden count by linear algebra: a hidden cell
is revealed exactly when its unit vector lies in the row space of the published figures' incidence matrix."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from app.insight.measures import Figure
from app.insight.store import InsightStore
from app.insight.suppression import ALL, PRIMARY, SECONDARY, is_small, suppress, verdict, with_totals
from tests.insight._activity import activity, appointments, utc

FEB, MARCH = utc(2026, 2, 10, 9), utc(2026, 3, 10, 9)


# --- the rule on hand-made tables ---------------------------------------------------------------------

def test_primary_is_one_to_four_and_zero_is_shown() -> None:
    assert [is_small(n) for n in (0, 1, 4, 5, None)] == [False, True, True, False, False]
    cube = with_totals([(("A",), 0, 0), (("B",), 7, 0), (("C",), 9, 0)])
    assert suppress(cube) == {}


def test_one_hidden_cell_takes_the_next_smallest_with_it() -> None:
    cube = with_totals([(("A",), 50, 0), (("B",), 60, 0), (("C",), 3, 0), (("D",), 0, 0)])
    assert cube[(ALL,)] == [113, 0]
    # D is 0: hiding it protects nothing (the attacker would still get C = 113 - 50 - 60)
    assert suppress(cube) == {("C",): PRIMARY, ("A",): SECONDARY}


def test_two_hidden_cells_that_add_up_to_under_five_take_a_third() -> None:
    cube = with_totals([(("A",), 1, 0), (("B",), 2, 0), (("C",), 40, 0), (("D",), 90, 0)])
    hidden = suppress(cube)
    assert hidden == {("A",): PRIMARY, ("B",): PRIMARY, ("C",): SECONDARY}


def test_a_line_of_one_hidden_cell_and_zeros_hides_its_total() -> None:
    cube = with_totals([(("A", "x"), 3, 0), (("A", "y"), 0, 0), (("B", "x"), 20, 0), (("B", "y"), 30, 0)])
    hidden = suppress(cube)
    assert hidden[("A", "x")] == PRIMARY
    assert hidden[("A", ALL)] == PRIMARY  # the row total is 3 itself
    # column x: A,x hidden alone -> B,x hidden too; then row B: B,x alone -> B,y; column y: B,y alone -> A,y is
    # 0 (no use), so the column total goes
    assert {("B", "x"), ("B", "y")} <= set(hidden)


def test_a_rate_is_hidden_when_its_denominator_is_small() -> None:
    cube = with_totals([(("A",), 0, 3), (("B",), 10, 40), (("C",), 12, 50)])
    assert suppress(cube) == {("A",): PRIMARY, ("B",): SECONDARY}


def test_a_figure_adding_cells_is_shown_only_when_all_are() -> None:
    hidden = {("u1", ("C",)): PRIMARY}
    assert verdict([("u1", ("C",))], hidden) == PRIMARY
    assert verdict([("u1", ("A",)), ("u1", ("C",))], hidden) == SECONDARY
    assert verdict([("u1", ("A",)), ("u2", ("C",))], hidden) is None


# --- the attacker ---------------------------------------------------------------------------------------

Atom = tuple[str, ...]


def _revealed(published: Sequence[tuple[set[Atom], float]], atoms: Sequence[Atom], target: Atom) -> bool:
    """Whether `target` is a linear combination of the published figures (each a set of atoms it adds)."""
    index = {a: i for i, a in enumerate(atoms)}
    rows = np.zeros((len(published), len(atoms)))
    for r, (members, _) in enumerate(published):
        for atom in members:
            rows[r, index[atom]] = 1
    unit = np.zeros((1, len(atoms)))
    unit[0, index[target]] = 1
    return bool(np.linalg.matrix_rank(np.vstack([rows, unit])) == np.linalg.matrix_rank(rows))


def _load(store: InsightStore, counts: dict[tuple[str, str, str], int], status: str = "fulfilled") -> None:
    """counts[(practice, month start "FEB"/"MARCH", mode)] appointments."""
    by_practice: dict[str, list] = {}
    for (practice, month, mode), n in counts.items():
        start = FEB if month == "FEB" else MARCH
        by_practice.setdefault(practice, []).extend(appointments(n, start=start, status=status, mode=mode))
    for practice, appts in by_practice.items():
        store.apply(activity(practice, appts=appts, list_size=5000))


PRACTICES = ("A", "B", "C", "D", "E")
MONTHS = {"FEB": "2026-02", "MARCH": "2026-03"}


def _publish_practice_month(store: InsightStore, metric: str) -> list[tuple[set[Atom], float]]:
    """Every figure of `metric` the store shows, as (atoms (practice, month) it adds, value)."""
    published: list[tuple[set[Atom], float]] = []
    periods = {"2026-02": ["2026-02"], "2026-03": ["2026-03"], "2026-02..2026-03": ["2026-02", "2026-03"]}

    def keep(figures: list, members: Sequence[str], months: Sequence[str]) -> None:
        for f in figures:
            if f.status == "ok" and not f.suppressed:
                published.append(({(p, m) for p in members for m in months}, f.numerator))

    for period, months in periods.items():
        for f in store.figures(metric, "practice", period):
            keep([f], [str(f.practice_id)], months)
        for size in range(1, len(PRACTICES) + 1):
            for members in itertools.combinations(PRACTICES, size):
                keep(store.figures(metric, "locality", period, practices=list(members)), members, months)
                for f in store.figures(metric, "month", period, practices=list(members)):
                    keep([f], members, [f.period])
    return published


@pytest.mark.parametrize("metric", ["appointments", "appointments_per_1000"])
def test_no_difference_of_published_figures_gives_a_hidden_practice(store: InsightStore, metric: str) -> None:
    counts = {("A", "MARCH", "telephone"): 50, ("B", "MARCH", "telephone"): 60, ("C", "MARCH", "telephone"): 3,
              ("D", "MARCH", "telephone"): 70, ("E", "MARCH", "telephone"): 80}
    counts.update({(p, "FEB", "telephone"): n for p, n in zip(PRACTICES, (40, 45, 20, 30, 35), strict=True)})
    _load(store, counts)
    shown = {f.practice_id: f for f in store.figures(metric, "practice", "2026-03")}
    assert shown["C"].suppressed and shown["C"].suppression == PRIMARY and shown["C"].shown == "<5"
    assert shown["A"].suppressed and shown["A"].suppression == SECONDARY and shown["A"].shown == "suppressed"
    assert not shown["B"].suppressed and shown["B"].numerator == 60
    assert all(v is None for v in (shown["C"].value, shown["C"].numerator, shown["C"].denominator))
    [total] = store.figures(metric, "locality", "2026-03")
    assert total.numerator == 263  # the total is shown: total - B - D - E = A + C = 53, which cannot be split

    published = _publish_practice_month(store, metric)
    atoms = [(p, m) for p in PRACTICES for m in MONTHS.values()]
    assert not _revealed(published, atoms, ("C", "2026-03"))
    assert not _revealed(published, atoms, ("A", "2026-03"))
    assert _revealed(published, atoms, ("B", "2026-03"))  # a shown cell is, of course, derivable
    # the attacker is real: had A's March been shown, C would fall out of the locality total
    assert _revealed([*published, ({("A", "2026-03")}, 50)], atoms, ("C", "2026-03"))
    # and a two-month range for C (20 + 3) would give C's March away with February: it is hidden
    [c_range] = store.figures(metric, "practice", "2026-02..2026-03", practices=["C"])
    assert c_range.suppressed and c_range.suppression == SECONDARY


def test_no_difference_across_modes_and_practices_gives_a_hidden_cell(store: InsightStore) -> None:
    modes = ("face-to-face", "telephone", "video")
    table = {"A": (40, 30, 9), "B": (55, 25, 2), "C": (35, 20, 12), "D": (60, 45, 7)}
    _load(store, {(p, "MARCH", m): n for p, row in table.items() for m, n in zip(modes, row, strict=True) if n})
    practices = tuple(table)
    published: list[tuple[set[Atom], float]] = []

    def keep(figures: list[Figure], atoms_of: Callable[..., Any]) -> None:
        for f in figures:
            if f.status == "ok" and not f.suppressed:
                published.append((atoms_of(f), f.numerator or 0.0))

    for size in range(1, len(practices) + 1):
        for members in itertools.combinations(practices, size):
            chosen = list(members)
            keep(store.figures("appointments", "locality", "2026-03", practices=chosen),
                 lambda f, ms=members: {(p, m) for p in ms for m in modes})
            keep(store.figures("appointments", "mode", "2026-03", practices=chosen),
                 lambda f, ms=members: {(p, f.group) for p in ms})
            for mode in modes:
                keep(store.figures("appointments", "locality", "2026-03", practices=chosen, filters={"mode": mode}),
                     lambda f, ms=members, mo=mode: {(p, mo) for p in ms})
    for mode in modes:
        keep(store.figures("appointments", "practice", "2026-03", filters={"mode": mode}),
             lambda f, mo=mode: {(f.practice_id, mo)})
    keep(store.figures("appointments", "practice", "2026-03"), lambda f: {(f.practice_id, m) for m in modes})

    atoms = [(p, m) for p in practices for m in modes]
    [cell] = store.figures("appointments", "practice", "2026-03", practices=["B"], filters={"mode": "video"})
    assert cell.suppressed and cell.suppression == PRIMARY
    hidden = [a for a in atoms if not _revealed(published, atoms, a)]
    assert ("B", "video") in hidden and len(hidden) >= 4  # B's 2, and the cells that hide it along both lines
    for atom in atoms:
        (p, m) = atom
        [f] = store.figures("appointments", "practice", "2026-03", practices=[p], filters={"mode": m})
        if f.suppressed:
            assert atom in hidden, f"{atom} is hidden but can be worked out from the published figures"


def test_a_rate_with_a_small_denominator_cannot_be_differenced(store: InsightStore) -> None:
    for practice, (fulfilled, noshow) in {"A": (40, 10), "B": (2, 1), "C": (50, 6), "D": (70, 9)}.items():
        store.apply(activity(practice, appts=appointments(fulfilled, start=MARCH, status="fulfilled")
                             + appointments(noshow, start=MARCH, status="noshow")))
    shown = {f.practice_id: f for f in store.figures("dna_rate", "practice", "2026-03")}
    assert shown["B"].suppression == PRIMARY and shown["B"].value is None
    assert shown["A"].suppression == SECONDARY  # the next smallest denominator (50)
    [total] = store.figures("dna_rate", "locality", "2026-03")
    assert (total.numerator, total.denominator) == (26, 188)
    # total - C - D = A + B: (11, 53), which does not split into A and B
    visible = [f for f in shown.values() if not f.suppressed]
    assert {f.practice_id for f in visible} == {"C", "D"}
    [ab] = store.figures("dna_rate", "locality", "2026-03", practices=["A", "B"])
    assert ab.suppressed  # a subset holding a hidden cell is never shown


def test_suppression_cannot_be_bypassed_through_the_interface(store: InsightStore) -> None:
    """Every path that returns a count goes through figures(); none returns a 1-4."""
    _load(store, {("A", "MARCH", "telephone"): 3, ("B", "MARCH", "telephone"): 80})
    for metric in ("appointments", "appointments_per_1000", "dna_rate", "same_day_share", "within_7_days",
                   "median_days_to_appointment"):
        for by in ("practice", "locality", "mode", "clinician-type", "category", "week", "month"):
            for f in store.figures(metric, by, "2026-03"):
                for number in (f.numerator, f.denominator, f.value if metric == "appointments" else None):
                    assert not is_small(number), (metric, by, f)
