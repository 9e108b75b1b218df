"""Small-number suppression: primary (1-4), secondary along every line, and an attacker who collects every
figure the store will publish (each practice, the locality, every subset of practices, every range of
months, every mode, filtered and not) and tries to work out a hidden count by linear algebra: a hidden cell
is revealed exactly when its unit vector lies in the row space of the published figures' incidence matrix."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.insight.measures import Figure
from app.insight.store import InsightStore
from app.insight.suppression import (
    ALL,
    PRIMARY,
    SECONDARY,
    full_table,
    is_small,
    protect,
    suppress,
    verdict,
    with_totals,
)
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


def test_the_exact_check_catches_what_the_line_rule_misses() -> None:
    """A 4 x 4 table where every line holds two hidden cells, yet r1,c3 (2) can be solved for: it bridges
    two loops of hidden cells. protect() finds it by linear algebra and hides one more cell."""
    grid = {"r0": (6, 9, 40, 20), "r1": (20, 2, 0, 2), "r2": (0, 40, 2, 9), "r3": (0, 40, 6, 3)}
    fine = [((r, f"c{j}"), float(n), 0.0) for r, row in grid.items() for j, n in enumerate(row)]
    tables = full_table(fine)
    atoms = [c for c, _, _ in fine]
    by_line_rule = suppress(tables.cube, tables.lines)

    def shown_figures(hidden: dict[tuple[str, ...], str]) -> list[tuple[set[Atom], float]]:
        return [({a for a in atoms if all(x in (ALL, y) for x, y in zip(cell, a, strict=True))}, counts[0])
                for cell, counts in tables.cube.items() if cell not in hidden]

    assert _revealed(shown_figures(by_line_rule), atoms, ("r1", "c3"))
    protected = protect(tables)
    assert set(by_line_rule) < set(protected)
    for atom, n, _ in fine:
        if is_small(n):
            assert not _revealed(shown_figures(protected), atoms, atom), atom


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


def test_cross_cuts_agree_with_the_two_way_tables(store: InsightStore) -> None:
    """Cross-cuts (a mode by clinician type) use the full cross table, suppressed so that every cell it shares
    with the two-way tables is hidden exactly where they hide it; the attacker gets every figure of both."""
    modes, kinds = ("face-to-face", "telephone"), ("gp", "nurse")
    table = {"A": {("face-to-face", "gp"): 40, ("face-to-face", "nurse"): 20, ("telephone", "gp"): 30,
                   ("telephone", "nurse"): 3},
             "B": {("face-to-face", "gp"): 50, ("face-to-face", "nurse"): 25, ("telephone", "gp"): 35,
                   ("telephone", "nurse"): 12},
             "C": {("face-to-face", "gp"): 45, ("face-to-face", "nurse"): 15, ("telephone", "gp"): 28,
                   ("telephone", "nurse"): 9}}
    for practice, cells in table.items():
        appts = [a for (mode, kind), n in cells.items()
                 for a in appointments(n, start=MARCH, status="fulfilled", mode=mode, clinician=kind)]
        store.apply(activity(practice, appts=appts))
    practices = tuple(table)
    atoms = [(p, m, k) for p in practices for m in modes for k in kinds]
    published: list[tuple[set[Atom], float]] = []

    def keep(figures: list[Figure], atoms_of: Callable[..., Any]) -> None:
        for f in figures:
            if f.status == "ok" and not f.suppressed:
                published.append((atoms_of(f), f.numerator or 0.0))

    def where(ps: Sequence[str], mode: str | None, kind: str | None) -> set[Atom]:
        return {(p, m, k) for p in ps for m in modes for k in kinds if mode in (None, m) and kind in (None, k)}

    for size in range(1, len(practices) + 1):
        for members in itertools.combinations(practices, size):
            chosen = list(members)
            keep(store.figures("appointments", "locality", "2026-03", practices=chosen),
                 lambda f, ms=members: where(ms, None, None))
            keep(store.figures("appointments", "mode", "2026-03", practices=chosen),
                 lambda f, ms=members: where(ms, f.group, None))
            keep(store.figures("appointments", "clinician-type", "2026-03", practices=chosen),
                 lambda f, ms=members: where(ms, None, f.group))
            for mode in modes:
                keep(store.figures("appointments", "clinician-type", "2026-03", practices=chosen,
                                   filters={"mode": mode}), lambda f, ms=members, mo=mode: where(ms, mo, f.group))
                keep(store.figures("appointments", "locality", "2026-03", practices=chosen, filters={"mode": mode}),
                     lambda f, ms=members, mo=mode: where(ms, mo, None))
            for kind in kinds:
                keep(store.figures("appointments", "mode", "2026-03", practices=chosen,
                                   filters={"clinician-type": kind}),
                     lambda f, ms=members, ki=kind: where(ms, f.group, ki))
    for mode in modes:
        for kind in kinds:
            keep(store.figures("appointments", "practice", "2026-03", filters={"mode": mode, "clinician-type": kind}),
                 lambda f, mo=mode, ki=kind: where([f.practice_id], mo, ki))
    [small] = store.figures("appointments", "practice", "2026-03", practices=["A"],
                            filters={"mode": "telephone", "clinician-type": "nurse"})
    assert small.suppressed and small.suppression == PRIMARY
    assert not _revealed(published, atoms, ("A", "telephone", "nurse"))
    # the same cell through the two ways of asking for it: one answer
    [via_mode] = [f for f in store.figures("appointments", "clinician-type", "2026-03", practices=["A"],
                                           filters={"mode": "telephone"}) if f.group == "nurse"]
    assert via_mode.suppressed
    # and a two-way cell (A's telephone total) is hidden or shown alike in a two-way and a cross query
    [two_way] = store.figures("appointments", "practice", "2026-03", practices=["A"], filters={"mode": "telephone"})
    [summed] = store.figures("appointments", "locality", "2026-03", practices=["A"], filters={"mode": "telephone"})
    assert two_way.suppressed == summed.suppressed
    for f in store.figures("appointments", "clinician-type", "2026-03", filters={"mode": "telephone"}):
        assert not is_small(f.numerator)


def _attack_cross(store: InsightStore, practices: Sequence[str], modes: Sequence[str], kinds: Sequence[str]
                  ) -> tuple[list[tuple[set[Atom], float]], list[Atom]]:
    """Every figure (two-way and cross) over every subset of practices, as atoms (practice, mode, kind)."""
    published: list[tuple[set[Atom], float]] = []

    def keep(figures: list[Figure], members: Sequence[str], mode: str | None, kind: str | None,
             cut: str | None) -> None:
        for f in figures:
            if f.status != "ok" or f.suppressed:
                continue
            m = f.group if cut == "mode" else mode
            k = f.group if cut == "kind" else kind
            atoms = {(p, a, b) for p in members for a in modes for b in kinds if m in (None, a) and k in (None, b)}
            published.append((atoms, f.numerator or 0.0))

    for size in range(1, len(practices) + 1):
        for ms in itertools.combinations(practices, size):
            chosen = list(ms)
            keep(store.figures("appointments", "locality", "2026-03", practices=chosen), ms, None, None, None)
            keep(store.figures("appointments", "mode", "2026-03", practices=chosen), ms, None, None, "mode")
            keep(store.figures("appointments", "clinician-type", "2026-03", practices=chosen), ms, None, None, "kind")
            for mode in modes:
                keep(store.figures("appointments", "clinician-type", "2026-03", practices=chosen,
                                   filters={"mode": mode}), ms, mode, None, "kind")
            for kind in kinds:
                keep(store.figures("appointments", "mode", "2026-03", practices=chosen,
                                   filters={"clinician-type": kind}), ms, None, kind, "mode")
    return published, [(p, m, k) for p in practices for m in modes for k in kinds]


def test_random_cross_tables_hide_every_small_cell(tmp_path: Path, rng_seed: int) -> None:
    """Random small tables (many cells under 5), both kinds of figure, every subset: no cell under 5 can be
    worked out, and no cell is shown by one query and hidden by another."""
    rng = random.Random(rng_seed)
    modes, kinds, practices = ("face-to-face", "telephone"), ("gp", "nurse", "other"), ("A", "B", "C", "D")
    for trial in range(6):
        store = InsightStore.open(tmp_path / f"trial{trial}.duckdb")
        counts = {(p, m, k): rng.choice((0, 1, 2, 3, 6, 9, 15, 30)) for p in practices for m in modes for k in kinds}
        for practice in practices:
            appts = [a for (p, m, k), n in counts.items() if p == practice
                     for a in appointments(n, start=MARCH, status="fulfilled", mode=m, clinician=k)]
            store.apply(activity(practice, appts=appts))
        published, atoms = _attack_cross(store, practices, modes, kinds)
        for atom, n in counts.items():
            if is_small(n):
                assert not _revealed(published, atoms, atom), (trial, atom, counts)
        # consistency: a practice's mode total asked as a two-way cell and as the sum of its cross cells
        for p in practices:
            for m in modes:
                [two_way] = store.figures("appointments", "practice", "2026-03", practices=[p], filters={"mode": m})
                if not two_way.suppressed:
                    assert two_way.numerator == sum(counts[(p, m, k)] for k in kinds)
        store.close()


# --- months against their weeks --------------------------------------------------------------------------

Segment = tuple[str, str]  # (month, ISO week): the days a month and a week share


def _span_test(published: Sequence[set[Atom]], atoms: Sequence[Atom]) -> Callable[[set[Atom]], bool]:
    """Whether the sum of a set of atoms is a linear combination of the published figures."""
    index = {a: i for i, a in enumerate(atoms)}
    rows = np.zeros((len(published), len(atoms)))
    for r, members in enumerate(published):
        rows[r, [index[a] for a in members]] = 1
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    basis = vt[singular > 1e-9 * max(1.0, float(singular[0]) if singular.size else 1.0)]

    def derivable(members: set[Atom]) -> bool:
        vector = np.zeros(len(atoms))
        vector[[index[a] for a in members]] = 1
        return bool(np.abs(vector - basis.T @ (basis @ vector)).max() < 1e-7)
    return derivable


def _publish_months_and_weeks(store: InsightStore, practices: Sequence[str], modes: Sequence[str],
                              kinds: Sequence[str], segments: Sequence[Segment]) -> list[set[Atom]]:
    """Every figure the store shows of the months, ranges of months and ISO weeks touching `segments`, over
    every subset of practices, cut and filtered by mode and by clinician type, as the atoms (practice, mode,
    kind, month, week) it adds."""
    months = sorted({m for m, _ in segments})
    weeks = sorted({w for _, w in segments})
    periods: dict[str, list[Segment]] = {}
    for i, first in enumerate(months):
        for last in months[i:]:
            text = first if first == last else f"{first}..{last}"
            periods[text] = [s for s in segments if first <= s[0] <= last]
    periods.update({w: [s for s in segments if s[1] == w] for w in weeks})
    published: list[set[Atom]] = []

    def keep(figures: list[Figure], members: Sequence[str], segs: Sequence[Segment], mode: str | None,
             kind: str | None, cut: str | None) -> None:
        for f in figures:
            if f.status != "ok" or f.suppressed:
                continue
            m = f.group if cut == "mode" else mode
            k = f.group if cut == "clinician-type" else kind
            ps = [f.practice_id] if cut == "practice" else members
            ss = [s for s in segs if f.period in (s[0], s[1])] if cut in ("week", "month") else segs
            atoms = {(p, a, b, *s) for p in ps for a in modes for b in kinds for s in ss
                     if m in (None, a) and k in (None, b)}
            if atoms:
                published.append(atoms)

    filters: list[tuple[dict[str, str], str | None, str | None]] = [({}, None, None)]
    filters += [({"mode": m}, m, None) for m in modes] + [({"clinician-type": k}, None, k) for k in kinds]
    for period, segs in periods.items():
        keep(store.figures("appointments", "practice", period), practices, segs, None, None, "practice")
        for where, mode, kind in filters:
            keep(store.figures("appointments", "practice", period, filters=where), practices, segs, mode, kind,
                 "practice")
        for size in range(1, len(practices) + 1):
            for members in itertools.combinations(practices, size):
                chosen = list(members)
                for where, mode, kind in filters:
                    keep(store.figures("appointments", "locality", period, practices=chosen, filters=where),
                         members, segs, mode, kind, None)
                    keep(store.figures("appointments", "week", period, practices=chosen, filters=where),
                         members, segs, mode, kind, "week")
                    if "W" not in period:
                        keep(store.figures("appointments", "month", period, practices=chosen, filters=where),
                             members, segs, mode, kind, "month")
                keep(store.figures("appointments", "mode", period, practices=chosen), members, segs, None, None,
                     "mode")
                keep(store.figures("appointments", "clinician-type", period, practices=chosen), members, segs,
                     None, None, "clinician-type")
    return published


def test_no_month_less_its_weeks_gives_a_count_from_1_to_4(tmp_path: Path, rng_seed: int) -> None:
    """Random days from 19 January to 8 March 2026 (ISO weeks 4-10: January's last days, February, March's
    first), many counts under 5, three practices x two modes x two clinician types. The attacker gets every
    figure of every month, range of months and week, over every subset of practices, cut and filtered by mode
    and by clinician type, and solves for anything: no count from 1 to 4 (a practice's mode or clinician type
    or total in a month, a week, or the days a month and a week share) can be worked out."""
    from app.insight.periods import month_key, week_key

    rng = random.Random(rng_seed)
    practices, modes, kinds = ("A", "B", "C"), ("face-to-face", "video"), ("gp", "nurse")
    days = [date(2026, 1, 19) + timedelta(days=i) for i in range(49)]
    segments = sorted({(month_key(d), week_key(d)) for d in days})
    atoms = [(p, m, k, *s) for p in practices for m in modes for k in kinds for s in segments]
    for trial in range(3):
        store = InsightStore.open(tmp_path / f"weeks{trial}.duckdb")
        counts: dict[Atom, int] = dict.fromkeys(atoms, 0)
        for practice in practices:
            appts = []
            for day in days:
                for mode in modes:
                    for kind in kinds:
                        busy = mode == "face-to-face" and kind == "gp"
                        n = rng.choice((0, 6, 9, 14) if busy else (0, 0, 0, 0, 1, 1, 2, 3))
                        if n:
                            counts[(practice, mode, kind, month_key(day), week_key(day))] += n
                            appts += appointments(n, start=utc(day.year, day.month, day.day, 10),
                                                  status="fulfilled", mode=mode, clinician=kind)
            store.apply(activity(practice, appts=appts))
            store.set_status(practice, practice, "ok")
        derivable = _span_test(_publish_months_and_weeks(store, practices, modes, kinds, segments), atoms)
        groups: dict[tuple[Any, ...], set[Atom]] = defaultdict(set)
        for atom in atoms:
            p, m, k, month, week = atom
            for unit in ((month, week), (month,), (week,)):
                for key in ((p, m), (p, k), (p,), (m,), (k,), ()):
                    groups[(*unit, *key)].add(atom)
        for key, members in groups.items():
            total = sum(counts[a] for a in members)
            assert not (is_small(total) and derivable(members)), (trial, key, total)
        store.close()
