"""The adapter conformance harness: for every installed adapter, a demo practice to test it against.

`tests/adapters/test_conformance.py` runs one set of contract tests against every adapter found in the
entry-point group `mosaic.adapters`. An adapter is tested through the targets registered for it in
`HARNESS` below: each target is a running demo practice on 127.0.0.1 speaking that adapter's protocol,
with the right credentials, a way to present wrong ones and missing ones, and anything else the
contract tests need to know about that practice. An installed adapter with no target FAILS the suite
(it is never skipped): register a demo practice for it here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from adapters.base import Adapter, adapter_for, available_adapters
from app.core.model import Practice, SectionName
from app.core.nhs_number import check_digit
from app.demo.fhir_api import FhirApi
from app.demo.fhir_server import DemoServer
from app.demo.network import DemoNetwork
from app.demo.population import DemoPatient

#: the practices of the conformance network: FHIR R4 with $everything (Basic), FHIR R4 with one search
#: per resource type (Basic), GP Connect; small populations, so the network starts in well under a second
PRACTICES = 3
PATIENTS = 40
GP_CONNECT_INDEXES = (2,)

Credentials = tuple[Practice, str | None]


def start_network() -> DemoNetwork:
    return DemoNetwork.start(practices=PRACTICES, patients=PATIENTS, gp_connect=GP_CONNECT_INDEXES)


@dataclass
class Target:
    """One demo practice an adapter is tested against."""

    adapter_name: str
    label: str
    network: DemoNetwork
    practice_id: str
    #: (practice, secret) with credentials the practice refuses; the practice may be changed meanwhile
    wrong_credentials: Callable[[Target], AbstractContextManager[Credentials]]
    #: (practice, secret) with a credential missing, so the adapter can tell before sending anything
    missing_credentials: Callable[[Target], Credentials]
    #: a record id no patient at this practice has (in this adapter's local_id form)
    unknown_local_id: Callable[[Target], str]
    #: while inside, the practice answers a request for the first patient's record with the second
    #: patient's details (a server that mixes up patients)
    mixes_up_patients: Callable[[Target, DemoPatient, DemoPatient], AbstractContextManager[None]]
    #: path fragments of requests that serve one section alone (empty: a record is a single request)
    section_paths: Mapping[SectionName, str] = field(default_factory=dict)
    #: for adapters that accept audit events: how many events the practice holds with this identifier
    audit_copies: Callable[[Target, tuple[str, str]], int] | None = None

    @property
    def server(self) -> DemoServer:
        return self.network.server(self.practice_id)

    @property
    def practice(self) -> Practice:
        return next(p for p in self.network.practices if p.id == self.practice_id)

    @property
    def secret(self) -> str | None:
        return self.network.secrets[self.practice_id] if self.practice.auth != "none" else None

    def adapter(self, **changes: object) -> Adapter:
        """A fresh adapter for this practice, found through the entry point as the core finds it."""
        practice = replace(self.practice, **changes) if changes else self.practice  # type: ignore[arg-type]
        return adapter_for(practice, self.secret)

    def patients(self) -> Iterator[DemoPatient]:
        """Patients this practice will show: an NHS number, a name and a birth date; not dissenting."""
        gpc = self.server.gpconnect
        for patient in self.server.population:
            if not (patient.nhs_number and patient.family and patient.given and patient.birth_date):
                continue
            if gpc is not None and patient.nhs_number in gpc.dissenting:
                continue
            yield patient

    def patient(self) -> DemoPatient:
        return next(self.patients())


def unknown_nhs_number(network: DemoNetwork) -> str:
    """A valid (Modulus 11) NHS number that no demo practice holds."""
    for stem in range(999_000_000, 999_999_999):
        digit = check_digit(str(stem))
        if digit is None:
            continue
        number = f"{stem}{digit}"
        if all(s.population.by_nhs_number(number) is None for s in network.servers):
            return number
    raise AssertionError("no free NHS number")


# --- FHIR R4 ---------------------------------------------------------------------------------------------

@contextmanager
def _fhir_wrong_secret(target: Target) -> Iterator[Credentials]:
    yield target.practice, "not-the-secret"


@contextmanager
def _fhir_mixes_up(target: Target, asked: DemoPatient, other: DemoPatient) -> Iterator[None]:
    """Patient/{asked} and $everything for `asked` carry `other`'s Patient resource."""
    population = target.server.population
    real = population.patient_resource

    def swapped(patient: DemoPatient) -> dict[str, Any]:
        return real(other if patient.local_id == asked.local_id else patient)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(population, "patient_resource", swapped)
        yield


