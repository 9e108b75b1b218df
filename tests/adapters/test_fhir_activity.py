"""The FHIR R4 adapter's activity read (issue 13) against demo practices on 127.0.0.1: what it maps equals an
independent count of the demo's raw FHIR JSON; paging, incremental reads, unreadable resources, a server
without Encounter, GP Connect's "unsupported", and the practice's reply-size limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

import adapters.fhir_r4.activity as activity_module
from adapters.base import AdapterError, adapter_for
from adapters.fhir_r4 import FhirR4Adapter
from app.core.activity import Activity
from app.demo.appointment_book_counts import independent_counts, period_query, served
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork

REFERENCE = date(2026, 6, 15)  # the books' "today": fixed, so every run reads the same books
START, END = date(2024, 6, 16), date(2026, 6, 15)  # two years ending on it
Factory = Callable[..., FhirR4Adapter]


@pytest.fixture(scope="module")
def books() -> Iterator[DemoNetwork]:
    """Five FHIR practices (one of each kind of book), 300 patients each: ~7,500 appointments a practice.
    Read only: tests that change a book use `changing`."""
    network = DemoNetwork.start(practices=5, patients=300, reference_date=REFERENCE)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def changing() -> Iterator[DemoNetwork]:
    """One small practice of this test's own, to change."""
    network = DemoNetwork.start(practices=1, patients=60, reference_date=REFERENCE)
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
async def make_adapter() -> AsyncIterator[Factory]:
    made: list[FhirR4Adapter] = []

    def make(network: DemoNetwork, server: DemoServer, **changes: Any) -> FhirR4Adapter:
        practice = replace(server.practice, **changes) if changes else server.practice
        adapter = FhirR4Adapter(practice, network.secrets[practice.id])
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


def raw_book(server: DemoServer, start: date = START, end: date = END) -> list[dict[str, Any]]:
    """Every book resource the demo serves for the period, as JSON objects (no Mosaic code involved)."""
    api = server.api
    return [*served(api, "Schedule"), *(r for t in ("Slot", "Appointment", "Encounter")
                                        for r in served(api, t, period_query(t, start, end)))]


def adapter_counts(activity: Activity) -> dict[str, Counter[Any]]:
    return {
        "Appointment.status": Counter(a.status for a in activity.appointments),
        "Appointment.mode": Counter(a.mode for a in activity.appointments),
        "Appointment.clinician_type": Counter(a.clinician_type for a in activity.appointments),
        "Appointment.category": Counter(a.category for a in activity.appointments),
        "Slot.status": Counter(s.status for s in activity.slots),
        "Slot.mode": Counter(s.mode for s in activity.slots),
        "Slot.clinician_type": Counter(s.clinician_type for s in activity.slots),
        "Slot.category": Counter(s.category for s in activity.slots),
        "Encounter.status": Counter(e.status for e in activity.encounters),
        "Encounter.mode": Counter(e.mode for e in activity.encounters),
    }


async def test_counts_equal_an_independent_count_of_the_raw_json(books: DemoNetwork, make_adapter: Factory) -> None:
    for server in books.servers:
        activity = await make_adapter(books, server).activity(START, END)
        expected = independent_counts(raw_book(server))
        got = adapter_counts(activity)
        for key, counts in expected.items():
            assert got[key] == counts, f"{server.spec.id} {key}"
        assert activity.unreadable == 0 and activity.not_provided == ()
        assert activity.list_size == len(server.population)
        assert sum(expected["Appointment.status"].values()) > 5000  # a real book, not a handful
        # every kind the contract names appears, and the unmapped local type is kept as the practice wrote it
        assert set(got["Appointment.mode"]) == {"face-to-face", "telephone", "video", "home-visit"}
        assert set(got["Appointment.clinician_type"]) == {"gp", "nurse", "pharmacist", "other"}
        unmapped = {a.local_type for a in activity.appointments if a.category is None}
        assert unmapped == {"Duty doctor list"}


async def test_a_patient_is_never_kept(books: DemoNetwork, make_adapter: Factory) -> None:
    server = books.servers[0]
    raw = [r for r in raw_book(server, date(2026, 1, 5), date(2026, 1, 9)) if r["resourceType"] == "Appointment"]
    patients = {p["actor"]["reference"].split("/")[-1] for r in raw for p in r["participant"]
                if p["actor"]["reference"].startswith("Patient/")}
    assert patients  # the demo does name them
    activity = await make_adapter(books, server).activity(date(2026, 1, 5), date(2026, 1, 9))
    text = repr(activity)
    assert not any(p in text for p in patients)


async def test_the_period_is_inclusive_and_as_of_is_the_servers_time(books: DemoNetwork,
                                                                     make_adapter: Factory) -> None:
    server = books.servers[2]
    before = datetime.now(UTC).replace(microsecond=0)
    activity = await make_adapter(books, server).activity(date(2026, 3, 2), date(2026, 3, 6))  # Monday..Friday
    after = datetime.now(UTC)
    days = {a.start.date() for a in activity.appointments if a.start is not None}
    assert min(days) == date(2026, 3, 2) and max(days) == date(2026, 3, 6)
    assert before <= activity.as_of <= after


