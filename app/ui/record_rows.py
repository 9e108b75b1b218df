"""What each record section shows, as rows of text: a summary first, as the best GP systems have it.

Pure (no Qt): a section becomes one or more `Group`s (Active problems, Significant past problems; Repeat,
Acute and Past medication; ...), each a table of `Row`s in clinical words (app.core.display), most recent
first. The widgets that show them are in app/ui/record_sections.py; results are built in results_table.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.display import (
    ACTIVE,
    ACUTE,
    CURRENT,
    GROUP_TITLES,
    PAST,
    REPEAT,
    entry_group,
    format_partial_date,
    severity_words,
    status_words,
)
from app.core.model import Entry, Section, SectionName

#: the order sections are read in: what must never be missed first
BODY_ORDER: tuple[SectionName, ...] = (
    SectionName.ALLERGIES, SectionName.PROBLEMS, SectionName.MEDICATIONS, SectionName.ENCOUNTERS,
    SectionName.OBSERVATIONS, SectionName.IMMUNISATIONS,
)

#: each section's heading in the record view
BODY_TITLES: dict[SectionName, str] = {
    SectionName.ALLERGIES: "Allergies and adverse reactions",
    SectionName.PROBLEMS: "Problems",
    SectionName.MEDICATIONS: "Medication",
    SectionName.ENCOUNTERS: "Consultations",
    SectionName.OBSERVATIONS: "Results",
    SectionName.IMMUNISATIONS: "Immunisations",
}

NONE_RECORDED = "None recorded"
NO_ALLERGIES = "No allergies recorded"
NO_CURRENT_MEDICATION = "No current medication recorded"

#: how many entries a group shows before "Show all N" (the rest wait until asked for)
SHOW_FIRST: dict[str, int] = {"allergies": 6, ACTIVE: 6, PAST: 6, REPEAT: 12, ACUTE: 8, CURRENT: 12,
                              "past-medication": 20, "encounters": 5, "observations": 8, "immunisations": 8}


SHOW_ROWS = 24  # nor more rows than this at first


@dataclass(frozen=True)
class Row:
    """One table row. A `span` row's text (cells[1]) runs from the second column to the last: a report's
    title, a consultation's notes."""

    cells: tuple[str, ...]
    span: bool = False
    bold: bool = False
    alert: int = 0  # the flag column: 1 abnormal (red), 2 critical (red, bold)
    muted: bool = False  # secondary text (notes)


@dataclass(frozen=True)
class TableSpec:
    headers: tuple[str, ...]
    fit: tuple[int, ...]  # as wide as their widest text (or heading)
    wrap: tuple[int, ...]  # share the rest, and wrap
    alert_column: int | None = None  # where a row's `alert` colours the text
    headings: bool = True  # False: the rows say what they are (allergies, problems), the heading row is room lost
    #: True: each description column as wide as its text (up to its share), the last column taking the rest, so a
    #: value stays beside its name on a wide screen; False: the description columns share the width
    compact: bool = True


ENTRY_TABLE = TableSpec(("Date", "Description", "Status", "Detail"), fit=(0, 2), wrap=(1, 3))
ALLERGY_TABLE = TableSpec(("Recorded", "Allergy or intolerance", "Severity", "Reaction"), fit=(0, 2), wrap=(1, 3),
                          alert_column=2, headings=False)
PROBLEM_TABLE = TableSpec(("Since", "Problem", "Status", "Detail"), fit=(0, 2), wrap=(1, 3), headings=False)
MEDICATION_TABLE = TableSpec(("Date", "Medication", "Status", "Dosage"), fit=(0, 2), wrap=(1, 3))
CONSULTATION_TABLE = TableSpec(("Date", "Consultation", "Status", "Detail"), fit=(0, 2), wrap=(1, 3))
IMMUNISATION_TABLE = TableSpec(("Date", "Vaccine", "Status", "Detail"), fit=(0, 2), wrap=(1, 3))


@dataclass(frozen=True)
class Group:
    """A titled table within a section: `first` rows are shown until "Show all `count` `noun`" is asked for."""

    key: str
    title: str
    spec: TableSpec
    rows: tuple[Row, ...]
    count: int  # entries (a report with its values, a consultation with its notes, count once)
    first: int  # rows shown at first (ends on an entry's last row)
    noun: str = "entries"
    collapsed: bool = False  # folded until opened (past medication)
    empty_text: str = NONE_RECORDED

    @property
    def heading(self) -> str:
        return f"{self.title}  ({self.count})" if self.count else self.title

    @property
    def has_more(self) -> bool:
        return self.first < len(self.rows)


