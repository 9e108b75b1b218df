"""The access history's rows: journal entries grouped as a practice manager reads them, and their cells.

One row per search (a federated search journals one entry per practice asked: they share details
"search_id"; older entries, journaled before it, are grouped by user, computer and query within
SEARCH_WINDOW_S), one row per record opened or exported; an intent entry (committed before a request left)
is folded into its outcome's row, and shows as a row of its own only when no outcome follows it. Reviews
(Action.REVIEW) are shown on the row of the entry they reviewed.

Entries arrive a page at a time, newest first (app/ui/access_history.py): RowBuilder.add() returns the new
rows and the rows a page added to (an older practice's answer to a search already shown). A row's time is
its newest entry's, fixed when the row is made, so later pages never move a row in the time order.
Pure Python (no Qt): cells are made on the GUI thread, a page at a time, so that no thread formats rows while
the GUI thread paints (a Python thread competing for the GIL stalls every Python call a paint makes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

from app.core import nhs_number
from app.core.audit.model import Action, JournalEntry, Outcome, is_flagged
from app.core.audit.review import review_text
from app.core.display import format_date, format_datetime
from app.core.model import SECTION_TITLES, Practice, SectionName

COLUMNS = ("Time", "User", "Role", "Action", "Patient", "Practice", "What was seen or searched", "Reason",
           "Outcome", "Review")
TIME, USER, ROLE, ACTION, PATIENT, PRACTICE, SECTIONS, REASON, OUTCOME, FLAG = range(len(COLUMNS))
HEADER_TIPS = ("Local time, to the second (of the last practice's answer, for a search)", "The user's login",
               "The user's role under the access policy, as the status bar says it",
               "Record opened, search, break-glass or export", "The patient: name and NHS number where known "
               "(the pseudonym in the research view)", "The practice asked (for a search: how many)",
               "What the user saw: the record's sections, or what was searched for and how many were found",
               "The reason the user gave, when asked", "Whether it worked (hover for why not)",
               "Why the access is flagged for review (break-glass, self or family, denied by the access policy), "
               "and who reviewed it")
ACTION_TEXT = {Action.READ: "Record opened", Action.SEARCH: "Search", Action.BREAK_GLASS: "Break-glass",
               Action.EXPORT: "Export", Action.REVIEW: "Reviewed", Action.INTENT: "Attempt",
               Action.INSIGHT: "Locality insight"}
#: a locality insight entry's patient cell: its figures are aggregates and name nobody
NO_PATIENT = "No patient (locality figures)"
INSIGHT_DOING = {"refresh": "Refreshed the appointment books", "show": "Figures shown", "peers": "Peer comparison",
                 "export": "Figures exported", "import-gpad": "National (GPAD) files imported",
                 "quality": "Data quality shown", "view": "Locality view opened"}
OUTCOME_TEXT = {Outcome.SUCCESS: "Success", Outcome.FAILURE: "Failed", Outcome.DENIED: "Denied"}
FLAG_TEXT = {"break-glass": "Break-glass", "self-or-family": "Self or family", "denied": "Denied"}
SEARCH_WINDOW_S = 60.0  # entries of one search journaled before "search_id": within this of each other


def flag_text(entry: JournalEntry) -> str:
    """Why the entry is flagged for review ("" when it is not), as `mosaic audit flagged` names it."""
    flags = [str(f) for f in entry.details.get("flags") or ([entry.details["flag"]] if entry.details.get("flag")
                                                            else [])]
    if entry.action is Action.BREAK_GLASS and "break-glass" not in flags:
        flags.insert(0, "break-glass")
    names = [FLAG_TEXT.get(f, f) for f in flags if f != "denied"]
    if entry.outcome is Outcome.DENIED:
        return "Denied" + (f" ({', '.join(names)})" if names else "")
    return ", ".join(names) if names or not entry.details.get("flagged") else "Flagged"


def role_text(entry: JournalEntry) -> tuple[str, str]:
    """(cell, tooltip): the role under the access policy when the entry recorded it; before Mosaic journaled
    it (details without "policy_role"), the role the entry holds (the professional role from sign-in)."""
    professional = entry.user.role or ""
    if "policy_role" in entry.details:
        role = entry.details.get("policy_role")
        tip = "Role under the access policy" if role else "No role under the access policy (as the status bar said)"
        if professional:
            tip += f"\nProfessional role (from sign-in): {professional}"
        return str(role or "No role"), tip
    if professional:
        return professional, ("Professional role from sign-in (this entry was recorded before Mosaic journaled "
                              "the role under the access policy)")
    return "", ""


def _section_title(value: str) -> str:
    try:
        return SECTION_TITLES[SectionName(value)]
    except (ValueError, KeyError):
        return value


def _sections_text(entry: JournalEntry) -> str:
    text = ", ".join(_section_title(v) for v in entry.sections)
    if len(entry.sections) == len(SectionName) and len(set(entry.sections)) == len(SectionName):
        text = f"Whole record ({len(SectionName)} sections)"
    failed = entry.details.get("sections_failed")
    if failed:
        text += ("; " if text else "") + f"could not load {len(failed)}"
    return text or ("None (the record was not shown)" if entry.outcome is not Outcome.SUCCESS else "")


def searched_for(query: dict[str, Any]) -> str:
    """What a search asked, in words: "Search for SAUNDERS, Abena, born 03-Feb-1974"."""
    parts = []
    if query.get("nhs_number"):
        parts.append(f"NHS number {nhs_number.format_nhs_number(str(query['nhs_number']))}")
    family = str(query.get("family") or "").upper()
    name = ", ".join(p for p in (family, str(query.get("given") or "")) if p)
    if name:
        parts.append(name)
    if query.get("birth_date"):
        try:
            parts.append("born " + format_date(date.fromisoformat(str(query["birth_date"]))))
        except ValueError:
            parts.append("born " + str(query["birth_date"]))
    for key, label in (("condition", "condition"), ("age", "aged")):
        if query.get(key):
            parts.append(f"{label} {query[key]}")
    if query.get("nhs_number") and len(parts) == 1:
        return "Search by NHS number"
    return "Search for " + (", ".join(parts) if parts else "(nothing recorded)")


def _local_time(entry: JournalEntry) -> str:
    return f"{format_datetime(entry.recorded_at)}:{entry.recorded_at.astimezone().second:02d}"


@dataclass
class RowContext:
    """What cells are made with: the configured practices, and patients' names the core knows, by
    (practice id, practice's own id) (a journal entry made before Mosaic journaled names holds none)."""

    practices: dict[str, Practice] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)

    def practice_name(self, practice_id: str | None) -> str:
        practice = self.practices.get(practice_id or "")
        return practice.name if practice is not None else (practice_id or "")  # no longer configured: its id


