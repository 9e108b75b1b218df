"""The demo practices' appointment books (issue 13): their patterns, read from the FHIR JSON they serve, their
searches over real HTTP, and the calendar they keep."""

from __future__ import annotations

import base64
import json
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.demo.appointment_book import AppointmentBook, practice_profile
from app.demo.appointment_book_counts import RawAppointment, period_query, raw_appointments, served
from app.demo.appointment_calendar import bank_holidays, uk_offset_hours
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork

REFERENCE = date(2026, 6, 15)
START, END = date(2024, 6, 16), date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)  # 08:00 BST on the reference date: the books' "now"
WINTER, SUMMER = (12, 1, 2), (6, 7, 8)


@pytest.fixture(scope="module")
def books() -> Iterator[DemoNetwork]:
    network = DemoNetwork.start(practices=5, patients=400, reference_date=REFERENCE)
    try:
        yield network
    finally:
        network.stop()


def appointments(server: DemoServer, start: date = START, end: date = END) -> list[RawAppointment]:
    return raw_appointments(served(server.api, "Appointment", period_query("Appointment", start, end)))


def local_day(a: RawAppointment) -> date:
    return (a.start + timedelta(hours=uk_offset_hours(a.start.date()))).date()


def per_day(items: list[RawAppointment], months: tuple[int, ...]) -> float:
    chosen = [a for a in items if local_day(a).month in months and a.status != "cancelled"]
    return len(chosen) / len({local_day(a) for a in chosen})


def dna_rate(items: list[RawAppointment]) -> float:
    counts = Counter(a.status for a in items if a.start < NOW)
    return counts["noshow"] / (counts["noshow"] + counts["fulfilled"])


def by(network: DemoNetwork, profile: str) -> DemoServer:
    return next(s for s in network.servers if practice_profile(s.spec.id) == profile)


def test_weekday_and_winter_patterns(books: DemoNetwork) -> None:
    for server in books.servers:
        items = [a for a in appointments(server) if a.status != "cancelled"]
        weekdays = Counter(local_day(a).weekday() for a in items)
        assert weekdays[0] > weekdays[4] * 1.1, server.spec.id  # Monday busier than Friday
        assert weekdays[6] == 0  # no Sunday clinics
        assert per_day(items, WINTER) > per_day(items, SUMMER) * 1.05, server.spec.id
        holidays = set().union(*(bank_holidays(y) for y in (2024, 2025, 2026)))
        assert not [a for a in items if local_day(a) in holidays]
        saturdays = {a.local_type for a in items if local_day(a).weekday() == 5}
        assert saturdays == (set() if practice_profile(server.spec.id) == "short-of-capacity"
                             else {"Extended access"})


def test_the_practices_differ(books: DemoNetwork) -> None:
    rates = {s.spec.id: dna_rate(appointments(s)) for s in books.servers}
    high = by(books, "high-dna").spec.id
    assert all(rates[high] > rate * 1.8 for pid, rate in rates.items() if pid != high), rates

    def utilisation(server: DemoServer) -> float:
        slots = Counter(r["status"] for r in served(server.api, "Slot", period_query("Slot", START, date(2026, 6, 14))))
        return slots["busy"] / (slots["busy"] + slots["free"])

    def lead_days(server: DemoServer) -> float:
        return statistics.median((a.start - a.created).total_seconds() / 86400 for a in appointments(server)
                                 if a.created is not None and a.status != "cancelled")

    short = by(books, "short-of-capacity")
    others = [s for s in books.servers if s is not short]
    assert utilisation(short) > max(utilisation(s) for s in others)
    assert lead_days(short) > 2 * max(lead_days(s) for s in others)


def test_one_practice_maps_its_slot_types_to_other_national_categories(books: DemoNetwork) -> None:
    def mapping(server: DemoServer) -> dict[str | None, set[str | None]]:
        found: dict[str | None, set[str | None]] = {}
        for a in appointments(server, date(2026, 1, 5), date(2026, 1, 30)):
            found.setdefault(a.local_type, set()).add(a.category)
        return found

    own = by(books, "own-mapping")
    others = [mapping(s) for s in books.servers if s is not own]
    mine = mapping(own)
    assert mine["Same day urgent"] == {"Unplanned Clinical Activity"}
    assert all(m["Same day urgent"] == {"General Consultation Acute"} for m in others)
    assert mine["Duty doctor list"] == {None}  # the type no practice maps


def test_past_and_future(books: DemoNetwork) -> None:
    items = appointments(books.servers[0], date(2026, 3, 1), date(2026, 7, 12))
    future = [a for a in items if a.start >= NOW]
    past = [a for a in items if a.start < NOW]
    assert future and {a.status for a in future} <= {"booked", "cancelled"}
    assert all(a.created is not None and a.created < NOW for a in future)
    statuses = Counter(a.status for a in past)
    assert statuses["fulfilled"] > 0.75 * len(past)
    assert {"noshow", "cancelled", "booked", "arrived"} <= set(statuses)  # a few never closed off, as in life
    assert max(a.start for a in items).date() <= REFERENCE + timedelta(days=28)  # books open four weeks ahead


def test_a_2000_patient_practice_has_about_50000_appointments_in_two_years() -> None:
    started = time.perf_counter()
    book = AppointmentBook("oakwood", ["Dr A", "Dr B", "Dr C", "Dr D"], ["Nurse A", "Nurse B"], 2000,
                           REFERENCE).ensure_built()
    took = time.perf_counter() - started
    counts = book.counts()
    assert 45_000 <= counts["Appointment"] <= 60_000
    assert counts["Slot"] > counts["Appointment"] * 0.9 and counts["Encounter"] > counts["Appointment"] * 0.7
    print(f"built {counts} in {took:.2f} s")


