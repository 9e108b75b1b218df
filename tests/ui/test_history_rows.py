"""The access history's rows (app/ui/history_rows.py), made from journal entries a page at a time: one row per
search whatever the pages, intents folded, reviews on their rows, and the role under the access policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from app.core.audit.model import Action, AuditUser, JournalEntry, Outcome
from app.core.model import Practice
from app.ui.history_rows import (
    FLAG,
    PATIENT,
    PRACTICE,
    ROLE,
    SECTIONS,
    HistoryRow,
    RowBuilder,
    RowContext,
    format_row,
    role_text,
)

USER = AuditUser("apatel", "Dr Asha Patel", "GP")
PRACTICES = [Practice(id=f"p{i}", name=f"Practice {i}", ods_code=f"A{i}", adapter="fhir-r4", base_url="http://x")
             for i in range(5)]
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def journal(seconds: float, action: Action, practice: int, **kw) -> JournalEntry:
    return JournalEntry(action, USER, practice_id=f"p{practice}", recorded_at=START + timedelta(seconds=seconds), **kw)


def a_day() -> list[JournalEntry]:
    """Two federated searches (one with an unanswered practice), a read with its intent, a break-glass open and
    its review, old-style search entries (no search_id), and an intent whose outcome never came; oldest first."""
    entries: list[JournalEntry] = []
    seconds = 0.0

    def add(action: Action, practice: int, **kw) -> JournalEntry:
        nonlocal seconds
        seconds += 0.5
        made = journal(seconds, action, practice, **kw)
        entries.append(made)
        return made

    for search, answered in (("s1", range(5)), ("s2", range(4))):
        query = {"family": "SAUNDERS", "given": "Abena"} if search == "s1" else {"nhs_number": "9434765919"}
        intents = [add(Action.INTENT, p, details={"doing": "search", "query": query, "search_id": search})
                   for p in range(5)]
        for p in answered:
            add(Action.SEARCH, p, details={"query": query, "results": p % 2, "search_id": search,
                                           "intent": intents[p].entry_id})
    intent = add(Action.INTENT, 1, details={"doing": "read"}, patient_local_id="42")
    add(Action.READ, 1, patient_local_id="42", patient_nhs_number="9434765919", sections=("problems",),
        details={"intent": intent.entry_id, "patient_name": "SAUNDERS, Abena", "policy_role": "hub"})
    glass = add(Action.BREAK_GLASS, 2, patient_local_id="7", patient_nhs_number="9990000018", purpose="Collapsed",
                details={"flagged": True, "flag": "break-glass", "flags": ["break-glass"], "policy_role": "hub"})
    for p in range(3):  # before search_id: grouped by user, computer and query, close in time
        add(Action.SEARCH, p, details={"query": {"family": "OLD"}, "results": 1})
    add(Action.INTENT, 3, details={"doing": "read"}, patient_local_id="9")  # never finished
    review = JournalEntry(Action.REVIEW, AuditUser("pm", "Pat Manager", None), practice_id="p2",
                          recorded_at=START + timedelta(hours=1),
                          details={"reviewed": glass.entry_id, "note": "Checked: emergency", "reviewed_seq": 3})
    return entries + [review]


def build(entries: list[JournalEntry], cuts: list[int]) -> list[HistoryRow]:
    """Rows from `entries` read newest first in pages cut at `cuts`, reviews handed with the page of their entry."""
    newest = [e for e in sorted(entries, key=lambda e: e.recorded_at, reverse=True) if e.action is not Action.REVIEW]
    reviews = [e for e in entries if e.action is Action.REVIEW]
    builder = RowBuilder()
    bounds = [0, *cuts, len(newest)]
    context = RowContext({p.id: p for p in PRACTICES})
    for start, end in zip(bounds, bounds[1:], strict=False):
        page = newest[start:end]
        ids = {e.entry_id for e in page}
        new, changed = builder.add(page, [r for r in reviews if r.details["reviewed"] in ids])
        for row in new + changed:
            format_row(row, context)
    return builder.rows


def test_one_row_per_search_whatever_the_pages_with_every_entry_in_exactly_one_row() -> None:
    entries = a_day()
    whole = build(entries, [])
    assert [r.kind for r in whole] == ["attempt", "search", "access", "access", "search", "search"]
    seed = random.SystemRandom().randrange(2**31)
    print(f"page cuts seeded with {seed}")
    rng = random.Random(seed)
    listed = [e for e in entries if e.action is not Action.REVIEW]
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(listed)), rng.randint(1, 8)))
        rows = build(entries, cuts)
        assert [sorted(e.entry_id for e in r.all_entries()) for r in rows] == \
            [sorted(e.entry_id for e in r.all_entries()) for r in whole], f"seed {seed}, pages cut at {cuts}"
        assert [r.cells for r in rows] == [r.cells for r in whole], f"seed {seed}, pages cut at {cuts}"
    ids = [e.entry_id for r in whole for e in r.all_entries()]
    assert sorted(ids) == sorted(e.entry_id for e in listed), "none dropped, none twice"


def test_search_rows_say_how_many_were_found_where_and_the_detail_per_practice() -> None:
    rows = build(a_day(), [3, 9])
    by_nhs, by_name = (r for r in rows if r.kind == "search" and r.entry.details.get("search_id"))
    assert by_name.cells[SECTIONS] == "Search for SAUNDERS, Abena · 2 found at 2 of 5 practices"
    assert by_name.cells[PRACTICE] == "5 practices"
    assert by_name.tips[SECTIONS].splitlines() == [f"Practice {p}: {p % 2} found" for p in range(5)]
    assert by_nhs.cells[SECTIONS] == "Search by NHS number · 2 found at 2 of 5 practices; no answer from 1"
    assert by_nhs.cells[PATIENT] == "943 476 5919"
    assert "Practice 4: asked, no answer recorded" in by_nhs.tips[SECTIONS]
    old = next(r for r in rows if r.entry.details.get("query") == {"family": "OLD"})
    assert old.cells[SECTIONS] == "Search for OLD · 3 found at 3 of 3 practices" and len(old.entries) == 3


def test_patient_role_review_and_attempt_cells() -> None:
    rows = build(a_day(), [])
    attempt, _search, glass, read = rows[0], rows[1], rows[2], rows[3]
    assert read.cells[PATIENT] == "SAUNDERS, Abena · 943 476 5919" and len(read.intents) == 1
    assert read.cells[ROLE] == "hub" and "Professional role (from sign-in): GP" in read.tips[ROLE]
    assert glass.cells[FLAG].startswith("Break-glass · Reviewed by Pat Manager on ")
    assert glass.cells[FLAG].endswith(": Checked: emergency") and not glass.unreviewed
    assert attempt.cells[SECTIONS].startswith("The request was sent; no outcome was recorded")
    assert attempt.failed


def test_role_is_the_policy_role_when_journaled_and_what_the_entry_holds_before() -> None:
    new = journal(0, Action.READ, 0, details={"policy_role": "hub"})
    none = journal(0, Action.READ, 0, details={"policy_role": None})
    old = journal(0, Action.READ, 0)
    assert role_text(new)[0] == "hub"
    assert role_text(none)[0] == "No role" and "No role under the access policy" in role_text(none)[1]
    assert role_text(old) == ("GP", role_text(old)[1]) and "before Mosaic journaled" in role_text(old)[1]


def test_a_denied_search_at_every_practice_says_denied() -> None:
    entries = [journal(i, Action.SEARCH, i, outcome=Outcome.DENIED, outcome_detail="Not in your role",
                       details={"query": {"family": "X"}, "search_id": "s", "flagged": True, "denied": True})
               for i in range(2)]
    [row] = build(entries, [1])
    assert row.cells[8] == "Denied" and row.cells[FLAG] == "Denied · not reviewed" and len(row.unreviewed) == 2