@dataclass(eq=False)
class HistoryRow:
    """One row. `entries`: its journal entries, newest first (a search: one per practice that answered);
    `unanswered`: a search's intents with no outcome (the practice never answered, or not yet); `reviews`."""

    kind: str  # "access", "search", "attempt", "review"
    entries: list[JournalEntry]
    unanswered: list[JournalEntry] = field(default_factory=list)
    intents: list[JournalEntry] = field(default_factory=list)  # folded into their outcomes
    reviews: list[JournalEntry] = field(default_factory=list)
    cells: tuple[str, ...] = ()
    tips: tuple[str, ...] = ()
    sort_keys: tuple[Any, ...] = ()
    failed: bool = False
    time_key: tuple[str, int] = ("", 0)

    @property
    def entry(self) -> JournalEntry:
        """The row's newest entry (the search's, or the access's own)."""
        return self.entries[0] if self.entries else self.unanswered[0]

    @property
    def flagged(self) -> list[JournalEntry]:
        return [e for e in self.entries if is_flagged(e)]

    @property
    def unreviewed(self) -> list[JournalEntry]:
        """Flagged entries of the row that nobody has reviewed yet."""
        done = {str(r.details.get("reviewed")) for r in self.reviews}
        return [e for e in self.flagged if e.entry_id not in done]

    def answers(self) -> list[JournalEntry]:
        """The outcomes, and a search's intents that had none: what the row's cells say."""
        return self.entries + self.unanswered

    def all_entries(self) -> list[JournalEntry]:
        """Every journal entry the row stands for (as export writes them)."""
        return self.entries + self.unanswered + self.intents


def _stamp(entry: JournalEntry) -> tuple[str, int]:
    return entry.recorded_at.astimezone(UTC).isoformat(), entry.seq or 0


def _search_key(entry: JournalEntry) -> tuple[str, str, str]:
    return entry.user.login, entry.workstation, json.dumps(entry.details.get("query") or {}, sort_keys=True)


