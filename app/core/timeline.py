"""One patient across every practice: a single chronological timeline and the differences between practices.

Pure: built from the records the core has already opened (one per practice, the same NHS number), with no
request, no journal and no UI. The timeline lists every entry of every loaded section, newest first (FHIR
dates may be partial: "1998", "2001-04"; undated entries last), each marked with its practice. The
differences are what a medicines reconciliation looks for:

- an allergy recorded (active) at one practice and not at another, or recorded there as resolved;
- a repeat medication current at one practice and stopped, or not on the list, at another;
- a problem active at one practice and resolved (past) at another.

Entries are matched across practices by code first (SNOMED CT, dm+d, LOINC), by normalised text second. A
section a practice could not send (failed, not provided, withheld) is never read as "not recorded there":
it is named as not compared instead, and no difference claims an absence there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from app.core import nhs_number
from app.core.display import status_words
from app.core.model import SECTION_TITLES, Coding, Entry, PatientRecord, Practice, Section, SectionName

#: "not-compared": a practice's section could not be compared at all; "partial": it was, but the practice says
#: it is incomplete (items withheld, a record transfer under way), so an absence there may not be real
DifferenceKind = Literal["not-compared", "partial", "allergy", "medication", "problem"]

#: the sections the differences compare, in the order a reconciliation reads them
COMPARED_SECTIONS = (SectionName.ALLERGIES, SectionName.MEDICATIONS, SectionName.PROBLEMS)


@dataclass(frozen=True)
class PracticeMark:
    """How the timeline marks a practice: its id, name and colour."""

    id: str
    name: str
    colour: str

    @classmethod
    def of(cls, practice: Practice) -> PracticeMark:
        return cls(practice.id, practice.name, practice.colour)


@dataclass(frozen=True)
class TimelineItem:
    """One entry of one practice's record, on the shared timeline."""

    date: str | None  # the entry's own (possibly partial) ISO date; None: undated
    practice: PracticeMark
    section: SectionName
    text: str
    entry: Entry


@dataclass(frozen=True)
class Difference:
    """One thing the practices disagree on, or one section that could not be compared.

    `states` says, per practice id, what that practice records ("current repeat", "stopped", "not recorded",
    "active", "resolved", "could not be compared" ...), in the order of the practices."""

    kind: DifferenceKind
    item: str  # the allergy, medicine or problem as a practice names it; the section's title for not-compared
    text: str  # the whole difference in one sentence
    states: tuple[tuple[str, str], ...] = ()  # (practice id, state)
    section: SectionName | None = None
    entries: tuple[Entry, ...] = field(default=(), compare=False)  # every practice's entries for the item


@dataclass(frozen=True)
class Timeline:
    practices: tuple[PracticeMark, ...]
    items: tuple[TimelineItem, ...]
    differences: tuple[Difference, ...] = field(default=())

    @property
    def not_compared(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.kind == "not-compared")

    @property
    def disagreements(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.kind not in ("not-compared", "partial"))


class MixedPatientsError(ValueError):
    """Clinical safety: the records given are not all the same patient (NHS number)."""


def build_timeline(records: Sequence[tuple[Practice, PatientRecord]]) -> Timeline:
    """The timeline and differences of one patient's records, one per practice (practice order kept).

    Raises MixedPatientsError when the records are not all of one NHS number: two people's entries are never
    put on one timeline."""
    numbers = {nhs_number.normalise(r.patient.nhs_number or "") for _, r in records}
    if len(numbers) > 1 or "" in numbers:
        raise MixedPatientsError("The records are not all of one patient by NHS number, so they are not put on "
                                 "one timeline.")
    marks = tuple(PracticeMark.of(p) for p, _ in records)
    items = [TimelineItem(e.when, mark, name, e.text, e)
             for mark, (_, record) in zip(marks, records, strict=True)
             for name in SectionName
             if (section := record.sections.get(name)) is not None and section.status == "loaded"
             for e in section.entries]
    order = {m.id: i for i, m in enumerate(marks)}
    sections = {name: i for i, name in enumerate(SectionName)}
    items.sort(key=lambda i: (order[i.practice.id], sections[i.section], i.text))  # ties: stable
    items.sort(key=lambda i: date_key(i.date), reverse=True)
    return Timeline(marks, tuple(items), tuple(differences(records)))


