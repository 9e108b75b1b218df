"""FHIR R4 adapter: practices whose clinical system offers a FHIR R4 REST API."""

from adapters.fhir_r4.adapter import FhirR4Adapter

__all__ = ["FhirR4Adapter"]