class RowBuilder:
    """Groups pages of entries (newest first) into rows; see the module's note."""

    def __init__(self) -> None:
        self.rows: list[HistoryRow] = []
        self.entries = 0
        self._searches: dict[str, HistoryRow] = {}
        self._last_search: dict[tuple[str, str, str], HistoryRow] = {}
        self._by_intent: dict[str, HistoryRow] = {}
        self._by_entry: dict[str, HistoryRow] = {}
        self._reviews: dict[str, list[JournalEntry]] = {}

    def add(self, entries: Iterable[JournalEntry],
            reviews: Iterable[JournalEntry] = ()) -> tuple[list[HistoryRow], list[HistoryRow]]:
        """Entries older than every entry added so far, and reviews of any of them: (new rows, changed rows)."""
        new: list[HistoryRow] = []
        changed: dict[int, HistoryRow] = {}
        for review in reviews:
            reviewed = str(review.details.get("reviewed"))
            known = self._reviews.setdefault(reviewed, [])
            if review.entry_id not in {r.entry_id for r in known}:
                known.append(review)
                row = self._by_entry.get(reviewed)
                if row is not None:
                    row.reviews.append(review)
                    changed[id(row)] = row
        for entry in entries:
            self.entries += 1
            row, made = self._place(entry)
            if row is None:
                continue
            self._by_entry[entry.entry_id] = row
            if entry.details.get("intent"):
                self._by_intent[str(entry.details["intent"])] = row
            for review in self._reviews.get(entry.entry_id, ()):
                if review not in row.reviews:
                    row.reviews.append(review)
            if made:
                row.time_key = _stamp(entry)
                new.append(row)
                self.rows.append(row)
            else:
                changed[id(row)] = row
        new_ids = {id(r) for r in new}
        return new, [r for k, r in changed.items() if k not in new_ids]

    def _place(self, entry: JournalEntry) -> tuple[HistoryRow | None, bool]:
        """The row `entry` goes in, and whether it is a new one (None: folded, nothing to show)."""
        if entry.action is Action.INTENT:
            outcome_row = self._by_intent.get(entry.entry_id)
            if outcome_row is not None:
                outcome_row.intents.append(entry)
                return None, False  # its outcome is listed: the intent says nothing more
            search = self._searches.get(str(entry.details.get("search_id") or ""))
            if search is not None:
                search.unanswered.append(entry)
                return search, False
            kind = "search" if entry.details.get("doing") == Action.SEARCH.value else "attempt"
            row = HistoryRow(kind, [], unanswered=[entry]) if kind == "search" else HistoryRow(kind, [entry])
            if kind == "search":
                self._remember_search(entry, row)
            return row, True
        if entry.action is Action.SEARCH:
            joined = self._search_row(entry)
            if joined is not None:
                joined.entries.append(entry)
                self._remember_search(entry, joined)
                return joined, False
            made = HistoryRow("search", [entry])
            self._remember_search(entry, made)
            return made, True
        return HistoryRow("review" if entry.action is Action.REVIEW else "access", [entry]), True

    def _search_row(self, entry: JournalEntry) -> HistoryRow | None:
        search_id = entry.details.get("search_id")
        if search_id:
            return self._searches.get(str(search_id))
        row = self._last_search.get(_search_key(entry))
        if row is None or any(e.details.get("search_id") for e in row.answers()):
            return None
        oldest = row.answers()[-1]
        close = abs((oldest.recorded_at - entry.recorded_at).total_seconds()) <= SEARCH_WINDOW_S
        asked = {e.practice_id for e in row.answers()}
        return row if close and entry.practice_id not in asked else None

    def _remember_search(self, entry: JournalEntry, row: HistoryRow) -> None:
        if entry.details.get("search_id"):
            self._searches[str(entry.details["search_id"])] = row
        else:
            self._last_search[_search_key(entry)] = row


# --- cells -----------------------------------------------------------------------------------------------

