"""A practice's synthetic population: patient summaries made eagerly, clinical records lazily.

Summaries for 20,000 patients take a fraction of a second; a full record is generated from the
patient's own seed the first time it is asked for (and cached), so it is the same on every request.
Search indexes (identifier, family and given name prefixes, birth date) keep searches fast.
"""

from __future__ import annotations

import hashlib
import random
import threading
import unicodedata
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from app.core.model import REGISTRATION_TYPES, Address, PatientSummary, Registration
from app.core.nhs_number import NHS_NUMBER_SYSTEM
from app.demo.clinical_codes import SNOMED
from app.demo.nhs_numbers import NhsNumberAllocator
from app.demo.practices import PracticeSpec
from app.demo.records import condition_codes, generate_record, patient_resource
from app.demo.vocab import (
    BUILDINGS,
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    POSTCODE_UNIT_LETTERS,
    STREETS,
    TOWNS,
)

Resource = dict[str, Any]

_TOWN_INFO = {name: (area, districts) for name, area, districts in TOWNS}


@dataclass(slots=True)
class DemoPatient:
    """One registered patient. `resource` is set for loaded (e.g. Synthea) patients, served as stored."""

    local_id: str
    nhs_number: str | None
    family: str
    given: tuple[str, ...]
    prefix: str | None
    sex: str
    birth_date: date | None
    address: tuple[str, ...]
    city: str
    postcode: str
    phone: str
    record_seed: int
    resource: Resource | None = None
    #: death: False (alive), True (deceased, date not recorded) or the date of death; a fact about the person,
    #: the same at every practice the person is registered with
    deceased: bool | date = False
    #: this practice's registration: the usual GP, the NHS registration type code (REGISTRATION_TYPES: "R"
    #: regular, "T" temporary, ...) and the date registered
    usual_gp: str | None = None
    practice_ods: str | None = None
    practice_name: str | None = None
    registration_type: str | None = None
    registered_since: date | None = None
    #: a person registered at two practices: "first" (the practice they came from) or "second"; both records
    #: are made from one seed, so they agree but for a few deliberate differences (records.diverge)
    shared_as: str | None = None

    def summary(self, practice_id: str) -> PatientSummary:
        return PatientSummary(practice_id, self.local_id, self.nhs_number, self.family, self.given,
                              self.birth_date, self.sex, self.postcode or None, deceased=self.deceased,
                              address=self.home_address(), registration=self.registration())

    def home_address(self) -> Address | None:
        if not (self.address or self.city or self.postcode):
            return None
        return Address(lines=tuple(self.address), city=self.city or None, postcode=self.postcode or None)

    def registration(self) -> Registration | None:
        """The registration at this practice as the core's model holds it."""
        if self.usual_gp is None and self.registration_type is None and self.practice_ods is None:
            return None
        kind = REGISTRATION_TYPES.get(self.registration_type or "")
        return Registration(practice_ods=self.practice_ods, practice_name=self.practice_name, gp=self.usual_gp,
                            kind=kind, since=self.registered_since)


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """FHIR string matching: case- and accent-insensitive."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


class _PrefixIndex:
    """Sorted (key, position) pairs answering 'which positions have a key starting with p'."""

    def __init__(self, pairs: Iterable[tuple[str, int]]) -> None:
        ordered = sorted(pairs)
        self._keys = [k for k, _ in ordered]
        self._positions = [i for _, i in ordered]

    def starting_with(self, prefix: str) -> set[int]:
        found: set[int] = set()
        at = bisect_left(self._keys, prefix)
        keys, positions = self._keys, self._positions
        while at < len(keys) and keys[at].startswith(prefix):
            found.add(positions[at])
            at += 1
        return found


class Population:
    """The patients registered at one demo practice, searchable, with their records on demand."""

    def __init__(self, spec: PracticeSpec, patients: list[DemoPatient], reference_date: date,
                 cache_size: int = 256) -> None:
        self.spec = spec
        self.reference_date = reference_date
        self._patients = patients
        self._cache: OrderedDict[str, dict[str, list[Resource]]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.RLock()
        self._loaded: dict[str, dict[str, list[Resource]]] = {}  # local id -> type -> resources
        self._stored: dict[tuple[str, str], Resource] = {}  # (type, id) -> loaded resource
        self._dirty = True  # indexes are built on first use, or by build_indexes()
        self._conditions: dict[tuple[str, str], set[int]] | None = None  # (system, code) -> positions

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, spec: PracticeSpec, size: int, seed: int = 0,
                 nhs_numbers: NhsNumberAllocator | None = None,
                 reference_date: date | None = None) -> Population:
        """`size` patients, the same for the same spec, seed and allocator state."""
        today = reference_date or date.today()
        allocator = nhs_numbers or NhsNumberAllocator(hash_seed(seed, spec.id))
        rng = random.Random(f"population:{seed}:{spec.id}")
        patients: list[DemoPatient] = []
        ids: set[str] = set()
        for index in range(size):
            local_id = _local_id(seed, spec.id, index, ids)
            ids.add(local_id)
            patient = _random_patient(rng, local_id, allocator.next(), spec.town, today)
            patients.append(_with_life_and_registration(patient, seed, spec, today))
        return cls(spec, patients, today)

    def adopt_identity(self, position: int, source: DemoPatient) -> DemoPatient:
        """Make the patient at `position` the same person as `source` (registered elsewhere too): same NHS
        number, name, birth date, sex, address and death; this practice's own id, usual GP and a temporary
        registration. The record is made from the source's seed, so the two practices' records agree but
        for the differences `records.diverge` makes (an allergy, a repeat medication, a problem)."""
        mine = self._patients[position]
        since = self.reference_date - timedelta(days=14 + hash_seed("registered", mine.local_id) % 150)
        shared = replace(source, local_id=mine.local_id, resource=None, usual_gp=mine.usual_gp,
                         practice_ods=mine.practice_ods, practice_name=mine.practice_name, registration_type="T",
                         registered_since=since, shared_as="second")
        with self._lock:
            self._patients[position] = shared
            self._cache.pop(mine.local_id, None)
            self._dirty = True
        return shared

    def mark_shared_source(self, position: int) -> DemoPatient:
        """Mark the patient at `position` as the first of two registrations of one person (see adopt_identity)."""
        with self._lock:
            mine = replace(self._patients[position], shared_as="first")
            self._patients[position] = mine
            self._cache.pop(mine.local_id, None)
        return mine

    def add_loaded_patient(self, resource: Resource, resources: Iterable[Resource]) -> DemoPatient:
        """Register a patient whose Patient resource and record come from outside (e.g. Synthea)."""
        patient = patient_from_resource(resource)
        by_type: dict[str, list[Resource]] = {}
        with self._lock:
            for item in resources:
                by_type.setdefault(item["resourceType"], []).append(item)
                self._stored[(item["resourceType"], item["id"])] = item
            self._stored[("Patient", patient.local_id)] = resource
            self._loaded[patient.local_id] = by_type
            self._patients.append(patient)
            self._dirty = True
        return patient

    def add_reference_resources(self, resources: Iterable[Resource]) -> None:
        """Organizations, Practitioners and the like: readable by id, part of no one's record."""
        with self._lock:
            for item in resources:
                self._stored.setdefault((item["resourceType"], item["id"]), item)

    def build_indexes(self) -> None:
        """(Re)build the search indexes; queries also do this themselves when the list has changed."""
        with self._lock:
            by_id: dict[str, int] = {}
            by_identifier: dict[tuple[str, str], list[int]] = {}
            by_value: dict[str, list[int]] = {}
            by_birth: dict[date, list[int]] = {}
            families: list[tuple[str, int]] = []
            givens: list[tuple[str, int]] = []
            for pos, p in enumerate(self._patients):
                by_id[p.local_id] = pos
                if p.birth_date is not None:
                    by_birth.setdefault(p.birth_date, []).append(pos)
                if p.resource is None:  # the quick path: one NHS number, one name
                    if p.nhs_number:
                        by_identifier.setdefault((NHS_NUMBER_SYSTEM, p.nhs_number), []).append(pos)
                        by_value.setdefault(p.nhs_number, []).append(pos)
                    families.append((fold(p.family), pos))
                    givens.extend((fold(g), pos) for g in p.given)
                    continue
                for system, value in _identifiers(p):
                    by_identifier.setdefault((system, value), []).append(pos)
                    by_value.setdefault(value, []).append(pos)
                for family, given in _names(p):
                    if family:
                        families.append((fold(family), pos))
                    givens.extend((fold(g), pos) for g in given)
            self._by_id, self._by_identifier, self._by_value = by_id, by_identifier, by_value
            self._by_birth = by_birth
            self._family, self._given = _PrefixIndex(families), _PrefixIndex(givens)
            self._conditions = None  # rebuilt on the next search by condition
            self._dirty = False

    # -- patients and search ------------------------------------------------------------------

    @property
    def practice_id(self) -> str:
        return self.spec.id

    def __len__(self) -> int:
        return len(self._patients)

    def __iter__(self) -> Iterator[DemoPatient]:
        return iter(list(self._patients))

    def at(self, position: int) -> DemoPatient:
        return self._patients[position]

    def position_of(self, local_id: str) -> int | None:
        self._ensure_indexes()
        return self._by_id.get(local_id)

    def get(self, local_id: str) -> DemoPatient | None:
        pos = self.position_of(local_id)
        return None if pos is None else self._patients[pos]

    def by_nhs_number(self, nhs_number: str) -> DemoPatient | None:
        found = self.match_identifier(NHS_NUMBER_SYSTEM, nhs_number)
        return self._patients[min(found)] if found else None

    def match_identifier(self, system: str | None, value: str) -> set[int]:
        """Positions of patients with this identifier; system None means any system."""
        self._ensure_indexes()
        if system is None:
            return set(self._by_value.get(value, ()))
        return set(self._by_identifier.get((system, value), ()))

    def match_family(self, prefix: str) -> set[int]:
        self._ensure_indexes()
        return self._family.starting_with(fold(prefix))

    def match_given(self, prefix: str) -> set[int]:
        self._ensure_indexes()
        return self._given.starting_with(fold(prefix))

    def match_birth_date(self, day: date) -> set[int]:
        self._ensure_indexes()
        return set(self._by_birth.get(day, ()))

    def match_condition(self, system: str | None, code: str) -> set[int]:
        """Positions of patients with a Condition coded `code` (in `system`, or any system when None); the
        index is built on first use (a research search by criteria), from the records' problems only."""
        with self._lock:
            self._ensure_indexes()  # a change to the list rebuilds them, and drops this index
            index = self._conditions
            if index is None:
                index = {}
                for pos, p in enumerate(self._patients):
                    for key in self._condition_keys(p):
                        index.setdefault(key, set()).add(pos)
                self._conditions = index
        if system is None:
            return {pos for (_system, c), found in index.items() if c == code for pos in found}
        return set(index.get((system, code), ()))

    def _condition_keys(self, p: DemoPatient) -> set[tuple[str, str]]:
        loaded = self._loaded.get(p.local_id)
        if loaded is None:
            return {(SNOMED, code) for code in condition_codes(p, self.spec, self.reference_date)}
        keys: set[tuple[str, str]] = set()
        for resource in loaded.get("Condition", ()):
            codings = (resource.get("code") or {}).get("coding") or []
            keys |= {(str(c.get("system") or ""), str(c["code"])) for c in codings
                     if isinstance(c, dict) and c.get("code")}
        return keys

    def match_birth_range(self, after: date | None, on_or_before: date | None) -> set[int]:
        """Positions of patients born after `after` and on or before `on_or_before` (either may be open)."""
        self._ensure_indexes()
        return {pos for day, found in self._by_birth.items()
                if (after is None or day > after) and (on_or_before is None or day <= on_or_before) for pos in found}

    def all_positions(self) -> set[int]:
        return set(range(len(self._patients)))

    def search(self, nhs_number: str | None = None, family: str | None = None, given: str | None = None,
               birth_date: date | None = None) -> list[DemoPatient]:
        """Patients matching every criterion given, in registration order (a Python-side helper)."""
        sets: list[set[int]] = []
        if nhs_number:
            sets.append(self.match_identifier(NHS_NUMBER_SYSTEM, nhs_number))
        if family:
            sets.append(self.match_family(family))
        if given:
            sets.append(self.match_given(given))
        if birth_date:
            sets.append(self.match_birth_date(birth_date))
        found = set.intersection(*sets) if sets else self.all_positions()
        return [self._patients[i] for i in sorted(found)]

    # -- records ------------------------------------------------------------------------------

    def patient_resource(self, patient: DemoPatient) -> Resource:
        if patient.resource is not None:
            return patient.resource
        return patient_resource(patient, self.spec)

    def record(self, patient: DemoPatient) -> dict[str, list[Resource]]:
        """The patient's resources by type (not including the Patient itself)."""
        loaded = self._loaded.get(patient.local_id)
        if loaded is not None:
            return loaded
        with self._lock:
            cached = self._cache.get(patient.local_id)
            if cached is not None:
                self._cache.move_to_end(patient.local_id)
                return cached
        made = generate_record(patient, self.spec, self.reference_date)
        with self._lock:
            self._cache[patient.local_id] = made
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return made

    def resources(self, patient: DemoPatient, resource_type: str) -> list[Resource]:
        return list(self.record(patient).get(resource_type, ()))

    def resource_types(self) -> set[str]:
        """Types that loaded records hold (generated records hold the six core types)."""
        with self._lock:
            return {t for by_type in self._loaded.values() for t in by_type}

    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        """Any resource by type and id, or None."""
        stored = self._stored.get((resource_type, resource_id))
        if stored is not None:
            return stored
        if resource_type == "Patient":
            patient = self.get(resource_id)
            return None if patient is None else self.patient_resource(patient)
        owner_id, _, _ = resource_id.rpartition("-")
        owner = self.get(owner_id) if owner_id else None
        if owner is None or owner.resource is not None:
            return None
        return next((r for r in self.record(owner).get(resource_type, ()) if r["id"] == resource_id), None)

    def _ensure_indexes(self) -> None:
        if self._dirty:
            self.build_indexes()


