"""One adapter contract, tested the same way against every installed adapter.

Dangerzone runs one test class against every isolation provider; Mosaic runs `TestAdapterContract`
against every adapter registered in the entry-point group `mosaic.adapters`, each through a real demo
practice on 127.0.0.1 (see tests/adapters/conformance.py). A newly installed adapter is picked up by
itself, and fails here until a demo practice is registered for it in the harness.

The contract (adapters/base.py, app/core/model.py, DESIGN.md): connect proves the credentials and
names the practice when they are wrong or missing; a search by NHS number finds exactly that patient
and an unknown number is an empty result; a record is the patient asked for with every section in
exactly one state; a server fault is a failed section or a clear error naming the practice, never an
empty answer; a reply over the size limit is refused; close() may be called twice; logs carry no
patient's name or NHS number. What an adapter cannot do it declares (`supports_demographic_search`,
`accepts_audit_events`), and the declared behaviour is what is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from adapters.base import Adapter, AdapterError, adapter_for, available_adapters
from adapters.http import DEADLINE_FACTOR
from app.core.model import PatientQuery, PatientRecord, Practice, Section, SectionName, ServerInfo
from app.core.nhs_number import format_nhs_number
from app.demo.network import DemoNetwork
from tests.adapters.conformance import (
    HARNESS,
    Target,
    build_target,
    key_id,
    missing_message,
    start_network,
    target_keys,
    unknown_nhs_number,
)

#: a short timeout for the "hang" fault: long enough for a loopback reply, short enough to keep the suite fast
HANG_TIMEOUT_S = 0.5
SIZE_LIMIT = 64 * 1024

#: demo fault -> the AdapterError kind it must become
FAULTS: dict[str, str] = {
    "http-500": "server",
    "http-503": "server",
    "auth-fail": "auth",
    "malformed-json": "bad-reply",
    "wrong-content-type": "bad-reply",
    "down": "network",
    "hang": "timeout",
    "oversized": "too-large",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every installed adapter, each of its registered demo practices (one key when it has none)."""
    if "target_key" in metafunc.fixturenames:
        keys = target_keys()
        metafunc.parametrize("target_key", keys, ids=[key_id(k) for k in keys])


@pytest.fixture(scope="module")
def conformance_network() -> Iterator[DemoNetwork]:
    network = start_network()
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def target(conformance_network: DemoNetwork, target_key: tuple[str, str | None]) -> Iterator[Target]:
    built = build_target(conformance_network, *target_key)
    yield built
    built.server.faults.reset()


Make = Callable[..., Adapter]


@pytest.fixture
async def make(target: Target) -> AsyncIterator[Make]:
    """Adapters for the target practice (optionally with changed settings), closed after the test."""
    made: list[Adapter] = []

    def build(practice: Practice | None = None, secret: str | None = "", **changes: Any) -> Adapter:
        adapter = target.adapter(**changes) if practice is None else \
            adapter_for(practice, target.secret if secret == "" else secret)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        await adapter.close()


