"""Small-number suppression for the locality view: counts 1-4 hidden, and the cells that would give them away.

The rule (README "Locality insight"):

1. Primary: a cell whose numerator or denominator is 1 to 4 is shown as "<5" (0 is shown: it discloses
   nobody). A rate or share whose numerator or denominator is 1-4 is hidden with it.
2. Secondary: the cells of one time unit (a month, or an ISO week) form three tables over all the store's
   practices (not only those asked for): practice x mode, practice x clinician type, practice x category,
   joined at the totals they share (each practice's, the locality's); a practice with none of a value has a
   cell of 0 there. Along each line of them (the cells that add up to one total: the practices of a mode,
   the modes of a practice, the practices' totals) a hidden cell must not be derivable from the total and
   the shown cells: a line holds either no hidden cell, or at least two whose summed numerator and
   denominator are not 1-4. Where it does not, the next smallest non-zero cell of the line is hidden too
   ("suppressed"; an empty cell when no other is left: a hidden 0 protects as well), repeated until every
   line holds; a total is hidden only when nothing else in its line can be. Then an exact check: no cell
   under 5 may be a linear combination of the shown cells and the sums known to be equal (a practice's
   modes and its categories add up to the same total); the line rule alone misses a hidden cell that
   bridges two loops of others, so while one is exposed the smallest shown cell whose hiding covers it is
   hidden too. (Bounds from counts being non-negative are not checked.)
3. A figure that adds several cells (a range of months, a subset of practices, the practices that gave a
   list size) is shown only if every cell it adds is shown: it can then be worked out from shown cells
   anyway, so it reveals nothing new; otherwise it is hidden as "suppressed". This is what stops the
   differencing attack: the locality total minus the shown practices, two overlapping ranges, or two sets
   of practices differing by one.

The suppression of a time unit's tables depends only on those tables, never on what was asked, so the
same cell is hidden in every query that shows it. A cross-cut (telephone appointments by clinician
type) uses that unit's cross table of the two dimensions (`cross_table`), protected so that it agrees with
the two-way tables on every cell they share: their decisions stand, and only cells crossing both dimensions
are added. A cut crossing all three dimensions is not offered (its cells are nearly all under 5).

Months and weeks together (`calendar_unit`, `protect_week`, `protect_month`): a month less its whole ISO weeks
is the days it shares with the weeks that straddle its edges, and a straddling week less one month's days is
the other's. So a week's cell whose days in either month are 1-4 is hidden and protected as a small one, and a
month is checked exactly with its days in each week as separate unknowns, everything outside the month taken
as known: no cell under 5 of the month, no 1-4 of its days in one week, and no 1-4 sum of a line's hidden
cells there can be solved for from the month's and the weeks' shown cells; the month hides more until so
(never a cell the weeks give anyway). This covers ranges of months too (a range adds shown months only).

A practice whose refresh fails stays in the tables (store_rows.PracticeStatusRow.tabled): its cells do not leave
them, so no figure asked after the failure differs from one asked before it by its hidden cells.

A cross-cut is by month or a range of months, never by week (InsightStore.figures refuses it): its cross tables
are protected a month at a time, so its weeks are never published to be set against its months.

Not covered: counts that change between refreshes; stated in the README.

The line rule is the usual one of NHS statistical publications; the exact check is what makes it hold
against a differencing attacker (tests/insight/test_suppression.py plays one). It is not an optimal
(fewest cells hidden) protection: it errs on hiding more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

ALL = "*"
#: the dimension of a practice's or the locality's total in `linked_tables`
TOTAL = "*"
PRIMARY = "primary"
SECONDARY = "secondary"
#: named with this file's source in the fingerprint of protected tables kept in the store
#: (app/insight/kept_protections.py): a change to which cells are hidden is never answered by tables kept before it
PROTECTION_VERSION = "1"

Coord = tuple[str, ...]
#: [numerator, denominator] of a cell (denominator 0 for a plain count)
Counts = list[float]


def is_small(count: float | None) -> bool:
    """A count from 1 to 4: never shown."""
    return count is not None and 1 <= count <= 4


def with_totals(fine: Iterable[tuple[Coord, float, float]]) -> dict[Coord, Counts]:
    """The table of fine cells (one coordinate per dimension) with every total added (`ALL` in a dimension)."""
    cube: dict[Coord, Counts] = {}
    for coord, numerator, denominator in fine:
        for combo in product(*((value, ALL) for value in coord)):
            cell = cube.get(combo)
            if cell is None:
                cube[combo] = [numerator, denominator]
            else:
                cell[0] += numerator
                cell[1] += denominator
    return cube


Line = tuple[list[Coord], Coord]  # the cells that add up to a total (the total among them), and the total


def _hypercube_lines(cube: Mapping[Coord, Counts]) -> list[Line]:
    """Each line of a full table with totals: the cells that differ only in dimension d, and their total."""
    lines: dict[tuple[int, Coord], list[Coord]] = defaultdict(list)
    for coord in cube:
        for dim in range(len(coord)):
            lines[(dim, coord[:dim] + (ALL,) + coord[dim + 1:])].append(coord)
    return [(members, key[1]) for key, members in lines.items()]


@dataclass
class Tables:
    """One time unit's cells, the lines that add up, and what the cells are made of: each cell's fine
    variables (the finest counts, which nobody is shown unless their cell is) and the sums known to be
    equal (a practice's total is the sum of its modes and of its categories alike)."""

    cube: dict[Coord, Counts]
    lines: list[Line]
    parts: dict[Coord, list[int]]  # cell -> the fine variables it adds
    variables: int
    links: list[dict[int, float]] = field(default_factory=list)  # sum of coefficient x variable = 0, known


def full_table(fine: Iterable[tuple[Coord, float, float]]) -> Tables:
    """A full cross table (`with_totals`) with its lines and parts. Combinations with no record are cells too
    (0): a figure shows them as 0, so they are known, and hiding one can protect another."""
    given = {coord: (numerator, denominator) for coord, numerator, denominator in fine}
    axes = [sorted({coord[i] for coord in given}) for i in range(len(next(iter(given), ())))]
    fine = [(coord, *given.get(coord, (0.0, 0.0))) for coord in product(*axes)] if given else []
    cube: dict[Coord, Counts] = {}  # as with_totals makes it, with each cell's parts in the same pass
    parts: dict[Coord, list[int]] = {}
    for index, (coord, numerator, denominator) in enumerate(fine):
        for combo in product(*((value, ALL) for value in coord)):
            cell = cube.get(combo)
            if cell is None:
                cube[combo] = [numerator, denominator]
                parts[combo] = [index]
            else:
                cell[0] += numerator
                cell[1] += denominator
                parts[combo].append(index)
    return Tables(cube, _hypercube_lines(cube), parts, len(fine))


def linked_tables(rows: Iterable[tuple[str, str, str, float, float]]) -> Tables:
    """One time unit's practice x mode, practice x clinician type and practice x category tables, joined at
    their shared totals, as cells keyed (dimension, practice, value) and the lines that add up.

    `rows` are (dimension, practice, value, numerator, denominator), every record counted once in each
    dimension. A practice's total is (TOTAL, practice, ALL) and the locality's (TOTAL, ALL, ALL): one cell
    shared by the three tables, so hiding it in one hides it in all."""
    cube: dict[Coord, Counts] = {}
    parts: dict[Coord, list[int]] = defaultdict(list)
    by_dim_practice: dict[tuple[str, str], list[int]] = defaultdict(list)

    def add(key: Coord, numerator: float, denominator: float, variable: int) -> None:
        cell = cube.setdefault(key, [0.0, 0.0])
        cell[0] += numerator
        cell[1] += denominator
        parts[key].append(variable)

    given = {(dim, practice, value): (numerator, denominator) for dim, practice, value, numerator, denominator in rows}
    values_of: dict[str, set[str]] = defaultdict(set)
    for dim, _, value in given:
        values_of[dim].add(value)
    everyone = sorted({practice for _, practice, _ in given})
    # a practice with none of a value is a cell too (0): shown as 0, so known, and able to protect another
    filled = [(dim, practice, value, *given.get((dim, practice, value), (0.0, 0.0)))
              for dim in sorted(values_of) for practice in everyone for value in sorted(values_of[dim])]
    dims: dict[str, set[str]] = defaultdict(set)
    practices: set[str] = set()
    first_dim: str | None = None
    variables = 0
    for dim, practice, value, numerator, denominator in filled:
        first_dim = first_dim or dim
        dims[dim].add(value)
        practices.add(practice)
        add((dim, practice, value), numerator, denominator, variables)
        add((dim, ALL, value), numerator, denominator, variables)
        by_dim_practice[(dim, practice)].append(variables)
        if dim == first_dim:
            add((TOTAL, practice, ALL), numerator, denominator, variables)
            add((TOTAL, ALL, ALL), numerator, denominator, variables)
        variables += 1
    lines: list[Line] = []
    links: list[dict[int, float]] = []
    ordered = sorted(practices)
    for dim, values in sorted(dims.items()):
        for practice in [*ordered, ALL]:
            members = [(dim, practice, v) for v in sorted(values) if (dim, practice, v) in cube]
            lines.append(([*members, (TOTAL, practice, ALL)], (TOTAL, practice, ALL)))
        for value in sorted(values):
            members = [(dim, p, value) for p in ordered if (dim, p, value) in cube]
            lines.append(([*members, (dim, ALL, value)], (dim, ALL, value)))
        if dim != first_dim and first_dim is not None:
            for practice in ordered:
                link = {v: 1.0 for v in by_dim_practice[(first_dim, practice)]}
                link.update({v: -1.0 for v in by_dim_practice[(dim, practice)]})
                links.append(link)
    if practices:
        lines.append(([*((TOTAL, p, ALL) for p in ordered), (TOTAL, ALL, ALL)], (TOTAL, ALL, ALL)))
    return Tables(cube, lines, dict(parts), variables, links)


def cross_table(fine: Sequence[tuple[Coord, float, float]], dims: Sequence[str], two_way: Mapping[Coord, str]
                ) -> tuple[Tables, dict[Coord, str]]:
    """A unit's cross table of two group dimensions (practice x `dims[0]` x `dims[1]`, with every total), for
    a cross-cut, protected in agreement with the unit's linked two-way tables, whose hidden cells are
    `two_way` ((dimension, practice, value) as `linked_tables` keys them): the cells it shares with them (a
    practice's or the locality's total, a mode of a practice, ...) are hidden exactly where those tables
    hide them, and only cells crossing both dimensions are chosen as complements. `fine` cells are
    (practice, value of dims[0], value of dims[1])."""
    decided: dict[Coord, str] = {}
    for (dim, practice, value), why in two_way.items():
        if dim != TOTAL and dim not in dims:
            continue
        coord = [practice] + [ALL] * len(dims)
        if dim != TOTAL:
            coord[1 + list(dims).index(dim)] = value
        decided[tuple(coord)] = why
    table = full_table(fine)
    # settled: a cell crossing at most one of the dimensions (ALL in all but one of them) is a two-way table's
    return table, protect(table, decided=decided, settled=lambda c: c[1:].count(ALL) >= len(c) - 2)


def protect(tables: Tables, *, decided: Mapping[Coord, str] | None = None,
            settled: Callable[[Coord], bool] | None = None, sensitive: Iterable[Coord] = (),
            parts: Sequence[Mapping[Coord, Counts]] = ()) -> dict[Coord, str]:
    """The hidden cells of `tables`: `suppress`'s line rule first, then an exact check that no cell under 5 is
    a linear combination of the shown cells and the known equal sums (the per-line rule alone misses some:
    a hidden cell that bridges two others' complements can be solved for); while one is, the smallest
    shown cell whose hiding stops it is hidden too, nearest first (the cell's lines, then the rest).

    `sensitive`: cells of 5 or more that are hidden (SECONDARY) and protected as a cell under 5 is (a week's
    cell whose days in one of its months are 1-4); `parts`: the same cells counted in parts of the unit (a
    week's days in each month), whose hidden sums along a line must not be 1-4 either."""
    sensitive = set(sensitive)
    first = {c: PRIMARY if is_small(tables.cube[c][0]) or is_small(tables.cube[c][1]) else SECONDARY
             for c in sensitive}
    hidden = suppress(tables.cube, tables.lines, decided={**first, **(decided or {})}, settled=settled, parts=parts)
    if not sensitive and not any(why == PRIMARY for why in hidden.values()):
        return hidden
    cells = sorted(tables.cube)
    matrix = np.zeros((len(cells), max(1, tables.variables)))
    for row, cell in enumerate(cells):
        matrix[row, tables.parts[cell]] = 1.0
    links = np.zeros((len(tables.links), matrix.shape[1]))
    for row, link in enumerate(tables.links):
        for variable, coefficient in link.items():
            links[row, variable] = coefficient
    row_of = {cell: row for row, cell in enumerate(cells)}
    #: each cell's lines' cells (itself among them: only shown ones are taken from it), made when first needed
    peers: dict[Coord, list[Coord]] = defaultdict(list)

    #: the one fine variable of each cell that is one (shown, it gives that variable outright)
    single = {cell: tables.parts[cell][0] for cell in cells if len(tables.parts[cell]) == 1}

    def revealed() -> list[Coord]:
        shown_cells = [c for c in cells if c not in hidden]
        targets = [c for c in cells if hidden.get(c) == PRIMARY or c in sensitive]
        if not shown_cells and not tables.links:
            return []
        # a variable a shown cell gives outright is known, so a target is derivable exactly when its part over
        # the other variables is a combination of the shown cells' parts over them: the null space is worked
        # out over those alone (the same answer from a far smaller Gram matrix: the hidden fine cells, not all)
        given = {single[c] for c in shown_cells if c in single}
        unknown = [v for v in range(matrix.shape[1]) if v not in given]
        if not unknown:
            return targets
        shown = [row_of[c] for c in shown_cells]
        known = np.vstack([matrix[np.ix_(shown, unknown)], links[:, unknown]])
        # the null space from the eigenvectors of the small Gram matrix (variables x variables): a few ms, where
        # LAPACK's SVD of the cells themselves took tens on a busy machine
        values, vectors = np.linalg.eigh(known.T @ known)
        null = vectors[:, values <= 1e-9 * max(1.0, float(values[-1]) if values.size else 1.0)].T
        if null.shape[0] == 0:
            return targets
        weights = np.abs(matrix[np.ix_([row_of[c] for c in targets], unknown)] @ null.T).max(axis=1)
        return [c for c, w in zip(targets, weights, strict=True) if w < 1e-7]

    def size(c: Coord) -> tuple[bool, float, float, Coord]:
        n, d = tables.cube[c]
        return (n == 0 and d == 0, d, n, c)

    def involved(target: Coord) -> set[Coord]:
        """The shown cells one derivation of `target` uses (a least-squares combination of them): hiding
        one of these is what can cover it."""
        shown = [c for c in cells if c not in hidden]
        if not shown:
            return set()
        known = np.vstack([matrix[[row_of[c] for c in shown]], links])
        weights, *_ = np.linalg.lstsq(known.T, matrix[row_of[target]], rcond=None)
        return {c for c, w in zip(shown, weights[:len(shown)], strict=True) if abs(w) > 1e-9}

    def coverers(target: Coord, candidates: Sequence[Coord]) -> set[Coord]:
        """The candidates whose hiding alone should stop `target` being derivable, from one decomposition
        rather than one a candidate: a shown cell is needed by every derivation only when no other known row
        gives its row (its leverage is 1), and then `target` needs it when it has a part along the one
        direction only that row gives. A prediction, generous where unsure: each is checked by revealed()
        before it is taken, and the other candidates are still tried, in order, when none holds."""
        shown = [c for c in cells if c not in hidden]
        known = np.vstack([matrix[[row_of[c] for c in shown]], links])
        values, vectors = np.linalg.eigh(known.T @ known)
        keep = values > 1e-9 * max(1.0, float(values[-1]) if values.size else 1.0)
        scaled = vectors[:, keep] / np.sqrt(values[keep])
        rows = matrix[[row_of[c] for c in candidates]] @ scaled
        leverage = (rows * rows).sum(axis=1)
        along = rows @ (matrix[row_of[target]] @ scaled)
        return {c for c, h, a in zip(candidates, leverage, along, strict=True) if h > 1 - 1e-4 and abs(a) > 1e-6}

    exposed = revealed()
    if exposed:
        for members, _ in tables.lines:
            for member in members:
                peers[member].extend(members)
    while exposed:
        target = exposed[0]
        used = involved(target)
        near = sorted((c for c in peers[target] if c in used), key=size)
        rest = sorted((c for c in used if c not in set(near)), key=size)
        others = sorted((c for c in cells if c not in hidden and c not in used), key=size)
        order = [c for c in dict.fromkeys([*near, *rest, *others]) if settled is None or not settled(c)]
        likely = coverers(target, order) if order else set()
        # the likely ones first, in the order chosen: the first that holds is the one trying each in turn finds.
        # None likely: no single cell covers it (trying each in turn, a decomposition each, found the same)
        for candidate in [*(c for c in order if c in likely), *(c for c in order if c not in likely)] if likely else []:
            hidden[candidate] = SECONDARY
            still = revealed()
            if target not in still:
                exposed = still
                break
            del hidden[candidate]
        else:  # nothing single protects it (a rare cross-cut): hide everything this table may hide
            hidden.update({c: SECONDARY for c in cells if c not in hidden and (settled is None or not settled(c))})
            break
    return hidden


def suppress(cube: Mapping[Coord, Counts], lines: list[Line] | None = None, *,
             decided: Mapping[Coord, str] | None = None, settled: Callable[[Coord], bool] | None = None,
             parts: Sequence[Mapping[Coord, Counts]] = ()) -> dict[Coord, str]:
    """Which cells of one time unit's table are hidden, and why (PRIMARY or SECONDARY). `lines`: the cells
    that add up to a total (default: every line of a full table with totals, `with_totals`). `decided`: cells
    already hidden by another table that shares them; `settled(cell)`: cells another table already shows or
    hides, never chosen here as a complement (so both tables agree on every cell they share). `parts`: the
    cells counted in parts of the unit (see `protect`): a line's hidden cells must not add up to 1-4 in any."""
    hidden: dict[Coord, str] = dict(decided or {})
    hidden.update({c: PRIMARY for c, (n, d) in cube.items() if (is_small(n) or is_small(d)) and c not in hidden})
    if not hidden:
        return hidden
    if lines is None:
        lines = _hypercube_lines(cube)
    lines_of: dict[Coord, list[int]] = defaultdict(list)
    for index, (members, _) in enumerate(lines):
        for member in members:
            lines_of[member].append(index)
    pending = sorted({index for coord in hidden for index in lines_of[coord]}, reverse=True)
    while pending:
        index = pending.pop()
        members, total = lines[index]
        while any(_exposed(members, total, hidden, counts) for counts in (cube, *parts)):
            choice = _complement(members, total, hidden, cube, settled)
            if choice is None:
                break  # nothing left to hide in this line
            hidden[choice] = SECONDARY
            pending.extend(i for i in lines_of[choice] if i != index)
    return hidden


def _exposed(members: Sequence[Coord], total: Coord, hidden: Mapping[Coord, str],
             cube: Mapping[Coord, Counts]) -> bool:
    inside = [m for m in members if m in hidden]
    if not inside:
        return False
    if len(inside) == 1:
        return True
    if total in hidden:
        return False
    numerator = sum(cube.get(m, (0.0, 0.0))[0] for m in inside)
    denominator = sum(cube.get(m, (0.0, 0.0))[1] for m in inside)
    return is_small(numerator) or is_small(denominator)


def _complement(members: Sequence[Coord], total: Coord, hidden: Mapping[Coord, str],
                cube: Mapping[Coord, Counts], settled: Callable[[Coord], bool] | None = None) -> Coord | None:
    """The next smallest cell of the line to hide: a non-empty one first, else an empty one (a hidden 0 is
    as good a complement when nobody can know it is 0), the total last; None when nothing is left."""
    candidates = [m for m in members if m not in hidden and (settled is None or not settled(m))]
    if not candidates:
        return None
    return min(candidates, key=lambda m: (m == total, cube[m][0] == 0 and cube[m][1] == 0, cube[m][1], cube[m][0], m))


def verdict(cells: Sequence[Hashable], hidden: Mapping[Any, str]) -> str | None:
    """Whether a figure adding `cells` (of one or more units' tables) may be shown: None, or why it is hidden.

    One cell: its own verdict. Several: shown only when every one is shown (rule 3), else SECONDARY.
    """
    reasons = [hidden[c] for c in cells if c in hidden]
    if not reasons:
        return None
    if len(cells) == 1:
        return reasons[0]
    return SECONDARY


# --- months and weeks together ----------------------------------------------------------------------------

#: a unit's row split by the other calendar's unit: (part, dimension, practice, value, numerator, denominator),
#: a week's rows by the month their days fall in, a month's by the ISO week
PartRow = tuple[str, str, str, str, float, float]


@dataclass
class CalendarUnit:
    """One month's or week's linked tables (`linked_tables`) and, for each part of it (a month's days in each
    ISO week, a week's days in each month), the count of every cell in that part alone."""

    tables: Tables
    parts: dict[str, dict[Coord, Counts]]


def calendar_unit(rows: Iterable[PartRow]) -> CalendarUnit:
    """The unit's linked tables from its rows split by part, with each part's counts of every cell."""
    rows = list(rows)
    summed: dict[Coord, Counts] = {}
    for _, dim, practice, value, numerator, denominator in rows:
        cell = summed.setdefault((dim, practice, value), [0.0, 0.0])
        cell[0] += numerator
        cell[1] += denominator
    tables = linked_tables(sorted((dim, practice, value, n, d) for (dim, practice, value), (n, d) in summed.items()))
    cells, matrix = _incidence(tables)
    variable = {key: tables.parts[key][0] for key in summed}
    vectors: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((max(1, tables.variables), 2)))
    for part, dim, practice, value, numerator, denominator in rows:
        vectors[part][variable[(dim, practice, value)]] += (numerator, denominator)
    parts = {}
    for part, vector in sorted(vectors.items()):
        counts = matrix @ vector
        parts[part] = dict(zip(cells, counts.tolist(), strict=True))
    return CalendarUnit(tables, parts)


