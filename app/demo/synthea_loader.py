"""Load Synthea FHIR R4 transaction bundles into the demo practices.

The information bundles (hospitalInformation*, practitionerInformation*: Organizations and
Practitioners) load first, into every practice, since anyone's record may point at them. Patient
bundles are then dealt round-robin across the practices. `urn:uuid:` references, and conditional
references such as `Organization?identifier=sys|val`, become server references (`Type/id`);
resources are otherwise served exactly as Synthea wrote them.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from app.demo.fhir_json import iter_references
from app.demo.population import Population

log = logging.getLogger("mosaic.demo.synthea")
Resource = dict[str, Any]
_INFORMATION_PREFIXES = ("hospitalInformation", "practitionerInformation")
#: resource types that belong to no one patient's record
_SHARED_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Location"})


@dataclass
class LoadReport:
    patients: list[tuple[str, str]] = field(default_factory=list)  # (practice id, patient id)
    resources: int = 0
    unresolved: int = 0  # urn:uuid references that pointed at nothing loaded


class _Resolver:
    """Maps bundle fullUrls and identifiers to `Type/id` across everything loaded so far."""

    def __init__(self) -> None:
        self.by_full_url: dict[str, str] = {}
        self.by_identifier: dict[tuple[str, str, str], str] = {}  # (type, system, value) -> Type/id

    def register(self, entry: Resource, resource: Resource) -> None:
        target = f"{resource['resourceType']}/{resource['id']}"
        if isinstance(entry.get("fullUrl"), str):
            self.by_full_url[entry["fullUrl"]] = target
        for ident in resource.get("identifier") or []:
            if isinstance(ident, dict) and ident.get("value"):
                key = (resource["resourceType"], str(ident.get("system") or ""), str(ident["value"]))
                self.by_identifier[key] = target

    def resolve(self, reference: str) -> str | None:
        if reference in self.by_full_url:
            return self.by_full_url[reference]
        rtype, sep, query = reference.partition("?")
        if sep:
            params = dict(parse_qsl(query))
            system, _, value = params.get("identifier", "").rpartition("|")
            return self.by_identifier.get((rtype, system, value))
        return None


def load_synthea(directory: Path | str, populations: Sequence[Population]) -> LoadReport:
    """Load every *.json bundle in `directory` into `populations` (information bundles first)."""
    if not populations:
        raise ValueError("no practices to load Synthea patients into")
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no Synthea bundles (*.json) in {directory}")
    info = [f for f in files if f.name.startswith(_INFORMATION_PREFIXES)]
    people = [f for f in files if f not in info]
    resolver = _Resolver()
    report = LoadReport()
    for path in info:
        resources = _prepare(_read_bundle(path), resolver, report)
        for pop in populations:
            pop.add_reference_resources(resources)
    for n, path in enumerate(people):
        resources = _prepare(_read_bundle(path), resolver, report)
        patients = [r for r in resources if r["resourceType"] == "Patient"]
        if len(patients) != 1:
            log.warning("skipped %s: it holds %d Patient resources, not one", path.name, len(patients))
            continue
        pop = populations[n % len(populations)]
        shared = [r for r in resources if r["resourceType"] in _SHARED_TYPES]
        record = [r for r in resources if r["resourceType"] not in _SHARED_TYPES and r is not patients[0]]
        pop.add_reference_resources(shared)
        patient = pop.add_loaded_patient(patients[0], record)
        report.patients.append((pop.practice_id, patient.local_id))
    log.info("loaded %d Synthea patients (%d resources) into %d practices", len(report.patients),
             report.resources, len(populations))
    return report


def _read_bundle(path: Path) -> Resource:
    with path.open(encoding="utf-8") as handle:
        bundle = json.load(handle)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ValueError(f"{path.name} is not a FHIR Bundle")
    return bundle


def _prepare(bundle: Resource, resolver: _Resolver, report: LoadReport) -> list[Resource]:
    """The bundle's resources with ids settled and references resolved (copies; the bundle is untouched)."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    resources: list[Resource] = []
    for entry in entries:
        resource = copy.deepcopy(entry["resource"])
        rtype, rid = _type_and_id(entry, resource)
        resource["resourceType"], resource["id"] = rtype, rid
        resolver.register(entry, resource)
        resources.append(resource)
    for resource in resources:
        for ref in iter_references(resource):
            value = ref["reference"]
            if value.startswith("#"):
                continue  # contained resource
            target = resolver.resolve(value)
            if target is not None:
                ref["reference"] = target
            elif value.startswith("urn:uuid:") or "?" in value:
                report.unresolved += 1
    report.resources += len(resources)
    return resources


def _type_and_id(entry: Resource, resource: Resource) -> tuple[str, str]:
    """From the resource, else from request.url (`PUT Type/id`, `POST Type`), else the fullUrl."""
    raw_request = entry.get("request")
    request: Resource = raw_request if isinstance(raw_request, dict) else {}
    url = str(request.get("url") or "").split("?")[0]
    url_type, _, url_id = url.partition("/")
    rtype = resource.get("resourceType") or url_type
    rid = resource.get("id") or (url_id if request.get("method") == "PUT" else "")
    if not rid:
        full = str(entry.get("fullUrl") or "")
        rid = full.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    if not rtype or not rid:
        raise ValueError("a bundle entry has no resource type or id")
    return str(rtype), str(rid)
