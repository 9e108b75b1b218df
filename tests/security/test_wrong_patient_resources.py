"""Issue 11, class 3 — another patient's results or notes shown under this one.

A reply may hold the right Patient and still carry resources about someone else: a DiagnosticReport, an
Observation or a consultation's List whose subject is another patient (a second Patient in the bundle, a
contained Patient, a logical reference by NHS number). Both adapters refuse the whole record then: nothing of
it is shown under the patient asked for. The specification's own examples (dangling references, an invalid
NHS number in a List's subject) still read.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from adapters.base import AdapterError
from adapters.fhir_r4.adapter import _about_someone_else
from adapters.gp_connect import GpConnectAdapter
from adapters.gp_connect.mapping import bundle_resources, map_structured_bundle
from tests.adapters.test_gp_connect_adapter import NHS, GpcServer, _practice
from tests.conftest import GPCONNECT_DIR

pytestmark = pytest.mark.shared_data

OTHER_NHS = "9434765919"  # valid, and not the examples' patient
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def _bundle(name: str = "pathology_response1.json") -> dict[str, Any]:
    return json.loads((GPCONNECT_DIR / name).read_text(encoding="utf-8"))


def _first(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for _u, r in bundle_resources(bundle) if r["resourceType"] == kind)


def _other_patient(bundle: dict[str, Any], pid: str = "someone-else") -> dict[str, Any]:
    other = copy.deepcopy(_first(bundle, "Patient"))
    other["id"] = pid
    other["identifier"] = [{"system": NHS_SYSTEM, "value": OTHER_NHS}]
    return other


def _second_patient_in_bundle(bundle: dict[str, Any], kind: str) -> None:
    bundle["entry"].append({"resource": _other_patient(bundle)})
    _first(bundle, kind)["subject"] = {"reference": "Patient/someone-else"}


def _contained_patient(bundle: dict[str, Any], kind: str) -> None:
    target = _first(bundle, kind)
    target["contained"] = [*target.get("contained", []), _other_patient(bundle, "p1")]
    target["subject"] = {"reference": "#p1"}


def _logical_reference(bundle: dict[str, Any], kind: str) -> None:
    _first(bundle, kind)["subject"] = {"identifier": {"system": NHS_SYSTEM, "value": OTHER_NHS}}


VARIANTS = [_second_patient_in_bundle, _contained_patient, _logical_reference]
KINDS = ["DiagnosticReport", "Observation", "List"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
def test_gp_connect_bundle_naming_another_subject_is_flagged(variant, kind):
    bundle = _bundle()
    assert not map_structured_bundle(bundle, "p1", nhs_number_asked=NHS).about_someone_else
    variant(bundle, kind)
    assert map_structured_bundle(bundle, "p1", nhs_number_asked=NHS).about_someone_else


def test_the_specification_examples_are_about_their_own_patient():
    for path in sorted(GPCONNECT_DIR.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert not map_structured_bundle(bundle, "p1").about_someone_else, path.name


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
async def test_gp_connect_adapter_refuses_a_record_with_another_patients_results(variant):
    server = GpcServer()
    adapter = GpConnectAdapter(_practice(server.base), None)
    try:
        bundle = _bundle("consultations_response1.json")
        record = await adapter.fetch_record(NHS)  # as sent, the record reads
        assert record.patient.local_id == NHS
        variant(bundle, "Observation")
        server.reply = (200, bundle)
        with pytest.raises(AdapterError) as caught:
            await adapter.fetch_record(NHS)
        assert caught.value.kind == "bad-reply" and "different patient" in caught.value.message
    finally:
        await adapter.close()
        server.close()


@pytest.mark.parametrize("subject", [
    {"reference": "Patient/other"},
    {"reference": "https://elsewhere.example/fhir/Patient/other/_history/2"},
    {"identifier": {"system": NHS_SYSTEM, "value": OTHER_NHS}},
    {"reference": "#p"},
])
def test_fhir_r4_resource_about_another_patient(subject):
    resource: dict[str, Any] = {"resourceType": "DiagnosticReport", "subject": subject,
                                "contained": [{"resourceType": "Patient", "id": "p",
                                               "identifier": [{"system": NHS_SYSTEM, "value": OTHER_NHS}]}]}
    assert _about_someone_else(resource, "mine", NHS)
    assert not _about_someone_else({"resourceType": "Composition", "subject": {"reference": "Patient/mine"}},
                                   "mine", NHS)
    own = {"resourceType": "Composition", "subject": {"identifier": {"system": NHS_SYSTEM, "value": NHS}}}
    assert not _about_someone_else(own, "mine", NHS)


async def test_gp_connect_refuses_a_record_whose_patient_has_not_the_nhs_number_asked_for():
    """A bundle whose Patient carries no NHS number is nobody in particular: never read as the one asked for."""
    server = GpcServer()
    adapter = GpConnectAdapter(_practice(server.base), None)
    try:
        bundle = _bundle("consultations_response1.json")
        _first(bundle, "Patient")["identifier"] = []
        server.reply = (200, bundle)
        with pytest.raises(AdapterError) as caught:
            await adapter.fetch_record(NHS)
        assert caught.value.kind == "bad-reply"
    finally:
        await adapter.close()
        server.close()