def test_books_are_made_on_first_use_and_the_same_every_time(books: DemoNetwork) -> None:
    fresh = DemoNetwork.start(practices=2, patients=50, reference_date=REFERENCE)
    try:
        assert not any(s.api.book._built for s in fresh.servers)  # the demo starts as quickly as before
    finally:
        fresh.stop()
    args = ("riverside", ["Dr A", "Dr B"], ["Nurse A"], 120, REFERENCE)
    one, two = AppointmentBook(*args).ensure_built(), AppointmentBook(*args).ensure_built()
    assert one.rows["Appointment"] == two.rows["Appointment"] and one.rows["Slot"] == two.rows["Slot"]
    other = AppointmentBook("oakwood", *args[1:]).ensure_built()
    assert other.rows["Appointment"] != one.rows["Appointment"]


# --- searches, over real HTTP -----------------------------------------------------------------------


def get(network: DemoNetwork, server: DemoServer, path: str) -> tuple[int, Any]:
    secret = network.secrets[server.spec.id]
    auth = (f"Basic {base64.b64encode(f'mosaic:{secret}'.encode()).decode()}" if server.spec.auth == "basic"
            else f"Bearer {secret}")
    request = urllib.request.Request(f"{server.base_url}/{path}", headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def basic(network: DemoNetwork) -> DemoServer:
    return next(s for s in network.servers if s.spec.auth == "basic")


def test_list_size_is_a_count_of_active_patients(books: DemoNetwork) -> None:
    server = basic(books)
    status, bundle = get(books, server, "Patient?active=true&_summary=count")
    assert status == 200 and bundle["total"] == len(server.population) and not bundle.get("entry")
    status, bundle = get(books, server, "Patient?active=false&_summary=count")
    assert status == 200 and bundle["total"] == 0


def test_searches_page_by_date_and_large_pages(books: DemoNetwork) -> None:
    server = basic(books)
    status, first = get(books, server, "Appointment?date=ge2026-01-05&date=le2026-01-09&_count=5000")
    assert status == 200 and len(first["entry"]) == min(2000, first["total"])  # _count is capped at 2,000
    status, small = get(books, server, "Appointment?date=ge2026-01-05&date=le2026-01-09&_count=100")
    ids, page = [], small
    while True:
        ids += [e["resource"]["id"] for e in page["entry"]]
        nxt = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        if nxt is None:
            break
        status, page = get(books, server, nxt.split("/fhir/", 1)[1])
    assert len(ids) == len(set(ids)) == first["total"]
    starts = [e["resource"]["start"] for e in first["entry"]]
    assert min(starts) >= "2026-01-05T00:00" and max(starts) < "2026-01-10T00:00"
    status, slots = get(books, server, "Slot?start=ge2026-01-05T12:00:00%2B00:00&start=lt2026-01-05T14:30:00Z")
    assert status == 200 and all("T14:" in e["resource"]["start"] for e in slots["entry"])  # the afternoon's first
    status, schedules = get(books, server, "Schedule")
    assert status == 200 and schedules["total"] == len(server.api.book.clinicians)
    status, bad = get(books, server, "Appointment?when=today")
    assert status == 400 and bad["resourceType"] == "OperationOutcome"


def test_last_updated_finds_what_changed(books: DemoNetwork) -> None:
    server = basic(books)
    book = server.api.book
    book.ensure_built()
    since = datetime.now(UTC)
    stamp = since.isoformat().replace("+00:00", "Z")
    status, nothing = get(books, server, f"Appointment?date=ge{START}&date=le{END}&_lastUpdated=gt{stamp}")
    assert status == 200 and nothing["total"] == 0
    added = book.add_appointment(datetime(2026, 6, 12, 9, 0, tzinfo=UTC))
    status, found = get(books, server, f"Appointment?date=ge{START}&date=le{END}&_lastUpdated=gt{stamp}")
    assert [e["resource"]["id"] for e in found["entry"]] == [added]
    status, read = get(books, server, f"Appointment/{added}")
    assert status == 200 and read["status"] == "booked"
    book.set_status(added, "cancelled")  # leave the shared book's counts as they were (cancelled is not counted)


def test_the_capability_statement_offers_the_book(books: DemoNetwork) -> None:
    status, caps = get(books, basic(books), "metadata")
    offered = {r["type"]: {p["name"] for p in r.get("searchParam", [])} for r in caps["rest"][0]["resource"]}
    assert {"start", "_lastUpdated"} <= offered["Slot"]
    assert {"date", "_lastUpdated"} <= offered["Appointment"] and {"date", "patient"} <= offered["Encounter"]
    assert "Schedule" in offered


def test_gp_connect_practices_publish_no_book(gpc_network: DemoNetwork) -> None:
    server = next(s for s in gpc_network.servers if s.gpconnect is not None)
    assert not hasattr(server.api, "book")


def test_the_calendar() -> None:
    assert bank_holidays(2025) == {date(2025, 1, 1), date(2025, 4, 18), date(2025, 4, 21), date(2025, 5, 5),
                                   date(2025, 5, 26), date(2025, 8, 25), date(2025, 12, 25), date(2025, 12, 26)}
    assert {date(2026, 4, 3), date(2026, 8, 31), date(2026, 12, 25), date(2026, 12, 28)} <= bank_holidays(2026)
    assert date(2027, 12, 27) in bank_holidays(2027) and date(2027, 12, 28) in bank_holidays(2027)
    assert [uk_offset_hours(d) for d in (date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 24),
                                         date(2026, 10, 25))] == [0, 1, 1, 0]