def hash_seed(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def patient_from_resource(resource: Resource) -> DemoPatient:
    """The searchable facts of a stored Patient resource."""
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    nhs = next((i.get("value") for i in resource.get("identifier") or []
                if isinstance(i, dict) and i.get("system") == NHS_NUMBER_SYSTEM), None)
    address = next((a for a in resource.get("address") or [] if isinstance(a, dict)), {})
    phone = next((t.get("value", "") for t in resource.get("telecom") or []
                  if isinstance(t, dict) and t.get("system") == "phone"), "")
    try:
        born: date | None = date.fromisoformat(str(resource.get("birthDate")))
    except ValueError:
        born = None
    deceased: bool | date = resource.get("deceasedBoolean") is True
    try:
        if isinstance(resource.get("deceasedDateTime"), str):
            deceased = date.fromisoformat(resource["deceasedDateTime"][:10])
    except ValueError:
        deceased = True
    return DemoPatient(
        local_id=str(resource["id"]), nhs_number=nhs, family=str(official.get("family") or ""),
        given=tuple(official.get("given") or ()), prefix=next(iter(official.get("prefix") or []), None),
        sex=str(resource.get("gender") or "unknown"), birth_date=born,
        address=tuple(address.get("line") or ()), city=str(address.get("city") or ""),
        postcode=str(address.get("postalCode") or ""), phone=str(phone), record_seed=0, resource=resource,
        deceased=deceased)


def _identifiers(p: DemoPatient) -> list[tuple[str, str]]:
    if p.resource is None:
        return [(NHS_NUMBER_SYSTEM, p.nhs_number)] if p.nhs_number else []
    return [(str(i.get("system") or ""), str(i["value"])) for i in p.resource.get("identifier") or []
            if isinstance(i, dict) and i.get("value")]


def _names(p: DemoPatient) -> list[tuple[str, tuple[str, ...]]]:
    if p.resource is None:
        return [(p.family, p.given)]
    return [(str(n.get("family") or ""), tuple(str(g) for g in n.get("given") or ()))
            for n in p.resource.get("name") or [] if isinstance(n, dict)]


def _local_id(seed: int, practice_id: str, index: int, taken: set[str]) -> str:
    """An opaque practice-local id (12 hex digits, no dashes: resource ids append '-kind#')."""
    salt = 0
    while True:
        digest = hashlib.blake2b(f"{seed}:{practice_id}:{index}:{salt}".encode(), digest_size=6).hexdigest()
        if digest not in taken:
            return digest
        salt += 1


def _random_patient(rng: random.Random, local_id: str, nhs_number: str, home_town: str,
                    today: date) -> DemoPatient:
    rnd = rng.random  # random() and indexing: several times quicker than choice() and randint()

    def pick(seq: Sequence[Any]) -> Any:
        return seq[int(rnd() * len(seq))]

    roll = rnd()
    sex = "female" if roll < 0.505 else "male" if roll < 0.996 else ("other" if roll < 0.998 else "unknown")
    names = FEMALE_NAMES if sex == "female" else MALE_NAMES if sex == "male" else (
        FEMALE_NAMES if rnd() < 0.5 else MALE_NAMES)
    given = (pick(names), pick(names)) if rnd() < 0.35 else (pick(names),)
    years = rnd() * 85 if rnd() < 0.94 else 85 + rnd() * 15
    born = today - timedelta(days=int(years * 365.25))
    prefix = None
    if years >= 16:
        if rnd() < 0.02:
            prefix = "Dr"
        elif sex == "male":
            prefix = "Mr"
        elif sex == "female":
            prefix = pick(("Mrs", "Ms", "Miss"))
        else:
            prefix = "Mx"
    town = home_town if rnd() < 0.8 else pick(TOWNS)[0]
    area, districts = _TOWN_INFO[town]
    postcode = (f"{area}{pick(districts)} {1 + int(rnd() * 9)}"
                f"{pick(POSTCODE_UNIT_LETTERS)}{pick(POSTCODE_UNIT_LETTERS)}")
    street = f"{1 + int(rnd() * 180)} {pick(STREETS)}"
    address = (f"Flat {1 + int(rnd() * 40)}, {pick(BUILDINGS)}", street) if rnd() < 0.15 else (street,)
    phone = f"07700 900{int(rnd() * 1000):03d}" if rnd() < 0.7 else f"0113 496 0{int(rnd() * 1000):03d}"
    return DemoPatient(local_id, nhs_number, pick(FAMILY_NAMES), given, prefix, sex, born, address,
                       town, postcode, phone, rng.getrandbits(48))


#: chance in 10,000 that a patient of this age (in whole years) has died, by age band: a few per practice
_DEATHS_PER_10000 = ((40, 8), (70, 50), (85, 250), (200, 900))


def _with_life_and_registration(p: DemoPatient, seed: int, spec: PracticeSpec, today: date) -> DemoPatient:
    """Death (a few patients, more of the old), the usual GP and the registration, from a hash of the patient's
    id: the patient's random sequence (and so everything generated before this existed) is left as it was."""
    h = hash_seed("life", seed, spec.id, p.local_id)
    born = p.birth_date or today
    age = (today - born).days / 365.25
    threshold = next(n for limit, n in _DEATHS_PER_10000 if age < limit)
    deceased: bool | date = False
    if h % 10_000 < threshold:
        died = today - timedelta(days=3 + (h // 10_000) % 1_100)
        deceased = True if (h // 100_000_000) % 8 == 0 else max(died, born + timedelta(days=1))
    gp = spec.clinicians[(h >> 20) % len(spec.clinicians)]
    temporary = (h >> 28) % 50 == 0
    if temporary:  # a temporary resident: registered weeks ago
        since = today - timedelta(days=7 + (h >> 34) % 80)
    else:
        since = max(born, today - timedelta(days=int(((h >> 34) % 10_000) / 10_000 * 30 * 365.25)))
    return replace(p, deceased=deceased, usual_gp=gp, practice_ods=spec.ods_code, practice_name=spec.name,
                   registration_type="T" if temporary else "R",
                   registered_since=since)
