"""A demo practice's appointment book (issue 13): two years of sessions, slots, appointments and contacts.

The book is made the first time it is asked for (about 0.3 s for a 2,000-patient practice) and kept as
compact tuples; FHIR JSON is written per page (app/demo/appointment_book_fhir.py), so a practice's 150,000
resources never sit in memory as dicts. The same practice, seed and reference date always give the same book.

Patterns, so the locality view has something to show: Monday is the busiest day, Friday the quietest; winter
(peaking mid-January) is busier than summer; no clinics on bank holidays or Sundays, and a GP's extended-access
Saturday morning at most practices. Practices differ by their id (`practice_profile`): "high-dna" (one
patient in eight does not attend), "short-of-capacity" (fewer slots than demand: near-full books, long waits,
few same-day appointments, no Saturdays) and "own-mapping" (its local slot types mapped to other national
categories). Volume follows the list: 12.5 appointments a registered patient a year (the demo's lists are
small, so each practice is staffed as a real one of about 4,500 patients is), ~50,000 over two years at 2,000.

Tests change a running book through `add_appointment`, `set_status` and `add_raw` (each stamps
meta.lastUpdated with the time now, so an incremental read finds it).
"""

from __future__ import annotations

import math
import random
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from app.core.gui_turns import give_way
from app.demo.appointment_book_codes import ROLE_CODES, SlotType, slot_types
from app.demo.appointment_calendar import Calendar, bank_holidays
from app.demo.population import hash_seed

APPOINTMENTS_PER_PATIENT_YEAR = 12.5
WORKING_DAYS_PER_YEAR = 252
YEARS = 2
DAYS_AHEAD = 28  # books open four weeks ahead
DAYS_BEFORE = 120  # bookings made before the period's first day
NOW_MINUTE = 8 * 60  # "now" in the book: 08:00 on the reference date

#: weekday (Monday 0) -> demand and supply relative to an average day
DEMAND_BY_WEEKDAY = (1.30, 1.02, 0.97, 0.95, 0.86)
SUPPLY_BY_WEEKDAY = (1.12, 1.02, 1.00, 0.98, 0.90)
ROLE_SHARE = {"gp": 0.58, "nurse": 0.24, "pharmacist": 0.07, "other": 0.11}
UNAVAILABLE_SHARE = 0.03  # slots blocked for admin or training (busy-unavailable)
CANCELLED_SHARE = 0.05  # bookable slots that also carry an appointment cancelled before it

SLOT_STATUSES = ("free", "busy", "busy-unavailable")
FREE, BUSY, UNAVAILABLE = 0, 1, 2

#: the demo's first five practices by id; others by a hash of their id
_PROFILES = {"riverside": "high-dna", "millbrook": "short-of-capacity", "hillview": "own-mapping",
             "oakwood": "normal", "castlegate": "normal"}
_PROFILE_CYCLE = ("normal", "high-dna", "short-of-capacity", "own-mapping", "normal", "normal")


def practice_profile(practice_id: str) -> str:
    """normal | high-dna | short-of-capacity | own-mapping, the same for a practice id every time."""
    return _PROFILES.get(practice_id) or _PROFILE_CYCLE[hash_seed("book-profile", practice_id) % len(_PROFILE_CYCLE)]


@dataclass(frozen=True)
class Behaviour:
    dna_rate: float  # of past appointments
    capacity: float  # slots for each unit of demand
    same_day: float  # share of appointments booked on the day
    mean_lead_days: float  # mean days ahead for the rest
    saturday: bool


def behaviour(profile: str) -> Behaviour:
    return Behaviour(dna_rate=0.125 if profile == "high-dna" else 0.045,
                     capacity=0.90 if profile == "short-of-capacity" else 1.15,
                     same_day=0.20 if profile == "short-of-capacity" else 0.42,
                     mean_lead_days=15.0 if profile == "short-of-capacity" else 5.0,
                     saturday=profile != "short-of-capacity")


@dataclass(frozen=True)
class Clinician:
    index: int
    name: str
    role: str  # gp | nurse | pharmacist | other
    weekdays: frozenset[int]

    @property
    def practitioner_id(self) -> str:
        return f"pr{self.index}"

    @property
    def role_id(self) -> str:
        return f"prr{self.index}"

    @property
    def schedule_id(self) -> str:
        return f"sch{self.index}"


# Tuples, sorted by start (epoch second) then id:
#   slot:        (start, id, minute, minutes, clinician, type, status, updated)
#   appointment: (start, id, minute, minutes, clinician, type, status, created minute, slot id | -1,
#                 patient position | -1, updated)
#   encounter:   (start, id, minute, minutes, clinician, type, appointment id, patient position, updated)
Row = tuple[Any, ...]


