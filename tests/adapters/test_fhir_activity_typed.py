"""The typed (msgspec) decoding of appointment-book pages (adapters/fhir_r4/activity_typed.py) gives exactly what
the plain-JSON path gives: over HTTP on demo practices' books, and on hand-made pages with every edge the dict path
handles (a missing id, an unknown status, an include, an OperationOutcome, the class and channel codings); a page
with a value of an unexpected type is left to the plain path."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest

import adapters.fhir_r4.activity as activity_module
from adapters.fhir_r4 import FhirR4Adapter, activity_typed
from app.core.activity import NATIONAL_CATEGORY_SYSTEM
from app.demo.network import DemoNetwork

pytest.importorskip("msgspec")

REFERENCE = date(2026, 6, 15)
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CHANNEL = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2"
ROLE = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-2"
CLASS = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.class"


@pytest.fixture(scope="module")
def books() -> Iterator[DemoNetwork]:
    network = DemoNetwork.start(practices=3, patients=120, reference_date=REFERENCE)
    try:
        yield network
    finally:
        network.stop()


async def read(network: DemoNetwork, index: int, typed: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = network.servers[index]
    with monkeypatch.context() as patch:
        if not typed:
            patch.setattr(activity_typed, "page_decoder", lambda rtype: None)
        adapter = FhirR4Adapter(server.practice, network.secrets[server.practice.id])
        try:
            return await adapter.activity(date(2025, 6, 16), REFERENCE)
        finally:
            await adapter.close()


async def test_typed_pages_map_exactly_as_plain_json(books: DemoNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(len(books.servers)):
        typed = await read(books, index, True, monkeypatch)
        plain = await read(books, index, False, monkeypatch)
        assert len(typed.appointments) > 1000
        for kind in ("slots", "appointments", "encounters"):
            assert sorted(getattr(typed, kind), key=lambda r: r.id) == sorted(getattr(plain, kind), key=lambda r: r.id)
        assert (typed.unreadable, typed.list_size, typed.not_provided) == (plain.unreadable, plain.list_size,
                                                                           plain.not_provided)


def page(rtype: str, resources: list[Any], extra: list[Any] = ()) -> bytes:  # type: ignore[assignment]
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources] + list(extra)
    return orjson.dumps({"resourceType": "Bundle", "type": "searchset", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
                         "link": [{"relation": "next", "url": "http://x/next"}], "entry": entries})


def both(rtype: str, body: bytes) -> tuple[tuple[list[Any], int], tuple[list[Any], int]]:
    decoded = activity_typed.page_decoder(rtype)(body)  # type: ignore[misc]
    assert decoded is not None and activity_typed.is_typed(decoded)
    assert activity_typed.next_link(decoded) == "http://x/next"
    typed = activity_typed.take(rtype, decoded, {"sch1": "nurse"}, {"PractitionerRole/r1": "gp"},
                                activity_module._MAPPING_ERRORS, activity_module._instant, activity_module._date_time)

    class Adapter:  # what _take asks of the adapter: its practice's id, for the log
        practice = type("P", (), {"id": "p"})()

    collected = activity_module._Collected()
    plain = activity_module._take(Adapter(), rtype, orjson.loads(body)["entry"], collected,  # type: ignore[arg-type]
                                  {"sch1": "nurse"}, {"PractitionerRole/r1": "gp"})
    return typed, (plain, collected.unreadable)


def test_edge_cases_map_the_same_both_ways(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    appointments = [
        {"resourceType": "Appointment", "id": "a1", "status": "booked", "start": "2026-01-05T09:00:00+00:00",
         "created": "2026-01-01", "meta": {"lastUpdated": "2026-01-01T10:00:00Z"},
         "extension": [{"url": CHANNEL, "valueCoding": {"code": "Video"}}],
         "serviceType": [{"coding": [{"system": NATIONAL_CATEGORY_SYSTEM, "code": "clinical-triage"},
                                     {"display": "Local name"}]}],
         "participant": [{"actor": {"reference": "Patient/x"}}, {"actor": {"reference": "PractitionerRole/r1"}}],
         "slot": [{"reference": "Slot/s1"}, {"display": "no reference"}]},
        {"resourceType": "Appointment", "id": "a2", "status": "noshow", "start": "2026-01-05T10:00:00+01:00",
         "extension": [{"url": CLASS, "valueCodeableConcept": {"coding": [{"system": ACT, "code": "HH"}]}},
                       {"url": ROLE, "valueCodeableConcept": {"coding": [{"system": "x", "code": "y"}]}},
                       {"url": "http://example.org/other", "valueString": "ignored"}],
         "appointmentType": {"text": "Home visit"}},
        {"resourceType": "Appointment", "id": "a3", "status": "maybe"},  # unknown status: unreadable
        {"resourceType": "Appointment", "status": "booked"},  # no id: unreadable
        {"resourceType": "Appointment", "id": "a4", "status": "booked", "start": "2026-01-05T09:00:00"},  # naive
        {"resourceType": "Appointment", "id": "a5", "status": "booked", "extension": [{"valueCode": "x"}]},  # no url
        {"resourceType": "OperationOutcome", "issue": [{"severity": "information"}]},  # skipped
        {"resourceType": "Slot", "id": "s9", "status": "free"},  # another type: unreadable
    ]
    extra = [{"resource": {"resourceType": "Appointment", "id": "inc"}, "search": {"mode": "include"}},
             {"search": {"mode": "match"}}]  # no resource: unreadable
    typed, plain = both("Appointment", page("Appointment", appointments, extra))
    assert typed == plain
    assert [a.id for a in typed[0]] == ["a1", "a2"] and typed[1] == 6
    slots = [{"resourceType": "Slot", "id": "s1", "status": "busy", "start": "2026-01-05T09:00:00Z",
              "end": "2026-01-05T09:10:00Z", "schedule": {"reference": "Schedule/sch1"},
              "serviceType": [{"text": "Routine", "coding": [{"system": NATIONAL_CATEGORY_SYSTEM, "code": "nope"}]}],
              "extension": [{"url": CHANNEL, "valueCode": "Telephone"}]},
             {"resourceType": "Slot", "id": "s2", "status": "busy", "start": "2026-01-05T09:00:00Z"}]  # no end
    typed_s, plain_s = both("Slot", page("Slot", slots))
    assert typed_s == plain_s and [s.id for s in typed_s[0]] == ["s1"] and typed_s[1] == 1
    encounters = [{"resourceType": "Encounter", "id": "e1", "status": "finished",
                   "class": {"system": ACT, "code": "AMB"}, "period": {"start": "2026-01-05"},
                   "appointment": [{"reference": "Appointment/a1"}],
                   "serviceType": {"text": "one concept"}},
                  {"resourceType": "Encounter", "id": "e2", "status": 3}]  # a number: unreadable both ways
    typed_e, plain_e = both("Encounter", page("Encounter", encounters))
    assert typed_e == plain_e and typed_e[0][0].mode == "face-to-face" and typed_e[1] == 1
    odd = [*encounters, {"resourceType": "Encounter", "id": "e3", "status": "finished", "period": "yesterday"}]
    assert activity_typed.page_decoder("Encounter")(page("Encounter", odd)) is None  # type: ignore[misc]


def test_a_page_with_an_unexpected_type_is_left_to_plain_json() -> None:
    decode = activity_typed.page_decoder("Slot")
    assert decode is not None
    assert decode(b'{"resourceType":"Bundle","entry":["not a resource"]}') is None
    assert decode(b'{"resourceType":"Bundle","entry":{"not":"a list"}}') is None
    assert decode(b"not json") is None  # the plain parser says why