# --- dates -----------------------------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def date_key(text: str | None) -> tuple[int, ...]:
    """A key that sorts (possibly partial) ISO dates and dateTimes in time order; undated (or unreadable)
    sorts before every date, so that newest-first puts it last. A year alone sorts before that year's
    months and days (it is less precise, not earlier)."""
    if not text:
        return (0,)
    text = text.strip()
    found = _DATE.match(text)
    if found:
        year, month, day = found.groups()
        return (1, int(year), int(month or 0), int(day or 0), -1)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (0,)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (1, moment.year, moment.month, moment.day, moment.hour * 3600 + moment.minute * 60 + moment.second)


# --- matching entries across practices ----------------------------------------------------------------------

#: code systems that are one code space: dm+d concepts are SNOMED CT (UK drug extension) identifiers
_SYSTEMS = {
    "http://snomed.info/sct": "snomed",
    "https://dmd.nhs.uk": "snomed",
    "http://dmd.nhs.uk": "snomed",
    "https://fhir.nhs.uk/id/dmd": "snomed",
    "http://loinc.org": "loinc",
}

_UNIT = re.compile(r"(\d)\s+(mg|mcg|microgram|micrograms|g|ml|units?|%)\b")


def code_key(coding: Coding | None) -> tuple[str, str] | None:
    if coding is None or not coding.code or not coding.code.strip():
        return None
    system = (coding.system or "").strip().rstrip("/")
    return _SYSTEMS.get(system, system), coding.code.strip()


def text_key(text: str) -> str:
    """Case, punctuation and spacing do not make two entries different ("Amoxicillin 500 mg capsules" is
    "amoxicillin 500mg capsules"); anything else (another strength, another form) does."""
    words = re.sub(r"[^\w%]+", " ", text.casefold()).strip()
    return _UNIT.sub(r"\1\2", " ".join(words.split()))


class _Groups:
    """Union-find over (practice index, entry): entries that share a code or a normalised text are one item."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _matched(per_practice: Sequence[Iterable[Entry]]) -> list[dict[int, list[Entry]]]:
    """Items found at one or more practices: per item, practice index -> that practice's entries for it."""
    groups = _Groups()
    flat: list[tuple[int, Entry]] = []
    first_by_key: dict[object, int] = {}
    for practice, entries in enumerate(per_practice):
        for entry in entries:
            node = groups.add()
            flat.append((practice, entry))
            for key in (("code", code_key(entry.coding)), ("text", text_key(entry.text))):
                if key[1] is None or key[1] == "":
                    continue
                if key in first_by_key:
                    groups.join(node, first_by_key[key])
                else:
                    first_by_key[key] = node
    items: dict[int, dict[int, list[Entry]]] = {}
    for node, (practice, entry) in enumerate(flat):
        items.setdefault(groups.find(node), {}).setdefault(practice, []).append(entry)
    return list(items.values())


# --- what each practice records about an item ------------------------------------------------------------------

def _status(entry: Entry) -> str:
    """The FHIR status code alone ("active (unconfirmed)" -> "active")."""
    return (entry.status or "").strip().casefold().split(" ")[0]


def _in_error(entry: Entry) -> bool:
    return _status(entry) in ("entered-in-error", "refuted") or "entered-in-error" in (entry.status or "")


def allergy_active(entry: Entry) -> bool:
    return _status(entry) not in ("resolved", "inactive")


def medication_state(entry: Entry) -> Literal["repeat", "current", "acute", "stopped"]:
    """'repeat' (a current repeat), 'current' (current, repeat or acute not said), 'acute', or 'stopped'."""
    group = (entry.group or "").casefold()
    if group == "past":
        return "stopped"
    status = _status(entry)
    if status in ("stopped", "completed", "cancelled", "not-taken", "inactive", "ended"):
        return "stopped"
    if group == "repeat":
        return "repeat"
    if group == "acute":
        return "acute"
    return "current"


def problem_state(entry: Entry) -> Literal["active", "past", "unknown"]:
    group = (entry.group or "").casefold()
    if group in ("active", "past"):
        return "active" if group == "active" else "past"
    status = _status(entry)
    if status in ("active", "recurrence", "relapse"):
        return "active"
    if status in ("inactive", "remission", "resolved"):
        return "past"
    return "unknown"


# --- the differences ------------------------------------------------------------------------------------------

