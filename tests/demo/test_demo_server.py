"""The demo practices over real loopback HTTP: FHIR search and read, $everything, sign-in, faults,
AuditEvent, Synthea data and shutdown."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.core.nhs_number import NHS_NUMBER_SYSTEM
from app.demo.fhir_json import iter_references
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork, secret_env_name
from tests.conftest import SYNTHEA_DIR

Json = dict[str, Any]


def client_for(network: DemoNetwork, practice_id: str, timeout: float = 5.0) -> httpx2.Client:
    """A client signed in the way this practice expects."""
    practice = network.server(practice_id).practice
    secret = network.secrets[practice_id]
    if practice.auth == "basic":
        return httpx2.Client(base_url=practice.base_url, auth=(practice.username or "", secret), timeout=timeout)
    if practice.auth == "client-credentials":
        assert practice.token_url and practice.client_id
        reply = httpx2.post(practice.token_url, data={"grant_type": "client_credentials",
                                                     "client_id": practice.client_id, "client_secret": secret})
        reply.raise_for_status()
        secret = reply.json()["access_token"]
    return httpx2.Client(base_url=practice.base_url, headers={"Authorization": f"Bearer {secret}"},
                        timeout=timeout)


@pytest.fixture()
def riverside(demo_network: DemoNetwork) -> Iterator[httpx2.Client]:
    with client_for(demo_network, "riverside") as client:
        yield client


@pytest.fixture()
def river_server(demo_network: DemoNetwork) -> Iterator[DemoServer]:
    server = demo_network.server("riverside")
    yield server
    server.faults.reset()  # belt and braces: tests restore their own overrides


def entries(bundle: Json) -> list[Json]:
    return [e["resource"] for e in bundle.get("entry", [])]


def follow(client: httpx2.Client, url: str, params: dict[str, str] | None = None) -> tuple[list[Json], int]:
    """All resources of a paged search, and how many pages it took."""
    reply = client.get(url, params=params)
    reply.raise_for_status()
    found, pages = [], 0
    while True:
        bundle = reply.json()
        found.extend(entries(bundle))
        pages += 1
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return found, pages
        reply = client.get(following[0])
        reply.raise_for_status()


# -- the network and its practices -------------------------------------------------------------------


def test_practices_each_have_their_own_address_credentials_and_colour(demo_network: DemoNetwork) -> None:
    practices = demo_network.practices
    assert [p.id for p in practices] == ["riverside", "oakwood", "millbrook", "castlegate", "hillview"]
    assert [p.auth for p in practices] == ["basic", "basic", "basic", "bearer", "client-credentials"]
    assert len({p.base_url for p in practices}) == len({p.colour for p in practices}) == 5
    for p in practices:
        assert p.adapter == "fhir-r4" and p.base_url.startswith("http://127.0.0.1:") and p.base_url.endswith("/fhir")
        assert demo_network.secrets[p.id]
        assert demo_network.server(p.id).practice == p
    assert practices[0].username == "mosaic"
    assert practices[4].token_url and practices[4].client_id
    with pytest.raises(KeyError):
        demo_network.server("nowhere")


def test_metadata_declares_everything_only_where_implemented(demo_network: DemoNetwork) -> None:
    for index, server in enumerate(demo_network.servers):
        reply = httpx2.get(f"{server.base_url}/metadata")
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/fhir+json")
        statement = reply.json()
        assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
        assert statement["software"]["name"] == "Mosaic demo practice"
        patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
        declared = any(op["name"] == "everything" for op in patient.get("operation", []))
        assert declared == (index % 2 == 0)


def test_write_config_gives_a_practice_directory_and_private_secrets(demo_network: DemoNetwork,
                                                                     tmp_path: Path) -> None:
    path = demo_network.write_config(tmp_path / "conf" / "practices.toml")
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    tables = config["practice"]
    assert [t["id"] for t in tables] == [p.id for p in demo_network.practices]
    basic, cc = tables[0], tables[4]
    assert set(basic) == {"id", "name", "ods_code", "adapter", "base_url", "auth", "username", "colour"}
    assert set(cc) == {"id", "name", "ods_code", "adapter", "base_url", "auth", "token_url", "client_id", "colour"}
    assert set(tables[3]) == {"id", "name", "ods_code", "adapter", "base_url", "auth", "colour"}
    env = Path(str(path) + ".env")
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in env.read_text().splitlines())
    # the practices' secrets, and the demo's own folder and journal key (app/demo/session.py)
    assert lines == {**{secret_env_name(pid): secret for pid, secret in demo_network.secrets.items()},
                     **demo_network.demo_files}
    assert set(demo_network.demo_files) == {"MOSAIC_HOME", "MOSAIC_SECRET_JOURNAL_KEY"}
    assert secret_env_name("st-mary's") == "MOSAIC_SECRET_ST_MARY_S"


# -- Patient search and read --------------------------------------------------------------------------


def test_search_by_nhs_number_finds_exactly_that_patient(demo_network: DemoNetwork, riverside: httpx2.Client) -> None:
    target = demo_network.server("riverside").population.at(42)
    bundle = riverside.get("Patient", params={"identifier": f"{NHS_NUMBER_SYSTEM}|{target.nhs_number}"}).json()
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    patient = entries(bundle)[0]
    assert patient["id"] == target.local_id
    assert patient["identifier"][0] == {"system": NHS_NUMBER_SYSTEM, "value": target.nhs_number}
    assert patient["name"][0]["use"] == "official" and patient["name"][0]["family"] == target.family
    assert patient["birthDate"] == target.birth_date.isoformat() and patient["gender"] == target.sex
    assert patient["address"][0]["postalCode"] == target.postcode and patient["telecom"]
    other_system = riverside.get("Patient", params={"identifier": f"urn:other|{target.nhs_number}"}).json()
    assert other_system["total"] == 0 and "entry" not in other_system or not other_system["entry"]


def test_search_by_name_and_birth_date(demo_network: DemoNetwork, riverside: httpx2.Client) -> None:
    population = demo_network.server("riverside").population
    target = population.at(7)
    family = riverside.get("Patient", params={"family": target.family[:3].upper(), "_count": "200"}).json()
    expected = {p.local_id for p in population.search(family=target.family[:3])}
    assert {r["id"] for r in entries(family)} == expected and target.local_id in expected
    given = riverside.get("Patient", params={"given": target.given[0].lower(), "_count": "200"}).json()
    assert target.local_id in {r["id"] for r in entries(given)}
    combined = riverside.get("Patient", params={"family": target.family, "given": target.given[0],
                                                "birthdate": target.birth_date.isoformat()}).json()
    assert [r["id"] for r in entries(combined)] == [
        p.local_id for p in population.search(family=target.family, given=target.given[0],
                                              birth_date=target.birth_date)]
    nobody = riverside.get("Patient", params={"family": "Zzyzx"}).json()
    assert nobody["total"] == 0


def test_bad_search_parameters_are_a_400_operation_outcome(riverside: httpx2.Client) -> None:
    for params in ({"birthdate": "12/03/1975"}, {"colour": "blue"}, {"_count": "lots"}, {"family:exact": "X"}):
        reply = riverside.get("Patient", params=params)
        assert reply.status_code == 400, params
        assert reply.json()["resourceType"] == "OperationOutcome"


def test_paging_follows_next_links(demo_network: DemoNetwork, riverside: httpx2.Client) -> None:
    population = demo_network.server("riverside").population
    everyone, pages = follow(riverside, "Patient", {"_count": "30"})
    assert pages == -(-len(population) // 30)
    assert [r["id"] for r in everyone] == [p.local_id for p in population]
    first = riverside.get("Patient", params={"_count": "1000"}).json()
    assert len(entries(first)) == min(200, len(population))
    assert riverside.get("Patient", params={"_count": "0"}).json()["total"] == len(population)


def test_read_patient_and_unknown_ids(demo_network: DemoNetwork, riverside: httpx2.Client) -> None:
    target = demo_network.server("riverside").population.at(1)
    assert riverside.get(f"Patient/{target.local_id}").json()["id"] == target.local_id
    missing = riverside.get("Patient/doesnotexist")
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"
    assert riverside.get("Nothing/here/at/all").status_code == 404


# -- records: $everything and per-type searches -------------------------------------------------------


def test_everything_holds_the_whole_record_and_pages(demo_network: DemoNetwork, riverside: httpx2.Client) -> None:
    population = demo_network.server("riverside").population
    patient = max(list(population)[:40], key=lambda p: sum(map(len, population.record(p).values())))
    record = population.record(patient)
    size = 1 + sum(map(len, record.values()))
    resources, pages = follow(riverside, f"Patient/{patient.local_id}/$everything", {"_count": "10"})
    assert pages == -(-size // 10) and pages > 1
    assert resources[0]["resourceType"] == "Patient" and resources[0]["id"] == patient.local_id
    assert sorted((r["resourceType"], r["id"]) for r in resources[1:]) == sorted(
        (r["resourceType"], r["id"]) for items in record.values() for r in items)
    one_page = riverside.get(f"Patient/{patient.local_id}/$everything").json()
    assert one_page["total"] == size and len(one_page["entry"]) == size


def test_everything_is_refused_where_not_declared(demo_network: DemoNetwork) -> None:
    with client_for(demo_network, "oakwood") as oakwood:
        patient = demo_network.server("oakwood").population.at(0)
        reply = oakwood.get(f"Patient/{patient.local_id}/$everything")
        assert reply.status_code == 400 and reply.json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize("practice_id", ["oakwood", "castlegate"])
def test_per_type_searches_give_each_section(demo_network: DemoNetwork, practice_id: str) -> None:
    population = demo_network.server(practice_id).population
    patient = population.at(5)
    record = population.record(patient)
    with client_for(demo_network, practice_id) as client:
        for rtype in ("Condition", "MedicationRequest", "AllergyIntolerance", "Encounter", "Observation",
                      "Immunization"):
            for params in ({"patient": patient.local_id}, {"patient": f"Patient/{patient.local_id}"},
                           {"subject": f"Patient/{patient.local_id}"}):
                found, _ = follow(client, rtype, {**params, "_count": "7"})
                assert [r["id"] for r in found] == [r["id"] for r in record[rtype]], (rtype, params)
        read = client.get(f"Observation/{record['Observation'][0]['id']}")
        assert read.json() == record["Observation"][0]
        assert client.get("Condition").status_code == 400  # a patient is required
        assert client.get("Condition", params={"patient": "nobody"}).json()["total"] == 0
        assert client.get("Spaceship", params={"patient": patient.local_id}).status_code == 404


# -- sign-in ------------------------------------------------------------------------------------------


def test_basic_auth_rejects_missing_and_wrong_passwords(demo_network: DemoNetwork) -> None:
    url = f"{demo_network.server('riverside').base_url}/Patient"
    for auth in (None, ("mosaic", "wrong"), ("someone", demo_network.secrets["riverside"])):
        reply = httpx2.get(url, auth=auth)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"].startswith("Basic realm=")
        assert reply.json()["issue"][0]["code"] == "login"
    # another practice's password does not open this one
    assert httpx2.get(url, auth=("mosaic", demo_network.secrets["oakwood"])).status_code == 401


def test_metadata_is_open_unless_configured_otherwise(demo_network: DemoNetwork) -> None:
    api = demo_network.server("oakwood").api
    url = f"{api.base_url}/metadata"
    assert httpx2.get(url).status_code == 200
    api.metadata_requires_auth = True
    try:
        assert httpx2.get(url).status_code == 401
        assert httpx2.get(url, auth=("mosaic", demo_network.secrets["oakwood"])).status_code == 200
    finally:
        api.metadata_requires_auth = False


def test_static_bearer_token(demo_network: DemoNetwork) -> None:
    url = f"{demo_network.server('castlegate').base_url}/Patient"
    assert httpx2.get(url, headers={"Authorization": f"Bearer {demo_network.secrets['castlegate']}"}).status_code == 200
    wrong = httpx2.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]


def test_client_credentials_token_flow(demo_network: DemoNetwork) -> None:
    server = demo_network.server("hillview")
    practice, secret = server.practice, demo_network.secrets["hillview"]
    assert practice.token_url and practice.client_id
    form = {"grant_type": "client_credentials", "client_id": practice.client_id, "client_secret": secret}
    token = httpx2.post(practice.token_url, data=form).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 300 and token["access_token"]
    by_basic = httpx2.post(practice.token_url, data={"grant_type": "client_credentials"},
                          auth=(practice.client_id, secret))
    assert by_basic.status_code == 200
    assert httpx2.post(practice.token_url, data={**form, "client_secret": "x"}).json()["error"] == "invalid_client"
    assert httpx2.post(practice.token_url, data={**form, "grant_type": "password"}).status_code == 400

    url = f"{practice.base_url}/Patient"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx2.get(url, headers=bearer).status_code == 200
    missing = httpx2.get(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    unknown = httpx2.get(url, headers={"Authorization": "Bearer made-up"})
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]
    server.auth.expire_tokens()
    expired = httpx2.get(url, headers=bearer)
    assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]


# -- faults -------------------------------------------------------------------------------------------


def test_latency_is_added_to_every_reply(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(latency_ms=150):
        started = time.monotonic()
        assert riverside.get("metadata").status_code == 200
        assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(("mode", "status"), [("http-500", 500), ("http-503", 503), ("auth-fail", 401)])
def test_error_modes(river_server: DemoServer, riverside: httpx2.Client, mode: str, status: int) -> None:
    with river_server.faults.override(mode=mode):
        reply = riverside.get("Patient", params={"family": "a"})
        metadata = riverside.get("metadata")
    assert reply.status_code == status == metadata.status_code
    assert reply.json()["resourceType"] == "OperationOutcome"
    if mode == "http-503":
        assert reply.headers["retry-after"] == "1"
    if mode == "auth-fail":
        assert reply.headers["www-authenticate"].startswith("Basic")
    assert riverside.get("Patient", params={"family": "a"}).status_code == 200  # restored


def test_malformed_json_and_wrong_content_type(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(mode="malformed-json"):
        bad = riverside.get("Patient")
    assert bad.status_code == 200 and bad.headers["content-type"].startswith("application/fhir+json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.content)
    with river_server.faults.override(mode="wrong-content-type"):
        html = riverside.get("Patient")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_reply_is_streamed(river_server: DemoServer, riverside: httpx2.Client, chunked: bool) -> None:
    huge = 512 * 1024 * 1024
    with river_server.faults.override(mode="oversized", oversize_bytes=huge, oversize_chunked=chunked):
        with riverside.stream("GET", "Patient") as reply:
            assert reply.status_code == 200
            assert reply.headers.get("content-length") == (None if chunked else str(huge))
            received = 0
            for piece in reply.iter_raw():
                received += len(piece)
                if received > 2 * 1024 * 1024:
                    break  # a careful client stops here; the server must cope
        assert received > 2 * 1024 * 1024
        river_server.faults.oversize_bytes = 300_000
        whole = riverside.get("Patient")
    assert len(whole.content) == 300_000 and whole.json()["resourceType"] == "Bundle"
    assert riverside.get("metadata").status_code == 200


def test_down_closes_without_a_reply(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(mode="down"), pytest.raises(httpx2.RemoteProtocolError):
        riverside.get("Patient")
    assert riverside.get("Patient").status_code == 200


def test_hang_never_answers(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(mode="hang", hang_s=5), pytest.raises(httpx2.ReadTimeout):
        riverside.get("Patient", timeout=0.3)
    assert riverside.get("Patient").status_code == 200


def test_times_and_match_limit_a_fault(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(mode="http-503", times=2):
        assert [riverside.get("metadata").status_code for _ in range(3)] == [503, 503, 200]
    patient = river_server.population.at(0).local_id
    with river_server.faults.override(mode="http-500", match="/Observation"):
        assert riverside.get("Observation", params={"patient": patient}).status_code == 500
        assert riverside.get("Condition", params={"patient": patient}).status_code == 200


def test_fail_rate_fails_some_requests(river_server: DemoServer, riverside: httpx2.Client) -> None:
    with river_server.faults.override(fail_rate=0.5):
        statuses = [riverside.get("metadata").status_code for _ in range(40)]
    assert 5 < statuses.count(500) < 35 and set(statuses) == {200, 500}


def test_stop_is_prompt_even_with_a_request_hanging() -> None:
    network = DemoNetwork.start(practices=2, patients=20)
    server = network.servers[0]
    server.faults.mode = "hang"
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(httpx2.get(f"{server.base_url}/metadata", timeout=30).status_code)
        except httpx2.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert server.faults.wait_for_hanging(1, timeout=5)
    started = time.monotonic()
    network.stop()
    assert time.monotonic() - started < 1.5
    caller.join(5)
    assert not caller.is_alive() and isinstance(outcome[0], httpx2.HTTPError)
    network.stop()  # idempotent
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{server.base_url}/metadata", timeout=2)


# -- AuditEvent ---------------------------------------------------------------------------------------


def test_audit_events_are_stored_idempotently_and_searchable(demo_network: DemoNetwork,
                                                             riverside: httpx2.Client) -> None:
    patient = demo_network.server("riverside").population.at(9).local_id
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-03-12T10:00:00Z",
             "agent": [{"who": {"display": "Dr Test"}, "requestor": True}],
             "source": {"observer": {"display": "Mosaic"}},
             "entity": [{"what": {"reference": f"Patient/{patient}"}},
                        {"what": {"identifier": {"system": "urn:mosaic:access", "value": "e-123"}}}]}
    headers = {"Content-Type": "application/fhir+json", "If-None-Exist": "identifier=urn:mosaic:access|e-123"}
    first = riverside.post("AuditEvent", content=json.dumps(event), headers=headers)
    again = riverside.post("AuditEvent", content=json.dumps(event), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and first.headers["location"]
    found = riverside.get("AuditEvent", params={"patient": patient}).json()
    assert [r["id"] for r in entries(found)] == [first.json()["id"]]
    assert riverside.get(f"AuditEvent/{first.json()['id']}").status_code == 200
    bad = riverside.post("AuditEvent", content=b"{not json", headers={"Content-Type": "application/fhir+json"})
    assert bad.status_code == 400


# -- logging ------------------------------------------------------------------------------------------


def test_logs_name_the_practice_but_never_the_patient(demo_network: DemoNetwork, riverside: httpx2.Client,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    target = demo_network.server("riverside").population.at(3)
    with caplog.at_level(logging.DEBUG, logger="mosaic.demo"):
        riverside.get("Patient", params={"identifier": f"{NHS_NUMBER_SYSTEM}|{target.nhs_number}"})
        riverside.get("Patient", params={"family": target.family, "birthdate": target.birth_date.isoformat()})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "riverside" in text
    assert target.nhs_number not in text and target.family not in text


# -- Synthea ------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_synthea_patients_are_searchable_and_every_resource_reachable() -> None:
    with DemoNetwork.start(practices=2, patients=10, load_dir=SYNTHEA_DIR) as network:
        assert network.synthea is not None and network.synthea.unresolved == 0
        sources = {}
        for path in SYNTHEA_DIR.glob("*.json"):
            bundle = json.loads(path.read_text(encoding="utf-8"))
            kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
            if "Patient" in kinds:
                sources[bundle["entry"][kinds.index("Patient")]["resource"]["id"]] = kinds
        assert len(network.synthea.patients) == len(sources)
        for practice_id, patient_id in network.synthea.patients:
            server = network.server(practice_id)
            with client_for(network, practice_id) as client:
                patient = client.get(f"Patient/{patient_id}").json()
                name = patient["name"][0]
                search = client.get("Patient", params={"family": name["family"][:5], "given": name["given"][0],
                                                       "birthdate": patient["birthDate"]}).json()
                assert [r["id"] for r in entries(search)] == [patient_id]
                resources = _whole_record(client, server, patient_id)
                expected = [k for k in sources[patient_id] if k not in ("Patient", "Organization", "Practitioner")]
                assert sorted(r["resourceType"] for r in resources if r["resourceType"] in expected) == sorted(expected)
                held = {f"{r['resourceType']}/{r['id']}" for r in resources}
                for resource in resources:
                    for ref in iter_references(resource):
                        target = ref["reference"]
                        assert not target.startswith("urn:uuid:")
                        if target.startswith("#") or target in held:
                            continue
                        assert client.get(target).status_code == 200, target
                        held.add(target)


def _whole_record(client: httpx2.Client, server: DemoServer, patient_id: str) -> list[Json]:
    """$everything where the server declares it, else a search per declared resource type."""
    statement = client.get("metadata").json()
    declared = statement["rest"][0]["resource"]
    patient = next(r for r in declared if r["type"] == "Patient")
    if patient.get("operation"):
        found, _ = follow(client, f"Patient/{patient_id}/$everything")
        return found
    found = [client.get(f"Patient/{patient_id}").json()]
    for resource in declared:
        if resource["type"] not in ("Patient", "AuditEvent"):
            more, _ = follow(client, resource["type"], {"patient": patient_id, "_count": "200"})
            found.extend(more)
    return found


def test_twenty_practices_start_answer_and_stop() -> None:
    with DemoNetwork.start(practices=20, patients=30) as network:
        assert len({p.id for p in network.practices}) == 20
        with httpx2.Client(timeout=5) as client:
            for server in network.servers:
                assert client.get(f"{server.base_url}/metadata").status_code == 200
        network.set_latency(5)
        assert all(s.faults.latency_ms == 5 for s in network.servers)