def newest_first(entries: tuple[Entry, ...] | list[Entry]) -> list[Entry]:
    """Most recent first, undated last (FHIR dates may be partial: '1998', '2001-04')."""
    return sorted(entries, key=lambda e: e.when or "", reverse=True)


def group_of(key: str, title: str, spec: TableSpec, entries: list[list[Row]], noun: str = "entries", *,
             collapsed: bool = False, empty_text: str = NONE_RECORDED) -> Group:
    """A group from each entry's rows, showing the first SHOW_FIRST[key] entries at first (fewer when they take
    more than SHOW_ROWS rows: reports with many values, consultations with notes; always at least one)."""
    rows = tuple(row for rows in entries for row in rows)
    shown = 0
    for number, entry_rows in enumerate(entries[:SHOW_FIRST.get(key, 10)]):
        if number and shown + len(entry_rows) > SHOW_ROWS:
            break
        shown += len(entry_rows)
    return Group(key, title, spec, rows, len(entries), shown, noun, collapsed, empty_text)


def groups_for(section: Section, notes: bool = True) -> list[Group]:
    """A loaded section as the groups the record view shows. `notes`: consultations with what the clinician
    wrote (never in the research view, whose records carry none)."""
    name = section.name
    entries = newest_first(section.entries)
    if name is SectionName.ALLERGIES:  # the most severe first, then the most recent
        rows = sorted((_allergy_row(e) for e in entries), key=lambda row: -row.alert)
        return [group_of("allergies", BODY_TITLES[name], ALLERGY_TABLE, [[row] for row in rows], "allergies",
                         empty_text=NO_ALLERGIES)]
    if name is SectionName.PROBLEMS:
        by_group = _grouped(name, entries)
        return [group_of(key, GROUP_TITLES[("problems", key)], PROBLEM_TABLE,
                         [[_entry_row(name, e)] for e in by_group.get(key, [])], "problems")
                for key in (ACTIVE, PAST)]
    if name is SectionName.MEDICATIONS:
        by_group = _grouped(name, entries)
        groups = [group_of(key, GROUP_TITLES[("medications", key)], MEDICATION_TABLE,
                           [[_entry_row(name, e)] for e in by_group[key]], "medicines")
                  for key in (REPEAT, ACUTE, CURRENT) if by_group.get(key)]
        if by_group.get(PAST):
            if not groups:  # only past medicines: say there is nothing current, rather than show a fold alone
                groups.append(group_of(CURRENT, GROUP_TITLES[("medications", CURRENT)], MEDICATION_TABLE, [],
                                       "medicines", empty_text=NO_CURRENT_MEDICATION))
            groups.append(group_of("past-medication", GROUP_TITLES[("medications", PAST)], MEDICATION_TABLE,
                                   [[_entry_row(name, e)] for e in by_group[PAST]], "medicines", collapsed=True))
        return groups or [group_of(CURRENT, BODY_TITLES[name], MEDICATION_TABLE, [], "medicines")]
    if name is SectionName.ENCOUNTERS:
        return [group_of("encounters", BODY_TITLES[name], CONSULTATION_TABLE,
                         [_consultation_rows(e, notes) for e in entries], "consultations")]
    if name is SectionName.OBSERVATIONS:
        from app.ui.results_table import results_group

        return [results_group(BODY_TITLES[name], section.entries)]
    return [group_of("immunisations", BODY_TITLES[name], IMMUNISATION_TABLE,
                     [[_entry_row(name, e)] for e in entries], "immunisations")]


def _grouped(name: SectionName, entries: list[Entry]) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        key = entry_group(name.value, entry.group, entry.status) or ACTIVE
        groups.setdefault(key, []).append(entry)
    return groups


def _entry_row(name: SectionName, entry: Entry) -> Row:
    return Row((format_partial_date(entry.when), entry.text, status_words(name.value, entry.status),
                entry.detail or ""))


def _allergy_row(entry: Entry) -> Row:
    severity = severity_words(entry.severity)
    status = status_words("allergies", entry.status)
    text = f"{entry.text} ({status.lower()})" if status else entry.text
    alert = 2 if severity in ("Severe", "High risk") else 0
    return Row((format_partial_date(entry.when), text, severity, entry.reaction or entry.detail or ""), alert=alert)


def _consultation_rows(entry: Entry, notes: bool) -> list[Row]:
    rows = [Row((format_partial_date(entry.when), entry.text, status_words("encounters", entry.status),
                 entry.detail or ""))]
    if notes and entry.notes and entry.notes.strip():
        rows.append(Row(("", entry.notes.strip(), "", ""), span=True, muted=True))
    return rows
