"""Small-number suppression for the locality view: counts 1-4 hidden, and the cells that would give them away.

The rule (README "Locality insight"):

1. Primary: a cell whose numerator or denominator is 1 to 4 is shown as "<5" (0 is shown: it discloses
   nobody). A rate or share whose numerator or denominator is 1-4 is hidden with it.
2. Secondary: the cells of one time unit (a month, or an ISO week) form three tables over all the store's
   practices (not only those asked for): practice x mode, practice x clinician type, practice x category,
   joined at the totals they share (each practice's, the locality's). Along each line of them (the cells
   that add up to one total: the practices of a mode, the modes of a practice, the practices' totals) a
   hidden cell must not be derivable from the total and the shown cells: a line holds
   either no hidden cell, or at least two whose summed numerator and denominator are not 1-4. Where it does
   not, the next smallest non-zero cell of the line is hidden too ("suppressed"), repeated until every line
   holds. A total is hidden only when nothing else in its line can be.
3. A figure that adds several cells (a range of months, a subset of practices, the practices that gave a
   list size) is shown only if every cell it adds is shown: it can then be worked out from shown cells
   anyway, so it reveals nothing new; otherwise it is hidden as "suppressed". This is what stops the
   differencing attack: the locality total minus the shown practices, two overlapping ranges, or two sets
   of practices differing by one.

The suppression of a time unit's tables depends only on those tables, never on what was asked, so the
same cell is hidden in every query that shows it. That is also why cross-cuts (telephone appointments by
category) are not offered: their cells would be a fourth table, mostly under 5 at a practice, whose
suppression would have to be joined to these (`with_totals` with the default `suppress` lines does that for
a full cross table; the store keeps to the three two-way tables, which are the issue's cuts, and answers a
query over a year of weeks in tens of milliseconds).

Not covered: differencing a week against the months it straddles, and differencing figures over time as the
store changes (a practice failing); both are stated in the README.

This is the per-line ("hypercube"-style) heuristic used by NHS statistical publications, not an optimal
linear-programming protection; it errs on hiding more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import product
from typing import Any

ALL = "*"
#: the dimension of a practice's or the locality's total in `linked_tables`
TOTAL = "*"
PRIMARY = "primary"
SECONDARY = "secondary"

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


def linked_tables(rows: Iterable[tuple[str, str, str, float, float]]) -> tuple[dict[Coord, Counts], list[Line]]:
    """One time unit's practice x mode, practice x clinician type and practice x category tables, joined at
    their shared totals, as cells keyed (dimension, practice, value) and the lines that add up.

    `rows` are (dimension, practice, value, numerator, denominator), every record counted once in each
    dimension. A practice's total is (TOTAL, practice, ALL) and the locality's (TOTAL, ALL, ALL): one cell
    shared by the three tables, so hiding it in one hides it in all."""
    cube: dict[Coord, Counts] = {}

    def add(key: Coord, numerator: float, denominator: float) -> None:
        cell = cube.setdefault(key, [0.0, 0.0])
        cell[0] += numerator
        cell[1] += denominator

    dims: dict[str, set[str]] = defaultdict(set)
    practices: set[str] = set()
    first_dim: str | None = None
    for dim, practice, value, numerator, denominator in rows:
        first_dim = first_dim or dim
        dims[dim].add(value)
        practices.add(practice)
        add((dim, practice, value), numerator, denominator)
        add((dim, ALL, value), numerator, denominator)
        if dim == first_dim:
            add((TOTAL, practice, ALL), numerator, denominator)
            add((TOTAL, ALL, ALL), numerator, denominator)
    lines: list[Line] = []
    ordered = sorted(practices)
    for dim, values in sorted(dims.items()):
        for practice in [*ordered, ALL]:
            members = [(dim, practice, v) for v in sorted(values) if (dim, practice, v) in cube]
            lines.append(([*members, (TOTAL, practice, ALL)], (TOTAL, practice, ALL)))
        for value in sorted(values):
            members = [(dim, p, value) for p in ordered if (dim, p, value) in cube]
            lines.append(([*members, (dim, ALL, value)], (dim, ALL, value)))
    if practices:
        lines.append(([*((TOTAL, p, ALL) for p in ordered), (TOTAL, ALL, ALL)], (TOTAL, ALL, ALL)))
    return cube, lines


def suppress(cube: Mapping[Coord, Counts], lines: list[Line] | None = None) -> dict[Coord, str]:
    """Which cells of one time unit's table are hidden, and why (PRIMARY or SECONDARY). `lines`: the cells
    that add up to a total (default: every line of a full table with totals, `with_totals`)."""
    hidden: dict[Coord, str] = {c: PRIMARY for c, (n, d) in cube.items() if is_small(n) or is_small(d)}
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
        while _exposed(members, total, hidden, cube):
            choice = _complement(members, total, hidden, cube)
            if choice is None:
                break  # only empty cells left: the hidden ones add up to the total, itself hidden if small
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
    numerator = sum(cube[m][0] for m in inside)
    denominator = sum(cube[m][1] for m in inside)
    return is_small(numerator) or is_small(denominator)


def _complement(members: Sequence[Coord], total: Coord, hidden: Mapping[Coord, str],
                cube: Mapping[Coord, Counts]) -> Coord | None:
    candidates = [m for m in members if m not in hidden and (cube[m][0] > 0 or cube[m][1] > 0)]
    if not candidates:
        return None
    return min(candidates, key=lambda m: (m == total, cube[m][1], cube[m][0], m))


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
