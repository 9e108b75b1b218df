"""The data-quality badge and the mapping check as a screen or a file may show them: no count from 1 to 4, and
no practice's free text that could name a patient.

The store's QualityRow and MappingIssue (app/insight/store_rows.py) hold exact counts and the practice's own slot
type text as sent. Both reach a locality lead who may have no record access, so what they show keeps the rule every
figure keeps (app/insight/suppression.py): a count from 1 to 4 is "<5" (a share is a count over a total: a share
whose count is 1 to 4, or whose total is, is "<5" too, else 1 of 3 reads straight off 33.3 %).

A local slot type is the practice's free text. A practice may type a note where a type belongs ("Home visit Mrs
Jones 943 476 5919"), and a hostile server may put anything there. So a text is shown only when it is a type —
used for at least 5 slots across the practices shown (a one-off text is a note, not a type) — and then with any run
of six or more digits (an NHS number, a phone number, a date of birth written as digits) replaced and its length
capped. Control and bidirectional characters were removed at the core's door (app/core/text.py, adapter_call).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.insight.store_rows import MappingIssue, QualityRow
from app.insight.suppression import is_small

#: shown in place of a count from 1 to 4
SMALL = "<5"
#: a local type used for fewer slots than this (across the practices shown) is not named
MIN_TYPE_SLOTS = 5
#: the longest local type text shown (a type name is a few words; more is a note)
MAX_TYPE_CHARS = 60
#: six or more digits, allowing the spaces, dashes, dots and slashes people write numbers with
_DIGIT_RUN = re.compile(r"\d(?:[\s./-]?\d){5,}")
DIGITS_REMOVED = "[number removed]"

SHARES = ("unmapped_category", "unmapped_mode", "unmapped_clinician_type", "missing_status", "missing_created")


def small(count: float | None) -> bool:
    """A count from 1 to 4 (a share times its total is rounded first: 0.333… x 3 is 1)."""
    return count is not None and is_small(round(count))


@dataclass(frozen=True)
class ShownQuality:
    """One practice's badge as shown: `appointments` None when it is 1 to 4; a share None when there is none or it
    is suppressed (named in `suppressed`)."""

    practice_id: str
    name: str
    status: str
    appointments: int | None
    shares: dict[str, float | None]
    suppressed: tuple[str, ...]
    unreadable: int | None  # None: 1 to 4
    not_provided: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"practice": self.practice_id, "status": self.status, "appointments": self.appointments,
                **self.shares, "unreadable": self.unreadable, "not_provided": list(self.not_provided),
                "suppressed": list(self.suppressed)}


def shown_quality(row: QualityRow) -> ShownQuality:
    total = row.appointments
    suppressed: list[str] = []
    shares: dict[str, float | None] = {}
    for name in SHARES:
        share = getattr(row, name)
        if share is not None and (small(total) or small(share * total)):
            suppressed.append(name)
            share = None
        shares[name] = share
    if small(total):
        suppressed.insert(0, "appointments")
    if small(row.unreadable):
        suppressed.append("unreadable")
    return ShownQuality(row.practice_id, row.name, row.status, None if small(total) else total, shares,
                        tuple(suppressed), None if small(row.unreadable) else row.unreadable, row.not_provided)


def count_text(count: int | float | None) -> str:
    """A count as words may show it: "<5" for 1 to 4."""
    if count is None:
        return "-"
    return SMALL if small(count) else f"{count:,.0f}"


def shown_local_type(text: str) -> str:
    """The practice's slot type text, with digit runs replaced, spacing collapsed and its length capped."""
    words = " ".join(_DIGIT_RUN.sub(DIGITS_REMOVED, text).split())
    return words if len(words) <= MAX_TYPE_CHARS else words[:MAX_TYPE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class ShownUse:
    practice_id: str
    category: str | None
    slots: str  # "<5" for 1 to 4


@dataclass(frozen=True)
class ShownIssue:
    local_type: str
    uses: tuple[ShownUse, ...]


def shown_mapping(issues: Iterable[MappingIssue], practices: Sequence[str]) -> tuple[list[ShownIssue], int]:
    """The mapping check over `practices`: each local type (mapped two ways among them) as it may be shown, and
    how many were left unnamed because fewer than MIN_TYPE_SLOTS slots use them."""
    wanted = set(practices)
    shown: list[ShownIssue] = []
    rare = 0
    for issue in issues:
        uses = [u for u in issue.uses if u.practice_id in wanted]
        if len({u.category for u in uses}) < 2:
            continue
        if sum(u.slots for u in uses) < MIN_TYPE_SLOTS:
            rare += 1
            continue
        shown.append(ShownIssue(shown_local_type(issue.local_type),
                                tuple(ShownUse(u.practice_id, u.category, count_text(u.slots)) for u in uses)))
    return shown, rare