def format_row(row: HistoryRow, context: RowContext) -> None:
    """Set the row's cells, tooltips and sort keys (again, when a page added to it)."""
    entry = row.entry
    when = _local_time(entry)
    role, role_tip = role_text(entry)
    if row.kind == "search":
        action, patient, practice, what, outcome, outcome_tip, practice_tip = _search_cells(row, context)
        what_tip = practice_tip
    else:
        action = ACTION_TEXT.get(entry.action, str(entry.action))
        if row.kind == "attempt":
            action = f"{ACTION_TEXT.get(Action(str(entry.details.get('doing') or 'read')), 'Attempt')}: no outcome"
        patient = _patient_text(entry, context)
        practice = context.practice_name(entry.practice_id)
        practice_tip = f"ODS code {entry.practice_ods}" if entry.practice_ods else ""
        what = _what_text(row)
        what_tip = ", ".join(_section_title(v) for v in entry.sections) or what
        if entry.action is Action.INSIGHT:
            patient = NO_PATIENT
            practice, practice_tip = _insight_practices(entry, context)
            what, what_tip = _insight_what(entry)
        outcome, outcome_tip = _outcome_text(row)
    reason = entry.purpose or ""
    if row.kind == "review":
        reason = str(entry.details.get("note") or "")
    review, review_tip = _review_text(row)
    cells = (when, entry.user.login, role, action, patient, practice, what, reason, outcome, review)
    user_tip = entry.user.display_name if entry.user.display_name != entry.user.login else ""
    if entry.user.professional_ids:
        user_tip += ("\n" if user_tip else "") + "\n".join(f"{k}: {v}" for k, v in entry.user.professional_ids.items())
    stamp = entry.recorded_at.astimezone(UTC)
    ids = ", ".join(str(e.seq) for e in row.all_entries())
    time_tip = (f"{when} local time ({stamp:%Y-%m-%d %H:%M:%S} UTC) on {entry.workstation}\n"
                f"Journal {'entries' if len(row.all_entries()) > 1 else 'entry'} {ids}"
                + (f" · {entry.entry_id}" if len(row.all_entries()) == 1 else ""))
    patient_tip = patient
    if entry.patient_local_id and row.kind != "search" and not entry.details.get("pseudonym"):
        patient_tip += ("\n" if patient_tip else "") + f"Practice's own patient id: {entry.patient_local_id}"
    tips = (time_tip, user_tip, role_tip, action, patient_tip, practice_tip, what_tip, reason, outcome_tip,
            review_tip)
    row.cells = cells
    row.tips = tuple(t or c for t, c in zip(tips, cells, strict=True))  # an elided cell reads whole on hover
    row.sort_keys = (row.time_key,) + tuple(c.casefold() for c in cells[1:])
    row.failed = any(e.outcome is not Outcome.SUCCESS for e in row.entries) or (row.kind == "attempt")


def _patient_text(entry: JournalEntry, context: RowContext) -> str:
    pseudonym = entry.details.get("pseudonym")
    if pseudonym:
        return f"Research participant {pseudonym}"
    name = str(entry.details.get("patient_name") or "")
    if not name and entry.practice_id and entry.patient_local_id:
        name = context.names.get((entry.practice_id, entry.patient_local_id), "")
    number = nhs_number.format_nhs_number(entry.patient_nhs_number) if entry.patient_nhs_number else ""
    if name and number:
        return f"{name} · {number}"
    return name or number or (f"Research participant {entry.patient_local_id}"
                              if entry.patient_local_id and entry.patient_local_id.startswith("R-") else "")


def _what_text(row: HistoryRow) -> str:
    entry = row.entry
    if row.kind == "review":
        return f"Reviewed journal entry {entry.details.get('reviewed_seq') or entry.details.get('reviewed')}"
    if row.kind == "attempt":
        return "The request was sent; no outcome was recorded (the program stopped, or it is still under way)"
    if entry.action is Action.SEARCH:  # a denied search, alone
        return searched_for(entry.details.get("query") or {})
    return _sections_text(entry)


def _insight_what(entry: JournalEntry) -> tuple[str, str]:
    """("Figures shown: DNA rate by practice, March 2026", the whole of it with every detail journaled)."""
    from app.core.insight_access import insight_text
    from app.insight.measures import MEASURES
    from app.ui.locality.words import CUT_WORDS, period_words

    details = entry.details
    doing = str(details.get("insight") or "")
    said = INSIGHT_DOING.get(doing, doing.capitalize() or "Insight")
    metric, by = str(details.get("metric") or ""), str(details.get("by") or "")
    measure = MEASURES.get(metric)
    shown = " ".join(filter(None, (measure.title if measure is not None else metric,
                                   f"by {CUT_WORDS.get(by, by)}" if by else "")))
    parts = [shown] if shown else []
    if details.get("period"):
        try:
            parts.append(period_words(str(details["period"])))
        except (ValueError, IndexError):  # a period this version does not read ("2026-13"): as journaled
            parts.append(str(details["period"]))
    text = f"{said}: {', '.join(parts)}" if parts else said
    return text, f"{text}\nAs journaled: {insight_text(details)}"