async def test_paging_reads_every_page(books: DemoNetwork, make_adapter: Factory,
                                       monkeypatch: pytest.MonkeyPatch, demo_requests: Any) -> None:
    server = books.servers[0]
    whole = await make_adapter(books, server).activity(START, END)
    monkeypatch.setattr(activity_module, "PAGE_SIZE", 97)
    log = demo_requests(server)
    paged = await make_adapter(books, server).activity(START, END)
    pages = [r for r in log.seen if r.path.endswith(("/Slot", "/Appointment", "/Encounter"))]
    expected_pages = sum(-(-n // 97) for n in (len(whole.slots), len(whole.appointments), len(whole.encounters)))
    assert len(pages) >= expected_pages  # at least one page per 97 resources (plus a chunk's short last pages)
    assert sorted(a.id for a in paged.appointments) == sorted(a.id for a in whole.appointments)
    assert sorted(s.id for s in paged.slots) == sorted(s.id for s in whole.slots)
    assert len({a.id for a in paged.appointments}) == len(paged.appointments)  # no page read twice


async def test_an_incremental_read_finds_exactly_what_changed(changing: DemoNetwork, make_adapter: Factory) -> None:
    server = changing.servers[0]
    book = server.api.book
    full = await make_adapter(changing, server).activity(START, END)
    assert full.appointments
    nothing = await make_adapter(changing, server).activity(START, END, since=full.as_of)
    assert (nothing.appointments, nothing.slots, nothing.encounters) == ((), (), ())
    added = book.add_appointment(datetime(2026, 5, 20, 10, 0, tzinfo=UTC), slot_type="Video consultation",
                                 created=datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    changed = next(a for a in full.appointments if a.status == "booked")
    book.set_status(changed.id, "cancelled")
    since = await make_adapter(changing, server).activity(START, END, since=full.as_of)
    assert sorted(a.id for a in since.appointments) == sorted([added, changed.id])
    new = next(a for a in since.appointments if a.id == added)
    assert (new.status, new.mode, new.category, new.local_type) == (
        "booked", "video", "General Consultation Routine", "Video consultation")
    assert next(a for a in since.appointments if a.id == changed.id).status == "cancelled"
    assert since.since == full.as_of and since.as_of >= full.as_of
    assert (since.slots, since.encounters) == ((), ())
    outside = await make_adapter(changing, server).activity(date(2025, 1, 1), date(2025, 12, 31), since=full.as_of)
    assert outside.appointments == ()  # the period still applies


async def test_a_malformed_resource_is_counted_as_unreadable(changing: DemoNetwork, make_adapter: Factory) -> None:
    server = changing.servers[0]
    before = await make_adapter(changing, server).activity(START, END)
    when = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
    book = server.api.book
    book.add_raw("Appointment", '{"resourceType":"Appointment","id":"bad1","status":"maybe",'
                 '"start":"2026-02-03T09:00:00+00:00"}', when)
    book.add_raw("Appointment", '{"resourceType":"Appointment","id":"bad2","status":"booked",'
                 '"start":"3 February, nine o\'clock"}', when)
    book.add_raw("Slot", '"not a resource"', when)
    after = await make_adapter(changing, server).activity(START, END)
    assert after.unreadable == 3
    assert len(after.appointments) == len(before.appointments)
    assert len(after.slots) == len(before.slots)


async def test_a_server_without_encounter_says_not_provided(changing: DemoNetwork, make_adapter: Factory) -> None:
    server = changing.servers[0]
    server.api.withheld_types.add("Encounter")
    activity = await make_adapter(changing, server).activity(START, END)
    assert activity.not_provided == ("Encounter",)
    assert activity.encounters == () and activity.appointments  # not provided, not zero: the rest is read


async def test_a_server_without_slots_or_appointments_is_unsupported(changing: DemoNetwork,
                                                                     make_adapter: Factory) -> None:
    server = changing.servers[0]
    server.api.withheld_types.update({"Slot", "Appointment"})
    with pytest.raises(AdapterError) as caught:
        await make_adapter(changing, server).activity(START, END)
    assert caught.value.kind == "unsupported"


async def test_gp_connect_does_not_provide_appointment_books(gpc_network: DemoNetwork) -> None:
    server = next(s for s in gpc_network.servers if s.gpconnect is not None)
    adapter = adapter_for(server.practice, gpc_network.secrets[server.spec.id])
    try:
        with pytest.raises(AdapterError) as caught:
            await adapter.activity(START, END)
    finally:
        await adapter.close()
    assert caught.value.kind == "unsupported"
    assert "not provided" in caught.value.message


async def test_pages_fit_the_practices_reply_limit(books: DemoNetwork, make_adapter: Factory) -> None:
    server = books.servers[0]
    whole = await make_adapter(books, server).activity(date(2026, 1, 1), date(2026, 3, 31))
    small = await make_adapter(books, server, max_response_bytes=200 * 1024).activity(date(2026, 1, 1),
                                                                                       date(2026, 3, 31))
    assert len(small.appointments) == len(whole.appointments)
    with pytest.raises(AdapterError) as caught:  # not even 50 resources fit: said, never read as "none"
        await make_adapter(books, server, max_response_bytes=20 * 1024).activity(date(2026, 1, 1),
                                                                                date(2026, 3, 31))
    assert caught.value.kind == "too-large"


async def test_a_failed_search_fails_the_read(books: DemoNetwork, make_adapter: Factory) -> None:
    server = books.servers[1]
    adapter = make_adapter(books, server)
    await adapter.connect()
    with server.faults.override(mode="http-500", match="/Encounter"), pytest.raises(AdapterError) as caught:
        await adapter.activity(START, END)  # the Slots and Appointments arrived: a part-read book is not kept
    assert caught.value.kind == "server"


async def test_an_end_before_the_start_is_refused(books: DemoNetwork, make_adapter: Factory) -> None:
    with pytest.raises(AdapterError) as caught:
        await make_adapter(books, books.servers[0]).activity(END, START)
    assert caught.value.kind == "config"


def test_the_period_is_read_in_quarters_without_gap_or_overlap() -> None:
    chunks = activity_module._chunks(date(2024, 6, 16), date(2026, 6, 15))
    assert chunks[0][0] == date(2024, 6, 16) and chunks[-1] == (date(2026, 6, 1), date(2026, 6, 15), True)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))  # no gap, no overlap