def _uncomparable(section: Section | None) -> str | None:
    """Why a practice's section cannot be compared (None: it loaded, so an absence there is real)."""
    if section is None:
        return "the practice's system sent nothing for it"
    if section.status == "failed":
        return f"it could not be loaded ({(section.error or 'no reason given').strip().rstrip('.')})"
    if section.status == "unsupported":
        return "the practice's system does not provide it"
    if section.status == "withheld":
        return "it is withheld under the access policy"
    return None


def _names(marks: Sequence[PracticeMark], indexes: Iterable[int]) -> str:
    names = [marks[i].name for i in indexes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


Records = Sequence[tuple[Practice, PatientRecord]]


def differences(records: Records) -> list[Difference]:
    """Sections that could not be compared first (they qualify everything after), then allergies,
    medications and problems the practices disagree on. One practice alone has nothing to compare."""
    if len(records) < 2:
        return []
    marks = [PracticeMark.of(p) for p, _ in records]
    found: list[Difference] = []
    comparable: dict[SectionName, list[int]] = {}
    for name in COMPARED_SECTIONS:
        comparable[name] = []
        for index, (_, record) in enumerate(records):
            why = _uncomparable(record.sections.get(name))
            title = SECTION_TITLES[name]
            if why is None:
                comparable[name].append(index)
                found += [Difference("partial", title, f"{title} at {marks[index].name} may be incomplete: {said} "
                                     "Something not recorded there may only be withheld.",
                                     ((marks[index].id, "may be incomplete"),), name)
                          for said in _section_warnings(record, name)]
                continue
            found.append(Difference(
                "not-compared", title, f"{title} at {marks[index].name} could not be compared: {why}. This does "
                "not mean none are recorded there.", ((marks[index].id, "could not be compared"),), name))
    found += _allergy_differences(records, marks, comparable[SectionName.ALLERGIES])
    found += _medication_differences(records, marks, comparable[SectionName.MEDICATIONS])
    found += _problem_differences(records, marks, comparable[SectionName.PROBLEMS])
    return found


def _section_warnings(record: PatientRecord, name: SectionName) -> list[str]:
    """What the practice said of this section ("Allergies and adverse reactions: items excluded due to
    confidentiality …", as the adapters write a section's warning), without the title."""
    prefix = f"{SECTION_TITLES[name]}: "
    return [w[len(prefix):].strip() for w in record.warnings if w.startswith(prefix)]


def _entries(records: Records, name: SectionName, indexes: list[int]) -> list[list[Entry]]:
    out: list[list[Entry]] = []
    for index in indexes:
        section = records[index][1].sections[name]
        out.append([e for e in section.entries if not _in_error(e)])
    return out


def _label(entries: dict[int, list[Entry]], prefer: Iterable[int]) -> str:
    for index in prefer:
        if entries.get(index):
            return entries[index][0].text
    return next(iter(entries.values()))[0].text


def _states_text(marks: Sequence[PracticeMark], by_state: dict[str, list[int]]) -> str:
    return "; ".join(f"{state} at {_names(marks, indexes)}" for state, indexes in by_state.items() if indexes)


def _difference(kind: DifferenceKind, section: SectionName, item: str, marks: Sequence[PracticeMark],
                states: dict[int, str], order: Sequence[str], entries: dict[int, list[Entry]],
                note: str | None = None) -> Difference:
    by_state: dict[str, list[int]] = {state: [] for state in order}
    for index, state in sorted(states.items()):
        by_state.setdefault(state, []).append(index)
    named = f"{item} ({note})" if note else item
    text = f"{named}: {_states_text(marks, by_state)}."
    return Difference(kind, item, text, tuple((marks[i].id, s) for i, s in sorted(states.items())), section,
                      tuple(e for _, found in sorted(entries.items()) for e in found))


def _allergy_differences(records: Records, marks: Sequence[PracticeMark], indexes: list[int]) -> list[Difference]:
    if len(indexes) < 2:
        return []
    out = []
    for item in _matched(_entries(records, SectionName.ALLERGIES, indexes)):
        entries = {indexes[i]: es for i, es in item.items()}
        states: dict[int, str] = {}
        for index in indexes:
            here = entries.get(index, [])
            if any(allergy_active(e) for e in here):
                states[index] = "recorded"
            elif here:
                states[index] = "recorded as resolved"
            else:
                states[index] = "not recorded"
        if "recorded" in states.values() and set(states.values()) != {"recorded"}:
            recorded = [i for i in indexes if states[i] == "recorded"]
            label = _label(entries, recorded)
            reaction = next((e.reaction or e.detail for i in recorded for e in entries[i] if e.reaction or e.detail),
                            None)
            out.append(_difference("allergy", SectionName.ALLERGIES, label, marks, states,
                                   ("recorded", "recorded as resolved", "not recorded"), entries, note=reaction))
    return out


def _medication_differences(records: Records, marks: Sequence[PracticeMark], indexes: list[int]) -> list[Difference]:
    if len(indexes) < 2:
        return []
    words = {"repeat": "current repeat", "current": "current", "acute": "acute", "stopped": "stopped"}
    rank = {"repeat": 0, "current": 1, "acute": 2, "stopped": 3}
    out = []
    for item in _matched(_entries(records, SectionName.MEDICATIONS, indexes)):
        entries = {indexes[i]: es for i, es in item.items()}
        states: dict[int, str] = {}
        for index in indexes:
            here = entries.get(index, [])
            best = min((medication_state(e) for e in here), key=rank.__getitem__, default=None)
            states[index] = words[best] if best else "not on the medication list"
        current = [i for i in indexes if states[i] in ("current repeat", "current")]
        missing = [i for i in indexes if states[i] in ("stopped", "not on the medication list")]
        if current and missing:
            label = _label(entries, current)
            out.append(_difference("medication", SectionName.MEDICATIONS, label, marks, states,
                                   ("current repeat", "current", "acute", "stopped", "not on the medication list"),
                                   entries))
    return out


def _problem_differences(records: Records, marks: Sequence[PracticeMark], indexes: list[int]) -> list[Difference]:
    if len(indexes) < 2:
        return []
    out = []
    for item in _matched(_entries(records, SectionName.PROBLEMS, indexes)):
        entries = {indexes[i]: es for i, es in item.items()}
        states: dict[int, str] = {}
        for index in indexes:
            kinds = {problem_state(e) for e in entries.get(index, [])}
            states[index] = ("active" if "active" in kinds else "resolved (past)" if "past" in kinds
                             else "recorded" if kinds else "not recorded")
        active = [i for i, s in states.items() if s == "active"]
        if active and "resolved (past)" in states.values():
            label = _label(entries, active)
            out.append(_difference("problem", SectionName.PROBLEMS, label, marks, states,
                                   ("active", "resolved (past)", "recorded", "not recorded"), entries))
    return out


# --- how a timeline row reads -----------------------------------------------------------------------------------

#: a section as one timeline row names its kind of entry
ENTRY_KIND = {
    SectionName.PROBLEMS: "Problem",
    SectionName.MEDICATIONS: "Medication",
    SectionName.ALLERGIES: "Allergy",
    SectionName.ENCOUNTERS: "Consultation",
    SectionName.OBSERVATIONS: "Result",
    SectionName.IMMUNISATIONS: "Immunisation",
}


def item_words(item: TimelineItem) -> str:
    """'Amlodipine 5mg tablets · Stopped — one daily': the entry, its status in clinical words (nothing when
    it is the ordinary case) and its detail."""
    entry = item.entry
    words = entry.text
    status = status_words(item.section, entry.status)  # a StrEnum is its value (Enum.value is slow)
    if status:
        words += f" · {status}"
    if entry.detail:
        words += f" — {entry.detail}"
    return words


@dataclass(frozen=True)
class TimelineRow:
    """Entries that say the same thing (same date, kind, words) at several practices, read as one row that
    names every practice holding it; an entry only one practice holds is a row of its own."""

    date: str | None
    section: SectionName
    words: str
    practices: tuple[PracticeMark, ...]
    items: tuple[TimelineItem, ...]


def rows(timeline: Timeline) -> list[TimelineRow]:
    """The timeline as it is read: newest first, the same entry at several practices once."""
    grouped: dict[tuple[str | None, SectionName, str], list[TimelineItem]] = {}
    for item in timeline.items:
        grouped.setdefault((item.date, item.section, item_words(item)), []).append(item)
    order = {m.id: i for i, m in enumerate(timeline.practices)}
    out = []
    for (when, section, words), items in grouped.items():
        items.sort(key=lambda i: order[i.practice.id])
        marks = tuple(dict.fromkeys(i.practice for i in items))
        out.append(TimelineRow(when, section, words, marks, tuple(items)))
    return out