def _insight_practices(entry: JournalEntry, context: RowContext) -> tuple[str, str]:
    """The practices an insight entry covers: named when one or two, else counted (all named in the tooltip)."""
    ids = [str(p) for p in entry.details.get("practices") or []]
    names = [context.practice_name(p) for p in ids]
    if not names:
        return "", ""
    shown = ", ".join(names) if len(names) <= 2 else f"{len(names)} practices"
    return shown, "\n".join(names)


def _outcome_text(row: HistoryRow) -> tuple[str, str]:
    entry = row.entry
    if row.kind == "attempt":
        return "No outcome", entry.outcome_detail or ""
    tip = entry.outcome_detail or ""
    if entry.details.get("sections_failed"):
        tip += ("\n" if tip else "") + "Sections that could not be loaded: " + ", ".join(
            entry.details["sections_failed"])
    return OUTCOME_TEXT.get(entry.outcome, str(entry.outcome)), tip


def _search_cells(row: HistoryRow, context: RowContext) -> tuple[str, str, str, str, str, str, str]:
    """(action, patient, practice, what, outcome, outcome tip, per-practice detail) of a search row."""
    answered = row.entries
    first = row.answers()[-1]
    query = first.details.get("query") or {}
    asked = len({e.practice_id for e in row.answers()})
    found = sum(int(e.details.get("results") or 0) for e in answered if e.outcome is Outcome.SUCCESS)
    found_at = sum(1 for e in answered if e.outcome is Outcome.SUCCESS and e.details.get("results"))
    failed = [e for e in answered if e.outcome is Outcome.FAILURE]
    denied = [e for e in answered if e.outcome is Outcome.DENIED]
    what = searched_for(query)
    if asked == 1:
        where = context.practice_name(first.practice_id)
        what += f" · {found} found" if answered and not failed and not denied else ""
    else:
        where = f"{asked} practices"
        what += f" · {found} found at {found_at} of {asked} practices"
    problems = []
    if failed:
        problems.append(f"could not be searched at {len(failed)}")
    if denied:
        problems.append(f"denied at {len(denied)}")
    if row.unanswered:
        problems.append(f"no answer from {len(row.unanswered)}")
    if problems and asked > 1:
        what += "; " + ", ".join(problems)
    detail = []
    for e in sorted(row.answers(), key=lambda e: context.practice_name(e.practice_id).casefold()):
        name = context.practice_name(e.practice_id)
        if e.action is Action.INTENT:
            detail.append(f"{name}: asked, no answer recorded")
        elif e.outcome is Outcome.SUCCESS:
            detail.append(f"{name}: {int(e.details.get('results') or 0)} found")
        else:
            detail.append(f"{name}: {OUTCOME_TEXT.get(e.outcome, str(e.outcome)).lower()}"
                          + (f" ({e.outcome_detail})" if e.outcome_detail else ""))
    if denied and len(denied) == len(answered):
        outcome = "Denied"
    elif failed or denied or row.unanswered:
        outcome = "Failed" if not answered or len(failed) == len(answered) else \
            f"Failed at {len(failed) + len(denied) + len(row.unanswered)} of {asked}"
    else:
        outcome = "Success"
    number = query.get("nhs_number")
    patient = nhs_number.format_nhs_number(str(number)) if number else ""
    if not patient and query.get("pseudonym"):
        patient = f"Research participant {query['pseudonym']}"
    return "Search", patient, where, what, outcome, "\n".join(detail), "\n".join(detail)


def _review_text(row: HistoryRow) -> tuple[str, str]:
    flagged = row.flagged
    if row.kind == "review" or not flagged:
        return "", ""
    why = "; ".join(dict.fromkeys(flag_text(e) for e in flagged))
    if row.reviews and not row.unreviewed:
        latest = row.reviews[-1]
        return f"{why} · {review_text(latest)}", "\n".join(
            [f"Flagged for review: {why}"] + [review_text(r) for r in row.reviews])
    detail = next((e.outcome_detail for e in flagged if e.outcome_detail), None)
    return f"{why} · not reviewed", f"Flagged for review: {why}" + (f" ({detail})" if detail else "") + \
        "\nNot reviewed yet: select the row and press Mark reviewed"


def sort_rows(rows: list[HistoryRow], column: int, descending: bool) -> None:
    """In place, by `column` (then by time), as the table sorts when a column heading is clicked."""
    if column == TIME:  # known from the row's newest entry: the row need not be made into text
        rows.sort(key=lambda r: r.time_key, reverse=descending)
    else:
        rows.sort(key=lambda r: (r.sort_keys[column], r.time_key), reverse=descending)