class AppointmentBook:
    """One practice's book. Thread-safe: the demo server answers on several threads."""

    def __init__(self, practice_id: str, staff: Sequence[str], nurses: Sequence[str], list_size: int,
                 reference_date: date, seed: int = 0, patient_ids: Callable[[int], str] | None = None) -> None:
        self.practice_id = practice_id
        self.profile = practice_profile(practice_id)
        self.behaviour = behaviour(self.profile)
        self.types: tuple[SlotType, ...] = slot_types(self.profile)
        self.reference_date = reference_date
        try:
            self.first_day = reference_date.replace(year=reference_date.year - YEARS) + timedelta(days=1)
        except ValueError:  # 29 February
            self.first_day = date(reference_date.year - YEARS, 3, 1)
        self.last_day = reference_date + timedelta(days=DAYS_AHEAD - 1)
        self.calendar = Calendar(self.first_day - timedelta(days=DAYS_BEFORE),
                                 DAYS_BEFORE + (self.last_day - self.first_day).days + 1)
        self.list_size = list_size
        self.seed = seed
        self.patient_id = patient_ids
        self.clinicians = _clinicians(practice_id, seed, staff, nurses)
        self._lock = threading.RLock()
        self._built = False
        self.build_seconds = 0.0
        self.version = 0  # bumped by every change, for the search cache
        self.rows: dict[str, list[Row]] = {"Slot": [], "Appointment": [], "Encounter": []}
        self.starts: dict[str, list[int]] = {"Slot": [], "Appointment": [], "Encounter": []}
        #: resources added whole by a test (a malformed one): (type) -> [(start, updated, resource JSON text)]
        self.raw: dict[str, list[tuple[float, float, str]]] = {}
        self._next_id = 0
        self.built_at = 0

    # -- building -----------------------------------------------------------------------------

    def ensure_built(self) -> AppointmentBook:
        if self._built:
            return self
        with self._lock:
            if not self._built:
                started = time.perf_counter()
                self._generate()
                self.build_seconds = time.perf_counter() - started
                self._built = True
        return self

    def _generate(self) -> None:
        cal, b = self.calendar, self.behaviour
        rng = random.Random(hash_seed("appointment-book", self.seed, self.practice_id, self.reference_date,
                                      self.list_size))
        rnd, log = rng.random, math.log
        self.built_at = int(time.time()) - 1  # generated history is never newer than the book
        cap = self.built_at
        per_day = self.list_size * APPOINTMENTS_PER_PATIENT_YEAR / WORKING_DAYS_PER_YEAR
        holidays = set().union(*(bank_holidays(y) for y in range(self.first_day.year, self.last_day.year + 1)))
        now_day = cal.index(self.reference_date)
        now_minute = now_day * 1440 + NOW_MINUTE
        by_role = {role: [c for c in self.clinicians if c.role == role] for role in ROLE_SHARE}
        type_choices = {role: _cumulative([(i, t.weight) for i, t in enumerate(self.types[:-1]) if t.role == role])
                        for role in ROLE_SHARE}
        saturday_type = len(self.types) - 1
        q0, mu = b.same_day, b.mean_lead_days
        keep = 1 - 1 / mu  # geometric survival per day of lead
        patients = self.list_size
        slots: list[Row] = []
        appts: list[Row] = []
        encs: list[Row] = []
        sid = aid = 0
        for d in range(cal.index(self.first_day), len(cal)):
            give_way()  # a day at a time: the window's GUI thread first, when the demo runs in its process
            day = cal.dates[d]
            weekday = day.weekday()
            if day in holidays or weekday == 6 or (weekday == 5 and not b.saturday):
                continue
            season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)
            after_holiday = (day - timedelta(days=1 if weekday else 3)) in holidays
            if weekday == 5:
                demand = supply = per_day * 0.22
                plan = [(c, saturday_type, 1.0) for c in by_role["gp"][:1]]
            else:
                demand = per_day * DEMAND_BY_WEEKDAY[weekday] * (1 + 0.17 * season) * (1.15 if after_holiday else 1)
                supply = per_day * b.capacity * SUPPLY_BY_WEEKDAY[weekday] * (1 + 0.06 * season)
                plan = []
                for role, share in ROLE_SHARE.items():
                    on = [c for c in by_role[role] if weekday in c.weekdays]
                    plan.extend((c, -1, share / len(on)) for c in on)
            demand *= 0.93 + 0.14 * rnd()
            bookable_share = min(0.995, demand / (supply * (1 - UNAVAILABLE_SHARE)))
            lead_days = d - now_day  # >= 0: the day is ahead of "now"
            if lead_days >= 0:  # the share booked so far: those booked at least lead_days + 1 days ahead
                bookable_share *= (1 - q0) * keep ** lead_days
            base = cal.midnight[d]
            for clinician, fixed_type, share in plan:
                count = int(supply * share + rnd())
                cursor, lunch_taken = 510, False  # 08:30
                for _ in range(count):
                    typ = fixed_type if fixed_type >= 0 else _pick(type_choices[clinician.role], rnd())
                    length = self.types[typ].minutes
                    if cursor >= 720 and not lunch_taken:
                        cursor, lunch_taken = 840, True  # the afternoon session from 14:00
                    minute = d * 1440 + cursor
                    start = base + cursor * 60
                    cursor += length
                    sid += 1
                    if rnd() < UNAVAILABLE_SHARE:
                        slots.append((start, sid, minute, length, clinician.index, typ, UNAVAILABLE,
                                      min(start - 42 * 86400, cap)))
                        continue
                    slot_updated = start - 42 * 86400  # published six weeks ahead
                    if rnd() < CANCELLED_SHARE:  # an earlier booking of this slot, cancelled
                        made = minute - (lead_days + 2 + int(-log(1 - rnd()) * mu)) * 1440 if lead_days >= 0 \
                            else minute - (2 + int(-log(1 - rnd()) * mu)) * 1440
                        made = max(made, 0)
                        aid += 1
                        cancelled_at = min(cal.epoch(made) + int(rnd() * (start - cal.epoch(made)) / 2), cap)
                        appts.append((start, aid, minute, length, clinician.index, typ, "cancelled", made, sid,
                                      int(rnd() * patients) if patients else -1, cancelled_at))
                        slot_updated = max(slot_updated, cancelled_at)
                    if rnd() >= bookable_share:
                        slots.append((start, sid, minute, length, clinician.index, typ, FREE, min(slot_updated, cap)))
                        continue
                    if lead_days >= 0:
                        lead = lead_days + 1 + int(-log(1 - rnd()) * mu)
                    else:
                        lead = 0 if rnd() < q0 else 1 + int(-log(1 - rnd()) * (mu - 1))
                    if lead == 0:
                        made = max(d * 1440 + 420, minute - 15 - int(rnd() * 150))  # that morning, from 07:00
                    else:
                        made = (d - lead) * 1440 + 480 + int(rnd() * 600)
                    made = max(made, 0)
                    aid += 1
                    patient = int(rnd() * patients) if patients else -1
                    end = start + length * 60
                    if minute < now_minute:
                        r = rnd()
                        status = "noshow" if r < b.dna_rate else "booked" if r < b.dna_rate + 0.004 else \
                            "arrived" if r < b.dna_rate + 0.007 else "fulfilled"
                        updated = min(end, cap)
                    else:
                        status, updated = "booked", min(cal.epoch(made), cap)
                    appts.append((start, aid, minute, length, clinician.index, typ, status, made, sid, patient,
                                  updated))
                    slots.append((start, sid, minute, length, clinician.index, typ, BUSY,
                                  min(max(slot_updated, cal.epoch(made)), cap)))
                    if status == "fulfilled":
                        encs.append((start, aid, minute, length, clinician.index, typ, aid, patient, min(end, cap)))
        slots.sort()
        appts.sort()
        encs.sort()
        self._next_id = max(sid, aid) + 1
        for rtype, rows in (("Slot", slots), ("Appointment", appts), ("Encounter", encs)):
            self.rows[rtype] = rows
            self.starts[rtype] = [r[0] for r in rows]

    # -- reading ------------------------------------------------------------------------------

    def select(self, rtype: str, start: tuple[float | None, bool, float | None, bool],
               updated_after: float | None) -> list[Row]:
        """Rows of `rtype` whose start is within (low, low_inclusive, high, high_inclusive) (None: open), and
        changed after `updated_after` when given; in start order."""
        self.ensure_built()
        low, low_inclusive, high, high_inclusive = start
        with self._lock:
            rows, starts = self.rows.get(rtype, []), self.starts.get(rtype, [])
            lo = 0 if low is None else (bisect_left if low_inclusive else bisect_right)(starts, low)
            hi = len(rows) if high is None else (bisect_right if high_inclusive else bisect_left)(starts, high)
            chosen = rows[lo:hi]
        if updated_after is not None:
            chosen = [r for r in chosen if r[-1] > updated_after]
        return chosen

    def raw_rows(self, rtype: str, start: tuple[float | None, bool, float | None, bool],
                 updated_after: float | None) -> list[str]:
        """Resources a test added whole (add_raw), filtered as `select` filters rows."""
        low, low_inclusive, high, high_inclusive = start
        found = []
        with self._lock:
            items = list(self.raw.get(rtype, ()))
        for when, updated, text in items:
            if low is not None and (when < low or (when == low and not low_inclusive)):
                continue
            if high is not None and (when > high or (when == high and not high_inclusive)):
                continue
            if updated_after is not None and updated <= updated_after:
                continue
            found.append(text)
        return found

    def find(self, rtype: str, row_id: int) -> Row | None:
        self.ensure_built()
        with self._lock:
            return next((r for r in self.rows.get(rtype, ()) if r[1] == row_id), None)

    # -- changes (for tests) --------------------------------------------------------------------

    def add_appointment(self, start: datetime, *, minutes: int = 10, status: str = "booked",
                        slot_type: str = "Routine GP appointment", clinician: int = 0,
                        created: datetime | None = None, patient: int = -1) -> str:
        """Add an appointment (without a slot) and return its id; meta.lastUpdated is now."""
        self.ensure_built()
        typ = next(i for i, t in enumerate(self.types) if t.local == slot_type)
        cal = self.calendar
        minute = cal.minute_of(start)
        try:
            now = cal.minute_of(datetime.now().astimezone())
        except ValueError:  # a book whose reference date is long past
            now = minute
        made = cal.minute_of(created) if created is not None else min(minute, now)
        with self._lock:
            aid = self._next_id
            self._next_id += 1
            row = (cal.epoch(minute), aid, minute, minutes, clinician, typ, status, made, -1, patient, time.time())
            self._insert("Appointment", row)
        return f"ap{aid:x}"

    def set_status(self, appointment_id: str, status: str) -> None:
        """Change an appointment's status (meta.lastUpdated now)."""
        aid = int(appointment_id.removeprefix("ap"), 16)
        with self._lock:
            rows = self.rows["Appointment"]
            at = next(i for i, r in enumerate(rows) if r[1] == aid)
            rows[at] = (*rows[at][:6], status, *rows[at][7:10], time.time())
            self.version += 1

    def add_raw(self, rtype: str, resource_json: str, start: datetime, updated: float | None = None) -> None:
        """Serve `resource_json` (any text, e.g. a malformed resource) among `rtype`'s search results."""
        self.ensure_built()
        with self._lock:
            self.raw.setdefault(rtype, []).append((start.timestamp(), time.time() if updated is None else updated,
                                                   resource_json))
            self.version += 1

    def _insert(self, rtype: str, row: Row) -> None:
        rows, starts = self.rows[rtype], self.starts[rtype]
        at = bisect_right(rows, row)
        rows.insert(at, row)
        insort(starts, row[0])
        self.version += 1

    # -- facts --------------------------------------------------------------------------------

    def patient_reference(self, position: int) -> str | None:
        if position < 0 or self.patient_id is None:
            return None
        return self.patient_id(position)

    def counts(self) -> dict[str, int]:
        self.ensure_built()
        return {rtype: len(rows) for rtype, rows in self.rows.items()}