def _fhir_audit_copies(target: Target, identifier: tuple[str, str]) -> int:
    system, value = identifier
    return len(target.server.audit.search(identifier=f"{system}|{value}"))


def _fhir(everything: bool) -> Callable[[DemoNetwork], Target]:
    def build(network: DemoNetwork) -> Target:
        server = next(s for s in network.servers
                      if isinstance(s.api, FhirApi) and s.api.supports_everything is everything)
        return Target(
            "fhir-r4", "everything" if everything else "per-type", network, server.spec.id,
            wrong_credentials=_fhir_wrong_secret,
            missing_credentials=lambda t: (t.practice, None),
            unknown_local_id=lambda t: "no-such-patient",
            mixes_up_patients=_fhir_mixes_up,
            # with $everything a record is one request; otherwise each section has searches of its own
            section_paths={} if everything else {SectionName.OBSERVATIONS: "/fhir/Observation",
                                                 SectionName.MEDICATIONS: "/fhir/MedicationRequest"},
            audit_copies=_fhir_audit_copies,
        )
    return build


# --- GP Connect ------------------------------------------------------------------------------------------

REFUSED_ODS = "Y99998"


@contextmanager
def _gpc_refused_organisation(target: Target) -> Iterator[Credentials]:
    """GP Connect has no secret: the consumer is known by its ASID and organisation. Present an
    organisation the practice has no sharing agreement with."""
    api = target.server.gpconnect
    assert api is not None
    api.refused_organisations.add(REFUSED_ODS)
    try:
        yield replace(target.practice, consumer_ods=REFUSED_ODS), None
    finally:
        api.refused_organisations.discard(REFUSED_ODS)


@contextmanager
def _gpc_mixes_up(target: Target, asked: DemoPatient, other: DemoPatient) -> Iterator[None]:
    """A structured record request for `asked`'s NHS number is answered with `other`'s record."""
    population = target.server.population
    real = population.by_nhs_number

    def swapped(number: str) -> DemoPatient | None:
        return other if number == asked.nhs_number else real(number)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(population, "by_nhs_number", swapped)
        yield


def _gp_connect(network: DemoNetwork) -> Target:
    server = next(s for s in network.servers if s.gpconnect is not None)
    return Target(
        "gp-connect", "structured", network, server.spec.id,
        wrong_credentials=_gpc_refused_organisation,
        missing_credentials=lambda t: (replace(t.practice, consumer_asid=None), None),  # Mosaic's own ASID
        unknown_local_id=lambda t: unknown_nhs_number(t.network),  # a GP Connect local_id is the NHS number
        mixes_up_patients=_gpc_mixes_up,
    )


#: adapter entry-point name -> target label -> how to build the target from the conformance network
HARNESS: dict[str, dict[str, Callable[[DemoNetwork], Target]]] = {
    "fhir-r4": {"everything": _fhir(True), "per-type": _fhir(False)},
    "gp-connect": {"structured": _gp_connect},
}


def missing_message(name: str) -> str:
    cls = available_adapters().get(name)
    where = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else "not installed"
    return (f"Adapter '{name}' ({where}) is installed (entry-point group mosaic.adapters) but has no demo "
            "server registered in the conformance harness, so the adapter contract cannot be checked. "
            "Register one in tests/adapters/conformance.py HARNESS: a demo practice on 127.0.0.1 that speaks "
            "its protocol, with its right, wrong and missing credentials.")


def target_keys(installed: Iterable[str] | None = None) -> list[tuple[str, str | None]]:
    """(adapter name, target label) for every installed adapter; label None when none is registered."""
    names = sorted(available_adapters() if installed is None else installed)
    keys: list[tuple[str, str | None]] = []
    for name in names:
        labels = sorted(HARNESS.get(name, {}))
        keys += [(name, label) for label in labels] or [(name, None)]
    return keys


def build_target(network: DemoNetwork, name: str, label: str | None) -> Target:
    """The target for (name, label); fails the test, saying what to do, for an unregistered adapter."""
    builders = HARNESS.get(name)
    if not builders or label not in builders:
        pytest.fail(missing_message(name), pytrace=False)
    return builders[label](network)


def key_id(key: tuple[str, str | None]) -> str:
    name, label = key
    return f"{name}-{label}" if label else f"{name}-UNREGISTERED"


__all__ = ["HARNESS", "Target", "build_target", "key_id", "missing_message", "start_network", "target_keys",
           "unknown_nhs_number"]
