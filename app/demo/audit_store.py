"""AuditEvents a demo practice has received, kept in memory.

Creation is idempotent through FHIR conditional create: a POST with `If-None-Exist: identifier=S|V`
that matches an event already stored returns that event (200) instead of storing a second copy.
R4 AuditEvent has no top-level identifier, so identifiers are read from `entity.what.identifier`
(and from a top-level `identifier`, should a sender put one there).
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

Resource = dict[str, Any]


class AuditStore:
    def __init__(self) -> None:
        self._events: list[Resource] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def create(self, event: Resource, if_none_exist: str | None = None) -> tuple[int, Resource]:
        """Store `event`; (201, stored) or, for a conditional create that matches, (200, existing).

        Raises ValueError for a condition this store cannot evaluate, and LookupError when the
        condition matches more than one event (HTTP 412).
        """
        condition = _parse_condition(if_none_exist) if if_none_exist else None
        with self._lock:
            if condition is not None:
                matches = [e for e in self._events if condition in _identifiers(e)]
                if len(matches) > 1:
                    raise LookupError("the If-None-Exist condition matches more than one AuditEvent")
                if matches:
                    return 200, matches[0]
            stored = dict(event)
            stored["id"] = f"ae{next(self._ids)}"
            stored["meta"] = {**(event.get("meta") or {}), "versionId": "1",
                              "lastUpdated": datetime.now(UTC).isoformat(timespec="milliseconds")}
            self._events.append(stored)
            return 201, stored

    def get(self, event_id: str) -> Resource | None:
        with self._lock:
            return next((e for e in self._events if e["id"] == event_id), None)

    def search(self, patient: str | None = None, identifier: str | None = None) -> list[Resource]:
        """Events about `patient` (a local id or 'Patient/id') and/or with `identifier` (S|V or V)."""
        wanted = _parse_identifier(identifier) if identifier else None
        ref = None if patient is None else patient if patient.startswith("Patient/") else f"Patient/{patient}"
        with self._lock:
            events = list(self._events)
        found = []
        for event in events:
            if ref is not None and ref not in _references(event):
                continue
            if wanted is not None and not _identifier_matches(wanted, _identifiers(event)):
                continue
            found.append(event)
        return found

    def all(self) -> list[Resource]:
        with self._lock:
            return list(self._events)


def _parse_condition(text: str) -> tuple[str, str]:
    params = parse_qsl(text.lstrip("?"), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier":
        raise ValueError("If-None-Exist must be a single identifier=system|value search on AuditEvent")
    system, value = _parse_identifier(params[0][1])
    if system is None:
        raise ValueError("If-None-Exist identifier needs a system: identifier=system|value")
    return system, value


def _parse_identifier(text: str) -> tuple[str | None, str]:
    system, sep, value = text.partition("|")
    return (system, value) if sep else (None, text)


def _identifier_matches(wanted: tuple[str | None, str], have: set[tuple[str, str]]) -> bool:
    system, value = wanted
    return any(v == value and (system is None or s == system) for s, v in have)


def _identifiers(event: Resource) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    candidates: list[Any] = []
    top = event.get("identifier")
    candidates.extend(top if isinstance(top, list) else [top])
    for entity in event.get("entity") or []:
        if isinstance(entity, dict) and isinstance(entity.get("what"), dict):
            candidates.append(entity["what"].get("identifier"))
    for item in candidates:
        if isinstance(item, dict) and item.get("value"):
            found.add((str(item.get("system") or ""), str(item["value"])))
    return found


def _references(event: Resource) -> set[str]:
    refs: set[str] = set()
    for entity in event.get("entity") or []:
        if isinstance(entity, dict) and isinstance(entity.get("what"), dict):
            refs.add(str(entity["what"].get("reference")))
    for agent in event.get("agent") or []:
        if isinstance(agent, dict) and isinstance(agent.get("who"), dict):
            refs.add(str(agent["who"].get("reference")))
    refs.discard("None")
    # absolute references (http://host/fhir/Patient/x) match the relative form too
    return refs | {"/".join(r.rstrip("/").split("/")[-2:]) for r in refs}