def protect_week(unit: CalendarUnit) -> dict[Coord, str]:
    """A week's hidden cells. A week that straddles two months is, less its days in one month, the days of the
    other; so that a month's figure less its whole weeks (and a week less a month's leftover days) gives no
    count from 1 to 4, a cell whose days in either month are 1-4 is hidden and protected as one under 5 is
    (the attacker is taken to know the other month's days exactly)."""
    if len(unit.parts) < 2:
        return protect(unit.tables)
    sensitive = {c for part in unit.parts.values() for c, (n, d) in part.items() if is_small(n) or is_small(d)}
    return protect(unit.tables, sensitive=sensitive, parts=list(unit.parts.values()))


def protect_month(unit: CalendarUnit, weeks_hidden: Mapping[str, Mapping[Coord, str]]) -> dict[Coord, str]:
    """A month's hidden cells, given the hidden cells of the ISO weeks its days fall in (`protect_week` of
    each; a week missing is taken as wholly shown).

    The month is its own tables' `protect` (never choosing as a complement a cell the weeks give anyway),
    then an exact check over the month's days in each week as separate unknowns: taking every count outside
    the month as known (the most an attacker can learn from other months and weeks), none of these may be a
    linear combination of the month's shown cells, the weeks' shown cells and the known equal sums: a cell
    under 5 of the month; a cell of the month's days in one week that is 1-4 (a whole week's small cell, the
    leftover days of a straddling week); the sum, in the days of one week, of a line's hidden month cells when
    it is 1-4. While one is, month cells it uses are hidden (the cell itself first, then its lines' smallest),
    with their lines' complements."""
    tables = unit.tables
    if not unit.parts or not tables.cube:
        return protect(tables)
    block = _MonthBlock(unit, weeks_hidden)

    def known(c: Coord) -> bool:
        """A cell the weeks' shown cells give (hiding it in the month protects nothing): never a complement."""
        return c not in block.free

    hidden = protect(tables, settled=known)
    peers: dict[Coord, list[Coord]] = defaultdict(list)
    for members, _ in tables.lines:
        for member in members:
            peers[member].extend(m for m in members if m != member)

    def size(c: Coord) -> tuple[bool, float, float, Coord]:
        n, d = tables.cube[c]
        return (n == 0 and d == 0, d, n, c)

    def closed(extra: Coord) -> dict[Coord, str]:
        return suppress(tables.cube, tables.lines, decided={**hidden, extra: SECONDARY}, settled=known)

    exposed = block.exposed(hidden)
    unchanged = True  # nothing hidden since `exposed` was worked out
    given_up: set[Target] = set()
    while exposed:
        target = exposed.pop(0)
        if not unchanged and not block.exposed(hidden, only=target):
            continue  # covered by what was hidden for an earlier one (hiding more never uncovers)
        cells, _ = target
        used = block.involved(hidden, target)
        first = [c for c in cells if c not in hidden and not known(c)]
        near = sorted((c for cell in cells for c in peers[cell] if c in used and c not in hidden and not known(c)),
                      key=size)
        rest = sorted((c for c in used if c not in hidden and not known(c)), key=size)
        order = list(dict.fromkeys([*first, *near, *rest]))
        if not order:
            given_up.add(target)  # the weeks alone would give it: not the month's to protect (protect_week's)
        else:
            for candidate in order:
                trial = closed(candidate)
                if target not in block.exposed(trial, only=target):
                    hidden = trial
                    break
            else:  # no one cell covers it: keep the first, and it comes round again (each turn hides one more)
                hidden = closed(order[0])
                exposed.insert(0, target)
            unchanged = False
        if not exposed:  # a full check at the end of each round: a line's newly hidden sum may be a target
            exposed = [t for t in block.exposed(hidden) if t not in given_up]
            unchanged = True
    return hidden


