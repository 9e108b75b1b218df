"""The FHIR R4 adapter against the demo practices: real HTTP over loopback, real faults."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import adapters.fhir_r4.adapter as fhir_adapter
from adapters.base import AdapterError, adapter_for
from adapters.fhir_r4 import FhirR4Adapter
from adapters.fhir_r4.capabilities import parse_capabilities
from adapters.fhir_r4.mapping import SECTION_OF
from app.core.model import PatientQuery, PatientSummary, Practice, SectionName
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork
from tests.conftest import SYNTHEA_DIR

Factory = Callable[..., FhirR4Adapter]


@pytest.fixture
async def make_adapter() -> AsyncIterator[Factory]:
    """Adapters for demo practices, closed after the test."""
    made: list[FhirR4Adapter] = []

    def make(network: DemoNetwork, server: DemoServer, secret: str | None = "", **changes: Any) -> FhirR4Adapter:
        practice = replace(server.practice, **changes) if changes else server.practice
        adapter = FhirR4Adapter(practice, network.secrets[practice.id] if secret == "" else secret)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


def by_mode(network: DemoNetwork, everything: bool) -> DemoServer:
    return next(s for s in network.servers if s.api.supports_everything is everything)


def by_auth(network: DemoNetwork, auth: str) -> DemoServer:
    return next(s for s in network.servers if s.practice.auth == auth)


def with_record(server: DemoServer, minimum: int = 3) -> Any:
    """A generated patient with at least `minimum` observations and some of every core type."""
    pop = server.population
    for patient in pop:
        record = pop.record(patient)
        if len(record.get("Observation", ())) >= minimum and record.get("Condition") and record.get("Encounter"):
            return patient
    raise AssertionError("no suitable patient in the demo population")


def expected_counts(record: dict[str, list[dict[str, Any]]]) -> dict[SectionName, int]:
    counts: Counter[SectionName] = Counter()
    for rtype, resources in record.items():
        if rtype in SECTION_OF:
            counts[SECTION_OF[rtype]] += len(resources)
        elif rtype == "DiagnosticReport":  # a report heads its results
            counts[SectionName.OBSERVATIONS] += len(resources)
    return {s: counts[s] for s in SectionName}


def section_counts(record: Any) -> dict[SectionName, int]:
    assert all(s.status == "loaded" for s in record.sections.values()), record.sections
    return {name: len(s.entries) for name, s in record.sections.items()}


# --- connect ---------------------------------------------------------------------------------------

async def test_connects_to_every_demo_practice(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    kinds = set()
    for server in demo_network.servers:
        adapter = make_adapter(demo_network, server)
        info = await adapter.connect()
        kinds.add(server.practice.auth)
        assert info.fhir_version == "4.0.1"
        assert info.software and info.software.startswith("Mosaic demo practice")
        assert info.supports_everything is server.api.supports_everything
        assert info.extra["auth_check"] == "passed"
        assert info.round_trip_ms > 0
    assert {"basic", "bearer", "client-credentials"} <= kinds


def test_found_through_the_entry_point(demo_network: DemoNetwork) -> None:
    practice = demo_network.practices[0]
    assert isinstance(adapter_for(practice, "x"), FhirR4Adapter)


@pytest.mark.parametrize("auth", ["basic", "bearer", "client-credentials"])
async def test_wrong_secret_fails_at_connect(demo_network: DemoNetwork, make_adapter: Factory, auth: str) -> None:
    server = by_auth(demo_network, auth)
    with pytest.raises(AdapterError) as info:
        await make_adapter(demo_network, server, "not-the-secret").connect()
    assert info.value.kind == "auth"
    assert info.value.message.startswith(server.practice.name)
    assert f"mosaic credentials set {server.practice.id}" in info.value.message


async def test_missing_secret_says_how_to_set_it_before_any_request(demo_network: DemoNetwork,
                                                                     make_adapter: Factory) -> None:
    server = by_auth(demo_network, "basic")
    before = server.requests
    with pytest.raises(AdapterError) as info:
        await make_adapter(demo_network, server, None).connect()
    assert info.value.kind == "auth"
    assert f"mosaic credentials set {server.practice.id}" in info.value.message
    assert f"MOSAIC_SECRET_{server.practice.id.upper()}" in info.value.message
    assert server.requests == before


async def test_wrong_base_url_is_a_config_error(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    server = demo_network.servers[0]
    adapter = make_adapter(demo_network, server, base_url=server.url + "/not-fhir")
    with pytest.raises(AdapterError) as info:
        await adapter.connect()
    assert info.value.kind == "config" and "Check base_url" in info.value.message


def test_capability_statement_checks() -> None:
    practice = Practice("p", "Test Surgery", "X1", "fhir-r4", "https://x.example/fhir")
    with pytest.raises(AdapterError, match="FHIR version 3.0.2") as info:
        parse_capabilities(practice, {"resourceType": "CapabilityStatement", "fhirVersion": "3.0.2"})
    assert info.value.kind == "unsupported"
    with pytest.raises(AdapterError, match="returned a Conformance"):
        parse_capabilities(practice, {"resourceType": "Conformance", "fhirVersion": "1.0.2"})
    system_level = parse_capabilities(practice, {
        "resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
        "rest": [{"mode": "server", "resource": [{"type": "Patient"}, {"type": "Condition"}],
                  "operation": [{"name": "everything",
                                 "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]}]})
    assert system_level.supports_everything and not system_level.supports("Observation")
    silent = parse_capabilities(practice, {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.0"})
    assert not silent.supports_everything and silent.supports("Observation")


# --- client credentials ------------------------------------------------------------------------------

async def test_client_credentials_token_is_cached_and_renewed_once_after_401(
        demo_network: DemoNetwork, make_adapter: Factory) -> None:
    server = by_auth(demo_network, "client-credentials")
    adapter = make_adapter(demo_network, server)
    issued = server.auth.issued
    await adapter.connect()
    patient = next(iter(server.population))
    await adapter.search(PatientQuery(family=patient.family))
    await adapter.fetch_record(patient.local_id)  # seven concurrent requests share the one token
    assert server.auth.issued == issued + 1

    server.auth.expire_tokens()
    found = await adapter.search(PatientQuery(nhs_number=patient.nhs_number))
    assert [p.local_id for p in found] == [patient.local_id]
    assert server.auth.issued == issued + 2

    with server.faults.override(mode="auth-fail", match="/fhir/Patient"), \
            pytest.raises(AdapterError) as info:
        await adapter.search(PatientQuery(family=patient.family))
    assert info.value.kind == "auth"
    assert server.auth.issued == issued + 3  # refreshed once, retried once, then gave up


async def test_scope_is_sent_when_configured(demo_network: DemoNetwork, make_adapter: Factory,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = by_auth(demo_network, "client-credentials")
    forms: list[bytes] = []
    real_issue = server.auth.issue

    def recording_issue(body: bytes, headers: Any) -> Any:
        forms.append(body)
        return real_issue(body, headers)

    monkeypatch.setattr(server.auth, "issue", recording_issue)
    await make_adapter(demo_network, server, scope="system/*.read").connect()
    (form,) = forms
    assert b"grant_type=client_credentials" in form and b"scope=system%2F%2A.read" in form
    assert f"client_id={server.practice.client_id}".encode() in form


# --- search ------------------------------------------------------------------------------------------

async def test_search_by_nhs_number_family_and_birth_date(demo_network: DemoNetwork,
                                                           make_adapter: Factory) -> None:
    server = demo_network.servers[1]
    pop = server.population
    adapter = make_adapter(demo_network, server)
    patient = next(p for p in pop if p.nhs_number and p.birth_date)

    (found,) = await adapter.search(PatientQuery(nhs_number=f"{patient.nhs_number[:3]} {patient.nhs_number[3:]}"))
    assert found == patient.summary(server.practice.id)

    by_family = await adapter.search(PatientQuery(family=patient.family))
    assert {p.local_id for p in by_family} == {p.local_id for p in pop.search(family=patient.family)}

    by_birth = await adapter.search(PatientQuery(birth_date=patient.birth_date))
    assert {p.local_id for p in by_birth} == {p.local_id for p in pop.search(birth_date=patient.birth_date)}
    assert all(p.birth_date == patient.birth_date for p in by_birth)

    both = await adapter.search(PatientQuery(family=patient.family, given=patient.given[0][:2],
                                             birth_date=patient.birth_date))
    assert patient.local_id in {p.local_id for p in both}
    assert {p.local_id for p in both} == {p.local_id for p in pop.search(
        family=patient.family, given=patient.given[0][:2], birth_date=patient.birth_date)}

    assert await adapter.search(PatientQuery(nhs_number="9434765919")) == []
    assert await adapter.search(PatientQuery(family="Zzyzx")) == []
    assert adapter.last_search_truncated is False


async def test_search_follows_next_links_and_caps_results(demo_network: DemoNetwork, make_adapter: Factory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = demo_network.servers[0]
    initials = Counter(p.family[0] for p in server.population)
    letter, count = initials.most_common(1)[0]
    assert count > 8
    monkeypatch.setattr(fhir_adapter, "SEARCH_PAGE_SIZE", 3)
    adapter = make_adapter(demo_network, server)
    monkeypatch.setattr(fhir_adapter, "SEARCH_MAX_PAGES", 100)
    everyone = await adapter.search(PatientQuery(family=letter))
    assert len(everyone) == len(server.population.search(family=letter)) and not adapter.last_search_truncated
    monkeypatch.setattr(fhir_adapter, "SEARCH_MAX_PAGES", 2)
    capped = await adapter.search(PatientQuery(family=letter))
    assert len(capped) == 6 and adapter.last_search_truncated


def test_results_the_server_should_not_have_returned_are_dropped() -> None:
    # A server that ignores an unknown parameter returns everyone; exact fields are re-checked here.
    someone = PatientSummary("p", "1", "9434765919", "Smith", ("Ann",), date(1970, 1, 2), "female", None)
    assert fhir_adapter._still_matches(someone, PatientQuery(nhs_number="943 476 5919"))
    assert not fhir_adapter._still_matches(someone, PatientQuery(nhs_number="9990000018"))
    assert not fhir_adapter._still_matches(replace(someone, nhs_number=None), PatientQuery(nhs_number="9434765919"))
    assert not fhir_adapter._still_matches(someone, PatientQuery(birth_date=date(1970, 1, 3)))
    assert fhir_adapter._still_matches(replace(someone, birth_date=None), PatientQuery(birth_date=date(1970, 1, 3)))
    assert fhir_adapter.search_params(PatientQuery(nhs_number="943 476 5919", family=" Smith ",
                                                   birth_date=date(1970, 1, 2))) == {
        "identifier": "https://fhir.nhs.uk/Id/nhs-number|9434765919", "family": "Smith",
        "birthdate": "eq1970-01-02"}


async def test_links_to_another_server_are_not_followed(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    adapter = make_adapter(demo_network, demo_network.servers[0])
    with pytest.raises(AdapterError) as info:
        await adapter._get("http://elsewhere.example/fhir/Patient?_offset=50")
    assert info.value.kind == "bad-reply" and "elsewhere.example" in info.value.message


# --- records -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("everything", [True, False], ids=["everything", "per-type"])
async def test_fetch_record_matches_the_server_in_one_round(demo_network: DemoNetwork, make_adapter: Factory,
                                                             everything: bool) -> None:
    server = by_mode(demo_network, everything)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    patient = with_record(server)
    record = await adapter.fetch_record(patient.local_id)
    assert record.patient == patient.summary(server.practice.id)
    assert section_counts(record) == expected_counts(server.population.record(patient))
    assert record.round_trips == 1 and not record.warnings
    for section in record.sections.values():
        whens = [e.when or "" for e in section.entries]
        assert whens == sorted(whens, reverse=True)
        assert all(e.text for e in section.entries)


async def test_every_practice_every_way_within_three_rounds(demo_network: DemoNetwork,
                                                            make_adapter: Factory) -> None:
    for server in demo_network.servers:
        adapter = make_adapter(demo_network, server)  # not connected: capabilities cost one round
        for patient in list(server.population)[:5]:
            record = await adapter.fetch_record(patient.local_id)
            assert record.round_trips <= 3
            assert section_counts(record) == expected_counts(server.population.record(patient))


@pytest.mark.parametrize("everything", [True, False], ids=["everything", "per-type"])
async def test_paged_records_are_complete(demo_network: DemoNetwork, make_adapter: Factory,
                                          monkeypatch: pytest.MonkeyPatch, everything: bool) -> None:
    monkeypatch.setattr(fhir_adapter, "EVERYTHING_PAGE_SIZE", 4)
    monkeypatch.setattr(fhir_adapter, "RECORD_PAGE_SIZE", 2)
    server = by_mode(demo_network, everything)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    patient = with_record(server, minimum=6)
    record = await adapter.fetch_record(patient.local_id)
    resources = server.population.record(patient)
    assert section_counts(record) == expected_counts(resources)
    longest = max(len(v) for v in resources.values())
    if everything:
        assert record.round_trips >= 3
    else:
        assert record.round_trips == -(-longest // 2)  # the longest chain of pages, not their sum


async def test_a_failed_search_fails_its_section_only(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    server = by_mode(demo_network, everything=False)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    patient = with_record(server)
    with server.faults.override(mode="http-500", match="/fhir/Observation"):
        record = await adapter.fetch_record(patient.local_id)
    observations = record.sections[SectionName.OBSERVATIONS]
    assert observations.status == "failed" and not observations.entries
    assert observations.error and observations.error.startswith(server.practice.name)
    assert "HTTP 500" in observations.error
    expected = expected_counts(server.population.record(patient))
    for name, section in record.sections.items():
        if name is not SectionName.OBSERVATIONS:
            assert section.status == "loaded" and len(section.entries) == expected[name]


async def test_a_failed_later_page_fails_the_section_not_shown_as_partial(
        demo_network: DemoNetwork, make_adapter: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_adapter, "RECORD_PAGE_SIZE", 2)
    server = by_mode(demo_network, everything=False)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    patient = with_record(server, minimum=4)
    real_get = adapter._get

    async def second_page_fails(target: str, *args: Any, **kwargs: Any) -> Any:
        if "/Observation?" in target and "_offset" in target:
            with server.faults.override(mode="malformed-json", match="/fhir/Observation", times=1):
                return await real_get(target, *args, **kwargs)
        return await real_get(target, *args, **kwargs)

    monkeypatch.setattr(adapter, "_get", second_page_fails)
    record = await adapter.fetch_record(patient.local_id)
    observations = record.sections[SectionName.OBSERVATIONS]
    assert observations.status == "failed" and "Only part of this section arrived" in (observations.error or "")
    assert record.sections[SectionName.PROBLEMS].status == "loaded"


@pytest.mark.parametrize("everything", [True, False], ids=["everything", "per-type"])
async def test_types_the_server_does_not_declare_are_unsupported_sections(
        demo_network: DemoNetwork, make_adapter: Factory, everything: bool) -> None:
    server = by_mode(demo_network, everything)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    caps = adapter.capabilities
    assert caps is not None and caps.resource_types is not None
    adapter.capabilities = replace(caps, resource_types=caps.resource_types - {"Immunization"})
    patient = with_record(server)
    record = await adapter.fetch_record(patient.local_id)
    assert record.sections[SectionName.IMMUNISATIONS].status == "unsupported"
    assert record.sections[SectionName.PROBLEMS].status == "loaded"


async def test_unknown_patient_is_not_found(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    for everything in (True, False):
        server = by_mode(demo_network, everything)
        adapter = make_adapter(demo_network, server)
        with pytest.raises(AdapterError) as info:
            await adapter.fetch_record("no-such-patient")
        assert info.value.kind == "not-found" and info.value.message.startswith(server.practice.name)
        with pytest.raises(AdapterError) as info:
            await adapter.fetch_record("../metadata")
        assert info.value.kind == "not-found"


async def test_everything_failing_means_no_record(demo_network: DemoNetwork, make_adapter: Factory) -> None:
    server = by_mode(demo_network, everything=True)
    adapter = make_adapter(demo_network, server)
    await adapter.connect()
    with server.faults.override(mode="http-503", match="$everything"), pytest.raises(AdapterError) as info:
        await adapter.fetch_record(with_record(server).local_id)
    assert info.value.kind == "server" and "HTTP 503" in info.value.message


# --- bad replies ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "kind", "words"), [
    ("malformed-json", "bad-reply", "not valid JSON"),
    ("wrong-content-type", "bad-reply", "sent a web page (text/html) instead of FHIR data"),
    ("http-500", "server", "HTTP 500"),
    ("down", "network", "closed the connection"),
])
async def test_bad_replies_are_clear_errors(demo_network: DemoNetwork, make_adapter: Factory,
                                            mode: str, kind: str, words: str) -> None:
    server = demo_network.servers[2]
    adapter = make_adapter(demo_network, server)
    with server.faults.override(mode=mode, match="/fhir/Patient"), pytest.raises(AdapterError) as info:
        await adapter.search(PatientQuery(family="Smith"))
    assert info.value.kind == kind and words in info.value.message
    assert info.value.message.startswith(server.practice.name)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_ten_times_oversized_reply_is_abandoned(demo_network: DemoNetwork, make_adapter: Factory,
                                                      chunked: bool) -> None:
    server = demo_network.servers[0]
    limit = 512 * 1024
    adapter = make_adapter(demo_network, server, max_response_bytes=limit)
    with server.faults.override(mode="oversized", oversize_bytes=10 * limit, oversize_chunked=chunked,
                                match="/fhir/Patient"), pytest.raises(AdapterError) as info:
        await adapter.search(PatientQuery(family="Smith"))
    assert info.value.kind == "too-large" and "more than 512 KB" in info.value.message


async def test_a_server_that_stops_answering_times_out_within_the_deadline(
        demo_network: DemoNetwork, make_adapter: Factory) -> None:
    server = demo_network.servers[3]
    adapter = make_adapter(demo_network, server, timeout_s=0.4)
    started = time.monotonic()
    with server.faults.override(mode="hang", hang_s=3, match="/fhir/Patient"), \
            pytest.raises(AdapterError) as info:
        await adapter.search(PatientQuery(family="Smith"))
    assert info.value.kind == "timeout" and "did not answer within 0.4 s" in info.value.message
    assert time.monotonic() - started < 2.5  # well before the server's 3 s hang would end it


async def test_logs_carry_ids_and_paths_never_names_or_nhs_numbers(
        demo_network: DemoNetwork, make_adapter: Factory, caplog: pytest.LogCaptureFixture) -> None:
    server = demo_network.servers[1]
    adapter = make_adapter(demo_network, server)
    patient = with_record(server)
    with caplog.at_level(logging.DEBUG):
        await adapter.connect()
        await adapter.search(PatientQuery(nhs_number=patient.nhs_number, family=patient.family,
                                          birth_date=patient.birth_date))
        await adapter.fetch_record(patient.local_id)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mosaic.adapters")]
    assert any(f"practice={server.practice.id} request=" in m and "GET /fhir/Patient status=200" in m
               for m in ours)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (patient.nhs_number, patient.family, *patient.given, patient.birth_date.isoformat(),
                   demo_network.secrets[server.practice.id]):
        assert secret not in everything


# --- Synthea patients served by the demo ----------------------------------------------------------

@pytest.fixture(scope="module")
def synthea_network() -> Iterator[DemoNetwork]:
    network = DemoNetwork.start(practices=5, patients=20, load_dir=SYNTHEA_DIR)
    try:
        yield network
    finally:
        network.stop()


SYNTHEA_PATIENTS = sorted(f for f in SYNTHEA_DIR.glob("*.json") if "Information" not in f.name)


@pytest.mark.shared_data
@pytest.mark.parametrize("path", SYNTHEA_PATIENTS, ids=lambda p: "_".join(p.name.split("_")[:2]))
async def test_synthea_patient_found_by_name_and_record_matches_bundle(
        synthea_network: DemoNetwork, make_adapter: Factory, path: Path) -> None:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    resources = [e["resource"] for e in bundle["entry"]]
    (source,) = [r for r in resources if r["resourceType"] == "Patient"]
    given, family = path.name.split("_")[:2]
    practice_id = next(pid for pid, lid in synthea_network.synthea.patients if lid == source["id"])
    server = synthea_network.server(practice_id)
    adapter = make_adapter(synthea_network, server)
    await adapter.connect()

    found = await adapter.search(PatientQuery(family=family, birth_date=date.fromisoformat(source["birthDate"])))
    (patient,) = [p for p in found if p.given == (given,)]
    assert (patient.local_id, patient.family, patient.sex) == (source["id"], family, source["gender"])

    record = await adapter.fetch_record(patient.local_id)
    assert section_counts(record) == expected_counts(
        {t: [r for r in resources if r["resourceType"] == t] for t in (*SECTION_OF, "DiagnosticReport")})
    assert record.round_trips <= 3 and not record.warnings
    if family == "Hayes":
        allergies = {e.text for e in record.sections[SectionName.ALLERGIES].entries}
        assert {"Latex allergy", "House dust mite allergy"} <= allergies
        visit = next(e for e in record.sections[SectionName.ENCOUNTERS].entries
                     if e.resource_id == "289cbe1c-ff66-4466-9d3c-f021d725e284")
        assert visit.detail and visit.detail.startswith("Reason: Perennial allergic rhinitis")
    if family == "Hoeger":
        bp = next(e for e in record.sections[SectionName.OBSERVATIONS].entries
                  if e.resource_id == "37663719-c702-4588-964e-27d987ab94ed")
        assert bp.detail == "135/72 mmHg"


@pytest.mark.shared_data
def test_synthea_patients_cover_both_ways_of_fetching(synthea_network: DemoNetwork) -> None:
    ways = {synthea_network.server(pid).api.supports_everything for pid, _ in synthea_network.synthea.patients}
    assert ways == {True, False}