def fault_settings(mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(demo fault settings, adapter practice changes) for one fault mode."""
    if mode == "hang":
        return {"mode": mode, "hang_s": 5.0}, {"timeout_s": HANG_TIMEOUT_S}
    if mode == "oversized":
        return {"mode": mode, "oversize_bytes": 16 * SIZE_LIMIT}, {"max_response_bytes": SIZE_LIMIT}
    return {"mode": mode}, {}


def assert_clear(error: AdapterError, practice: Practice, kind: str | None = None) -> None:
    """A failure a user can act on: it names the practice, and says what kind of failure it is."""
    assert practice.name in error.message, f"the error does not name {practice.name!r}: {error.message!r}"
    if kind is not None:
        assert error.kind == kind, f"kind {error.kind!r}, expected {kind!r}: {error.message!r}"


def assert_one_state(name: SectionName, section: Section) -> None:
    assert section.name is name
    if section.status == "loaded":
        assert section.error is None and section.retrieved_at is not None
    elif section.status == "failed":
        assert section.error and section.error.strip(), f"{name} failed without saying why"
        assert section.entries == (), f"{name} failed but carries entries"
    elif section.status == "unsupported":
        assert section.entries == () and section.error is None
    else:
        pytest.fail(f"{name} is in no known state: {section.status!r}")


def assert_every_section(record: PatientRecord) -> None:
    assert set(record.sections) == set(SectionName), f"missing sections: {set(SectionName) - set(record.sections)}"
    for name, section in record.sections.items():
        assert_one_state(name, section)


def assert_fault_reported(record: PatientRecord, practice: Practice) -> None:
    """A record that came back while every request failed: nothing may read as loaded ("none recorded")."""
    assert_every_section(record)
    for name, section in record.sections.items():
        assert section.status != "loaded", f"{name} shown as loaded while the server was failing"
        if section.status == "failed":
            assert practice.name in (section.error or ""), section.error


async def found_patient(adapter: Adapter, target: Target) -> tuple[Any, str]:
    """(demo patient, the adapter's local_id for them), found by NHS number."""
    patient = target.patient()
    (summary,) = await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
    return patient, summary.local_id


# --- the harness itself ----------------------------------------------------------------------------------

def test_every_installed_adapter_has_a_demo_server_in_the_harness() -> None:
    keys = target_keys()
    assert {name for name, _ in keys} == set(available_adapters())
    unregistered = [name for name, label in keys if label is None]
    assert not unregistered, "\n".join(missing_message(name) for name in unregistered)
    assert {"fhir-r4", "gp-connect"} <= {name for name, _ in keys}


def test_an_adapter_without_a_demo_server_fails_saying_it_needs_one(conformance_network: DemoNetwork) -> None:
    assert ("acme-emr", None) in target_keys(["acme-emr", *HARNESS])
    with pytest.raises(pytest.fail.Exception) as info:
        build_target(conformance_network, "acme-emr", None)
    assert "acme-emr" in str(info.value) and "registered in the conformance harness" in str(info.value)
    assert "tests/adapters/conformance.py" in missing_message("acme-emr")


# --- the contract ------------------------------------------------------------------------------------------

class TestAdapterContract:
    """Run against every (adapter, demo practice) pair the harness knows."""

    def test_is_found_by_its_entry_point_name(self, target: Target) -> None:
        cls = available_adapters()[target.adapter_name]
        assert cls.kind == target.adapter_name
        assert target.practice.adapter == target.adapter_name
        adapter = target.adapter()
        assert type(adapter) is cls and adapter.practice == target.practice
        assert isinstance(cls.supports_demographic_search, bool) and isinstance(cls.accepts_audit_events, bool)

    # -- connect -------------------------------------------------------------------------------------

    async def test_connects_with_the_right_credentials(self, target: Target, make: Make) -> None:
        info = await make().connect()
        assert isinstance(info, ServerInfo) and info.round_trip_ms > 0

    async def test_wrong_credentials_fail_at_connect_naming_the_practice(self, target: Target, make: Make) -> None:
        with target.wrong_credentials(target) as (practice, secret):
            adapter = make(practice, secret)
            with pytest.raises(AdapterError) as info:
                await adapter.connect()
            assert_clear(info.value, practice, "auth")
            with pytest.raises(AdapterError) as info:  # never "no such patient here"
                await adapter.search(PatientQuery(nhs_number=target.patient().nhs_number))
            assert_clear(info.value, practice, "auth")

    async def test_a_missing_credential_fails_before_any_request(self, target: Target, make: Make) -> None:
        practice, secret = target.missing_credentials(target)
        adapter = make(practice, secret)
        before = target.server.requests
        with pytest.raises(AdapterError) as info:
            await adapter.connect()
        assert_clear(info.value, practice)
        assert info.value.kind in ("auth", "config"), info.value.kind
        with pytest.raises(AdapterError) as info:
            await adapter.search(PatientQuery(nhs_number=target.patient().nhs_number))
        assert_clear(info.value, practice)
        assert target.server.requests == before, "a request went out without its credential"

    # -- search --------------------------------------------------------------------------------------

    async def test_search_by_nhs_number_finds_exactly_that_patient(self, target: Target, make: Make) -> None:
        adapter = make()
        await adapter.connect()
        for patient in list(target.patients())[:3]:
            found = await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
            assert len(found) == 1, found
            (summary,) = found
            assert summary.nhs_number == patient.nhs_number and summary.practice_id == target.practice_id
            assert (summary.family, summary.birth_date) == (patient.family, patient.birth_date)
            assert summary.local_id

    async def test_an_unknown_nhs_number_is_an_empty_result(self, target: Target, make: Make) -> None:
        adapter = make()
        await adapter.connect()
        assert await adapter.search(PatientQuery(nhs_number=unknown_nhs_number(target.network))) == []

    async def test_demographic_search_does_what_the_adapter_declares(self, target: Target, make: Make) -> None:
        adapter = make()
        await adapter.connect()
        patient = target.patient()
        queries = [PatientQuery(family=patient.family, birth_date=patient.birth_date),
                   PatientQuery(family=patient.family, given=patient.given[0]),
                   PatientQuery(birth_date=patient.birth_date)]
        if type(adapter).supports_demographic_search:
            for query in queries:
                found = await adapter.search(query)
                assert patient.nhs_number in {p.nhs_number for p in found}, query
                assert all(p.practice_id == target.practice_id for p in found)
                if query.birth_date:
                    assert all(p.birth_date in (query.birth_date, None) for p in found)
        else:  # declared unsupported: an empty answer, not an exception
            for query in queries:
                assert await adapter.search(query) == [], query

    # -- records -------------------------------------------------------------------------------------

    async def test_fetch_record_is_the_patient_asked_for_with_every_section(self, target: Target,
                                                                            make: Make) -> None:
        adapter = make()
        await adapter.connect()
        for patient in list(target.patients())[:3]:
            (summary,) = await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
            record = await adapter.fetch_record(summary.local_id)
            assert record.patient.nhs_number == patient.nhs_number
            assert record.patient.local_id == summary.local_id
            assert record.patient.practice_id == target.practice_id
            assert record.retrieved_at.tzinfo is not None
            assert_every_section(record)
            failed = {n: s.error for n, s in record.sections.items() if s.status == "failed"}
            assert not failed, f"a healthy practice gave failed sections: {failed}"

    async def test_an_unknown_record_is_not_found_naming_the_practice(self, target: Target, make: Make) -> None:
        adapter = make()
        await adapter.connect()
        with pytest.raises(AdapterError) as info:
            await adapter.fetch_record(target.unknown_local_id(target))
        assert_clear(info.value, target.practice, "not-found")

    async def test_a_reply_about_another_patient_is_never_shown_as_the_one_asked_for(self, target: Target,
                                                                                   make: Make) -> None:
        adapter = make()
        await adapter.connect()
        asked, other = list(target.patients())[:2]
        (summary,) = await adapter.search(PatientQuery(nhs_number=asked.nhs_number))
        with target.mixes_up_patients(target, asked, other):
            try:  # a search may find nobody or fail, but never offer the other patient as this one
                offered = await adapter.search(PatientQuery(nhs_number=asked.nhs_number))
            except AdapterError as exc:
                assert_clear(exc, target.practice)
            else:
                assert all(p.nhs_number == asked.nhs_number for p in offered), "another patient was offered"
            try:
                record = await adapter.fetch_record(summary.local_id)
            except AdapterError as exc:
                assert_clear(exc, target.practice, "bad-reply")
            else:
                pytest.fail(f"asked for {summary.local_id}, the adapter returned the record of "
                            f"{record.patient.local_id} (NHS number matches: "
                            f"{record.patient.nhs_number == asked.nhs_number})")

    # -- faults --------------------------------------------------------------------------------------

    @pytest.mark.parametrize("mode", ["http-500", "http-503", "auth-fail", "malformed-json", "wrong-content-type",
                                      "down", "hang"])
    async def test_a_server_fault_is_a_clear_error_never_an_empty_answer(self, target: Target, make: Make,
                                                                          mode: str) -> None:
        faults, changes = fault_settings(mode)
        adapter = make(**changes)
        await adapter.connect()
        patient, local_id = await found_patient(adapter, target)
        practice = adapter.practice
        started = time.monotonic()
        with target.server.faults.override(**faults):
            with pytest.raises(AdapterError) as info:
                await make(**changes).connect()
            assert_clear(info.value, practice, FAULTS[mode])
            with pytest.raises(AdapterError) as info:  # an empty list would read "not registered here"
                await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
            assert_clear(info.value, practice, FAULTS[mode])
            try:
                record = await adapter.fetch_record(local_id)
            except AdapterError as exc:
                assert_clear(exc, practice, FAULTS[mode])
            else:
                assert_fault_reported(record, practice)
        if mode == "hang":  # three calls, each bounded by the practice's deadline
            assert time.monotonic() - started < 3 * HANG_TIMEOUT_S * DEADLINE_FACTOR + 2

    @pytest.mark.parametrize("mode", ["http-500", "malformed-json", "oversized", "hang"])
    async def test_a_fault_in_one_part_of_a_record_fails_that_part_only(self, target: Target, make: Make,
                                                                        mode: str) -> None:
        faults, changes = fault_settings(mode)
        adapter = make(**changes)
        await adapter.connect()
        _patient, local_id = await found_patient(adapter, target)
        practice = adapter.practice
        if not target.section_paths:  # a record is one request here: its fault is the whole record's
            with target.server.faults.override(**faults, times=1), pytest.raises(AdapterError) as info:
                await adapter.fetch_record(local_id)
            assert_clear(info.value, practice, FAULTS[mode])
            return
        for name, path in target.section_paths.items():
            with target.server.faults.override(**faults, match=path):
                record = await adapter.fetch_record(local_id)
            assert_every_section(record)
            section = record.sections[name]
            assert section.status == "failed", f"{name} is {section.status} after its request failed"
            assert practice.name in (section.error or ""), section.error
            others = {n: s.status for n, s in record.sections.items() if n is not name and s.status == "failed"}
            assert not others, f"a fault in {name} failed other sections too: {others}"

    @pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
    async def test_a_reply_over_the_size_limit_is_refused(self, target: Target, make: Make, chunked: bool) -> None:
        adapter = make(max_response_bytes=SIZE_LIMIT)
        await adapter.connect()
        patient, local_id = await found_patient(adapter, target)
        with target.server.faults.override(mode="oversized", oversize_bytes=16 * SIZE_LIMIT,
                                           oversize_chunked=chunked):
            with pytest.raises(AdapterError) as info:
                await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
            assert_clear(info.value, adapter.practice, "too-large")
            try:
                record = await adapter.fetch_record(local_id)
            except AdapterError as exc:
                assert_clear(exc, adapter.practice, "too-large")
            else:
                assert_fault_reported(record, adapter.practice)
        assert target.server.faults.counts["oversized"] >= 2

    async def test_a_cancelled_request_leaves_nothing_running(self, target: Target, make: Make) -> None:
        """The core gives up on a slow practice (wait_for); the adapter's own requests must stop with it."""
        adapter = make()
        await adapter.connect()
        _patient, local_id = await found_patient(adapter, target)
        faults = target.server.faults
        with faults.override(mode="hang", hang_s=5.0):
            fetching = asyncio.ensure_future(adapter.fetch_record(local_id))
            assert await asyncio.to_thread(faults.wait_for_hanging, 1, 5.0), "the request never reached the server"
            fetching.cancel()
            with pytest.raises(asyncio.CancelledError):
                await fetching
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert not left, f"still running after the fetch was cancelled: {left}"
        async with asyncio.timeout(2):
            await adapter.close()

    # -- audit ---------------------------------------------------------------------------------------

    async def test_audit_events_as_the_adapter_declares(self, target: Target, make: Make) -> None:
        adapter = make()
        await adapter.connect()
        name = key_id((target.adapter_name, target.label))
        identifier = ("urn:ietf:rfc:3986", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}")
        event = {"resourceType": "AuditEvent", "recorded": "2025-01-01T09:00:00Z",
                 "entity": [{"what": {"identifier": {"system": identifier[0], "value": identifier[1]}}}]}
        if type(adapter).accepts_audit_events:
            if target.audit_copies is None:
                pytest.fail(f"{target.adapter_name} accepts audit events: its harness target needs audit_copies")
            assert target.audit_copies(target, identifier) == 0
            await adapter.send_audit_event(event, identifier)
            await adapter.send_audit_event(event, identifier)  # a retry after a lost reply: still one copy
            assert target.audit_copies(target, identifier) == 1
        else:
            before = target.server.requests
            with pytest.raises(AdapterError) as info:
                await adapter.send_audit_event(event, identifier)
            assert_clear(info.value, target.practice, "unsupported")
            assert target.server.requests == before

    # -- lifecycle and logs --------------------------------------------------------------------------

    async def test_close_is_safe_to_call_twice(self, target: Target) -> None:
        unused = target.adapter()
        await unused.close()
        await unused.close()
        used = target.adapter()
        await used.connect()
        await used.search(PatientQuery(nhs_number=target.patient().nhs_number))
        await used.close()
        await used.close()

    async def test_logs_never_carry_the_patients_name_or_nhs_number(self, target: Target, make: Make,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
        practice_words = " ".join(f"{p.id} {p.name}" for p in target.network.practices).lower()
        patient = next(p for p in target.patients()  # no name that is also part of a practice's name
                       if not any(n.lower() in practice_words for n in (p.family, *p.given)))
        adapter = make()
        with caplog.at_level(logging.DEBUG):
            await adapter.connect()
            (summary,) = await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
            await adapter.search(PatientQuery(family=patient.family, given=patient.given[0],
                                              birth_date=patient.birth_date))
            await adapter.fetch_record(summary.local_id)
            await adapter.search(PatientQuery(nhs_number=unknown_nhs_number(target.network)))
            with target.server.faults.override(mode="http-500"):
                for call in (adapter.search(PatientQuery(nhs_number=patient.nhs_number)),
                             adapter.fetch_record(summary.local_id)):
                    with contextlib.suppress(AdapterError):
                        await call
        ours = [r for r in caplog.records if r.name.startswith("mosaic.adapters")]
        assert any(f"practice={target.practice_id}" in r.getMessage() for r in ours), "the adapter logged nothing"
        logged = caplog.text + "\n" + "\n".join(r.getMessage() for r in caplog.records)
        assert patient.nhs_number and patient.birth_date
        for private in (patient.nhs_number, format_nhs_number(patient.nhs_number), patient.family, *patient.given,
                        patient.birth_date.isoformat()):
            assert not re.search(rf"\b{re.escape(private)}\b", logged, re.IGNORECASE), f"the log holds {private!r}"
        if target.secret:
            assert target.secret not in logged