def _clinicians(practice_id: str, seed: int, staff: Sequence[str], nurses: Sequence[str]) -> tuple[Clinician, ...]:
    """The practice's GPs and nurses (its spec), a pharmacist and a healthcare assistant, with their working days."""
    rng = random.Random(hash_seed("clinicians", seed, practice_id))
    everyday = frozenset(range(5))
    people: list[tuple[str, str, frozenset[int]]] = []
    gps = list(staff) or ["Dr A Locum"]
    for i, name in enumerate(gps):
        off = i % 5
        people.append((name, "gp", everyday - {off} if len(gps) >= 4 else everyday))
    people.extend((name.removesuffix(" (Practice Nurse)"), "nurse", everyday)
                  for name in (list(nurses) or ["Practice Nurse"]))
    people.append((f"{_initial(rng)} Okafor (Clinical Pharmacist)", "pharmacist", frozenset({1, 2, 3})))
    people.append((f"{_initial(rng)} Hughes ({ROLE_CODES['other'][2]})", "other", everyday))
    return tuple(Clinician(i, name, role, days) for i, (name, role, days) in enumerate(people))


def _initial(rng: random.Random) -> str:
    return "ABCDEFGHJKLMNPRSTW"[int(rng.random() * 18)]


def _cumulative(weights: list[tuple[int, float]]) -> tuple[list[float], list[int]]:
    total = sum(w for _, w in weights)
    edges, running = [], 0.0
    for _, w in weights:
        running += w / total
        edges.append(running)
    return edges, [i for i, _ in weights]


def _pick(choices: tuple[list[float], list[int]], r: float) -> int:
    edges, items = choices
    return items[min(bisect_right(edges, r), len(items) - 1)]
