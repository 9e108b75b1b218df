"""GP Connect Access Record: Structured (FHIR STU3) — EMIS Web and TPP SystmOne practices."""

from adapters.gp_connect.adapter import GpConnectAdapter

__all__ = ["GpConnectAdapter"]