#: what must stay unknown: the sum of some month cells (one, or a line's hidden ones), over the whole month
#: (week None) or over its days in one week
Target = tuple[tuple[Coord, ...], str | None]


def _incidence(tables: Tables) -> tuple[list[Coord], np.ndarray]:
    """The cells in order, and which fine variables each adds (cells x variables, 0/1)."""
    cells = sorted(tables.cube)
    matrix = np.zeros((len(cells), max(1, tables.variables)))
    for row, cell in enumerate(cells):
        matrix[row, tables.parts[cell]] = 1.0
    return cells, matrix


def _split(rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis of the row space of `rows`, and of its orthogonal complement (both k x width)."""
    if rows.shape[0] == 0:
        return np.zeros((0, width)), np.eye(width)
    values, vectors = np.linalg.eigh(rows.T @ rows)
    keep = values > 1e-9 * max(1.0, float(values[-1]))
    return vectors[:, keep].T, vectors[:, ~keep].T


def _in_span(basis: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of `rows` lie in the span of the orthonormal `basis`."""
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    residual = rows - (rows @ basis.T) @ basis if basis.shape[0] else rows
    return np.abs(residual).max(axis=1) < 1e-7


class _MonthBlock:
    """The exact check of `protect_month`. With x_j the month's fine counts in week j, the attacker knows
    r . x_j for r in R_j (week j's shown cells and the equal sums) and r . sum_j x_j for r in R_M (the month's
    shown cells). Write N_j for the directions R_j leaves unknown (its orthogonal complement) and C_j for the
    sum of the other weeks' N_i. A cell t of week j's days is derivable iff some r in R_M has C_j r = 0 (the
    other weeks give r) and N_j (t - r) = 0 (week j gives the rest); a month cell t iff some r in R_M has
    C (t - r) = 0, C the sum of every N_j. With r a combination z of the month's shown cells S, each is one
    small linear system G S^T z = H t whose rows are only the weeks' unknown directions (a few dozen), fixed
    for the month: a check costs a small SVD rather than one over weeks x variables unknowns."""

    def __init__(self, unit: CalendarUnit, weeks_hidden: Mapping[str, Mapping[Coord, str]]) -> None:
        tables = unit.tables
        self.cells, self.matrix = _incidence(tables)
        self.row_of = {cell: row for row, cell in enumerate(self.cells)}
        width = self.matrix.shape[1]
        links = np.zeros((len(tables.links), width))
        for row, link in enumerate(tables.links):
            for variable, coefficient in link.items():
                links[row, variable] = coefficient
        self.weeks = sorted(unit.parts)
        unknown: dict[str, np.ndarray] = {}
        for week in self.weeks:
            secret = weeks_hidden.get(week, {})
            shown = [row for row, cell in enumerate(self.cells) if cell not in secret]
            unknown[week] = _split(np.vstack([self.matrix[shown], links]), width)[1]
        #: per target kind (a week's days, or None: the whole month), G and H of the system G S^T z = H t
        self.system: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        for week in self.weeks:
            others = _orthonormal(np.vstack([np.zeros((0, width)), *(unknown[w] for w in self.weeks if w != week)]))
            mine = unknown[week]
            self.system[week] = (np.vstack([mine, others]), np.vstack([mine, np.zeros_like(others)]))
        everyone = _orthonormal(np.vstack([np.zeros((0, width)), *unknown.values()]))
        self.system[None] = (everyone, everyone)
        #: each cell's row through G and through H, per target kind (cells x unknown directions)
        self.through = {kind: (self.matrix @ gate.T, self.matrix @ pick.T)
                        for kind, (gate, pick) in self.system.items()}
        #: the month's cells that the weeks' shown cells do not give
        given = np.abs(self.matrix @ everyone.T).max(axis=1) < 1e-7 if everyone.shape[0] else np.ones(len(self.cells))
        self.free = {c for c, known in zip(self.cells, given, strict=True) if not known}
        self.lines = tables.lines
        self.parts = unit.parts
        #: what the shown cells reach through each target kind's G, by (kind, shown cells' rows)
        self._reach: dict[tuple[str | None, tuple[int, ...]], np.ndarray] = {}
        cube = tables.cube
        self.fixed: list[Target] = [((c,), None) for c in self.cells if is_small(cube[c][0]) or is_small(cube[c][1])]
        for week in self.weeks:
            self.fixed += [((c,), week) for c, (n, d) in unit.parts[week].items() if is_small(n) or is_small(d)]

    def targets(self, hidden: Mapping[Coord, str]) -> list[Target]:
        """The fixed targets, and each line's hidden cells (two or more, the total shown: their sum is known)
        whose sum in one week's days is 1-4."""
        out = list(self.fixed)
        for members, total in self.lines:
            inside = tuple(m for m in members if m in hidden)
            if len(inside) < 2 or total in hidden:
                continue
            for week in self.weeks:
                counts = self.parts[week]
                if is_small(sum(counts[m][0] for m in inside)) or is_small(sum(counts[m][1] for m in inside)):
                    out.append((inside, week))
        return out

    def _vector(self, cells: Sequence[Coord]) -> np.ndarray:
        return self.matrix[[self.row_of[c] for c in cells]].sum(axis=0)

    def _shown(self, hidden: Mapping[Coord, str]) -> list[Coord]:
        return [c for c in self.cells if c not in hidden]

    def exposed(self, hidden: Mapping[Coord, str], only: Target | None = None) -> list[Target]:
        shown = [self.row_of[c] for c in self._shown(hidden)]
        wanted = [only] if only is not None else list(dict.fromkeys(self.targets(hidden)))
        by_week: dict[str | None, list[Target]] = defaultdict(list)
        for target in wanted:
            by_week[target[1]].append(target)
        out: list[Target] = []
        for week, targets in by_week.items():
            through_gate, through_pick = self.through[week]
            if through_gate.shape[1] == 0:
                out.extend(targets)  # nothing of the month is unknown to the weeks
                continue
            wants = np.vstack([through_pick[[self.row_of[c] for c in cells]].sum(axis=0) for cells, _ in targets])
            key = (week, tuple(shown))
            reach = self._reach.get(key)
            if reach is None:  # the same shown cells come round again (each target checked after a trial)
                reach = self._reach[key] = _orthonormal(through_gate[shown])
            out.extend(t for t, hit in zip(targets, _in_span(reach, wants), strict=True) if hit)
        return out

    def involved(self, hidden: Mapping[Coord, str], target: Target) -> set[Coord]:
        """The month's shown cells one derivation of `target` uses."""
        shown = self._shown(hidden)
        gate, pick = self.system[target[1]]
        if not shown or gate.shape[0] == 0:
            return set()
        rows = self.matrix[[self.row_of[c] for c in shown]]
        weights, *_ = np.linalg.lstsq(gate @ rows.T, pick @ self._vector(target[0]), rcond=None)
        return {c for c, w in zip(shown, weights, strict=True) if abs(w) > 1e-9}


def _orthonormal(rows: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the row space of a few rows (an SVD of them, not of their Gram matrix)."""
    if rows.shape[0] == 0:
        return rows
    _, values, vt = np.linalg.svd(rows, full_matrices=False)
    return vt[values > 1e-9 * max(1.0, float(values[0]))]
