"""Small-number suppression for the locality view: counts 1-4 hidden, and the cells that would give them away.

The rule (README "Locality insight"):

1. Primary: a cell whose numerator or denominator is 1 to 4 is shown as "<5" (0 is shown: it discloses
   nobody). A rate or share whose numerator or denominator is 1-4 is hidden with it.
2. Secondary: the cells of one time unit (a month, or an ISO week) form a table over all the store's
   practices (not only those asked for) x mode x clinician type x category, with every total ("*"). Along
   each line of it (the cells that add up to one total: the practices of a mode, the categories of a
   practice, ...) a hidden cell must not be derivable from the total and the shown cells: a line holds
   either no hidden cell, or at least two whose summed numerator and denominator are not 1-4. Where it does
   not, the next smallest non-zero cell of the line is hidden too ("suppressed"), repeated until every line
   holds. A total is hidden only when nothing else in its line can be.
3. A figure that adds several cells (a range of months, a subset of practices, the practices that gave a
   list size) is shown only if every cell it adds is shown: it can then be worked out from shown cells
   anyway, so it reveals nothing new; otherwise it is hidden as "suppressed". This is what stops the
   differencing attack: the locality total minus the shown practices, two overlapping ranges, or two sets
   of practices differing by one.

The suppression of a time unit's table depends only on that table, never on what was asked, so the same
cell is hidden in every query that shows it. Not covered: differencing a week against the months it
straddles, and differencing figures over time as the store changes (a practice failing); both are stated
in the README.

This is the per-line ("hypercube"-style) heuristic used by NHS statistical publications, not an optimal
linear-programming protection; it errs on hiding more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import product

ALL = "*"
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


def _lines(cube: Mapping[Coord, Counts]) -> dict[tuple[int, Coord], list[Coord]]:
    """Each line of the table: the cells that differ only in dimension d (its total included)."""
    lines: dict[tuple[int, Coord], list[Coord]] = defaultdict(list)
    for coord in cube:
        for dim in range(len(coord)):
            lines[(dim, coord[:dim] + (ALL,) + coord[dim + 1:])].append(coord)
    return lines


def suppress(cube: Mapping[Coord, Counts]) -> dict[Coord, str]:
    """Which cells of one time unit's table are hidden, and why (PRIMARY or SECONDARY)."""
    hidden: dict[Coord, str] = {c: PRIMARY for c, (n, d) in cube.items() if is_small(n) or is_small(d)}
    if not hidden:
        return hidden
    lines = _lines(cube)
    lines_of: dict[Coord, list[tuple[int, Coord]]] = defaultdict(list)
    for key, members in lines.items():
        for member in members:
            lines_of[member].append(key)
    pending = sorted({key for coord in hidden for key in lines_of[coord]})
    while pending:
        key = pending.pop()
        total = key[1]
        members = lines[key]
        while _exposed(members, total, hidden, cube):
            choice = _complement(members, total, hidden, cube)
            if choice is None:
                break  # only empty cells left: the hidden ones add up to the total, itself hidden if small
            hidden[choice] = SECONDARY
            pending.extend(k for k in lines_of[choice] if k != key)
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


def verdict(cells: Sequence[Hashable], hidden: Mapping[Hashable, str]) -> str | None:
    """Whether a figure adding `cells` (of one or more units' tables) may be shown: None, or why it is hidden.

    One cell: its own verdict. Several: shown only when every one is shown (rule 3), else SECONDARY.
    """
    reasons = [hidden[c] for c in cells if c in hidden]
    if not reasons:
        return None
    if len(cells) == 1:
        return reasons[0]
    return SECONDARY
