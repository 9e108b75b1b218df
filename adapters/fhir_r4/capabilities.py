"""What a FHIR server's CapabilityStatement tells the adapter: version, software, what it supports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.base import AdapterError
from app.core.model import Practice


@dataclass(frozen=True)
class Capabilities:
    fhir_version: str
    software_name: str | None = None
    software_version: str | None = None
    supports_everything: bool = False
    #: resource types the server declares; None when it declares none (then assume all are there)
    resource_types: frozenset[str] | None = None
    #: searchInclude values per resource type, e.g. {"MedicationRequest": {"MedicationRequest:medication"}}
    includes: dict[str, frozenset[str]] = field(default_factory=dict)

    def supports(self, resource_type: str) -> bool:
        return self.resource_types is None or resource_type in self.resource_types

    @property
    def software(self) -> str | None:
        return " ".join(p for p in (self.software_name, self.software_version) if p) or None


def parse_capabilities(practice: Practice, data: Any) -> Capabilities:
    """Check the reply is an R4 (4.0.x) CapabilityStatement and read what Mosaic needs from it."""
    if not isinstance(data, dict):
        raise AdapterError(f"{practice.name}: the server's description (/metadata) is not a FHIR resource. "
                           "Check the base URL in the practice directory.", "bad-reply")
    kind = data.get("resourceType")
    if kind != "CapabilityStatement":
        got = f"a {kind}" if isinstance(kind, str) else "something that is not a FHIR resource"
        older = " (that is what FHIR DSTU2 servers send)" if kind == "Conformance" else ""
        raise AdapterError(f"{practice.name}: /metadata returned {got}{older} instead of an R4 "
                           "CapabilityStatement. Check the base URL and the adapter chosen for this practice.",
                           "unsupported")
    version = data.get("fhirVersion")
    if not isinstance(version, str) or not version.startswith("4.0."):
        shown = version if isinstance(version, str) else "no"
        raise AdapterError(f"{practice.name} speaks FHIR version {shown}, but the fhir-r4 adapter needs FHIR R4 "
                           "(4.0.x). Check the base URL, or choose the adapter for that version.",
                           "unsupported")
    software = raw if isinstance(raw := data.get("software"), dict) else {}
    types: set[str] = set()
    includes: dict[str, frozenset[str]] = {}
    everything = False
    declared_any = False
    for rest in _dicts(data.get("rest")):
        if rest.get("mode", "server") != "server":
            continue
        for resource in _dicts(rest.get("resource")):
            rtype = resource.get("type")
            if not isinstance(rtype, str):
                continue
            declared_any = True
            types.add(rtype)
            includes[rtype] = frozenset(i for i in resource.get("searchInclude") or [] if isinstance(i, str))
            if rtype == "Patient" and any(_is_everything(op) for op in _dicts(resource.get("operation"))):
                everything = True
        if any(_is_everything(op, by_name=False) for op in _dicts(rest.get("operation"))):
            everything = True
    return Capabilities(
        fhir_version=version,
        software_name=_text(software.get("name")),
        software_version=_text(software.get("version")),
        supports_everything=everything,
        resource_types=frozenset(types) if declared_any else None,
        includes=includes,
    )


def _is_everything(op: dict[str, Any], *, by_name: bool = True) -> bool:
    """Patient $everything: by its canonical definition, or (on the Patient resource) by its name."""
    definition = op.get("definition")
    if isinstance(definition, dict):  # STU3 wrote definition as a Reference
        definition = definition.get("reference")
    if isinstance(definition, str) and definition.rstrip("/").endswith("Patient-everything"):
        return True
    name = op.get("name")
    return by_name and isinstance(name, str) and name.lstrip("$") == "everything"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
