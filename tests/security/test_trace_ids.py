"""Issue 10, class 10 — trace ids cross.

Each GP Connect request's Ssp-TraceID travels with its own answer (the record, the search's matches, the
error) and never through shared adapter state, so records opened and patients looked up at the same
moment are each journaled with the id the practice's own audit knows that request by. Checked against
the demo GP Connect practice's own trail (which keeps, per trace id, a hash of the NHS number asked for).
"""

from __future__ import annotations

import asyncio

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.service import MosaicCore
from app.demo.population import hash_seed

USER = AuditUser(login="jbloggs", display_name="Dr Jo Bloggs", role="clinician")
AT_ONCE = 6


def asked_for(server, trace_id: str | None) -> str | None:
    """The hash of the NHS number the practice was asked for in the request with this trace id."""
    assert trace_id, "the journal entry carries no trace id"
    trace = server.gpconnect.trace(trace_id)
    assert trace is not None, f"the practice never saw trace id {trace_id}"
    return trace.nhs_number_hash


def number_hash(nhs_number: str) -> str:
    return f"{hash_seed('trace', nhs_number):016x}"


async def test_concurrent_gp_connect_requests_journal_their_own_trace_ids(gpc_network, tmp_path, monkeypatch):
    from app.core.secrets import env_name

    for practice_id, secret in gpc_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    server = gpc_network.servers[1]
    assert server.gpconnect is not None
    patients = [p for p in server.population if p.nhs_number][:AT_ONCE]
    missing = "9434765870"  # valid, registered nowhere: a search that finds nobody still has its own trace id
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(gpc_network.practices, journal=journal, user=USER, policy=None, notify=None)
    try:
        await core.sign_in()
        # every request is in flight while the others are sent: replies come 300 ms after each request
        with server.faults.override(latency_ms=300):
            found = await asyncio.gather(*(core.resolve_patient(server.spec.id, p.nhs_number) for p in patients),
                                         core.resolve_patient(server.spec.id, missing), return_exceptions=True)
            assert [type(f).__name__ for f in found[-1:]] == ["PatientNotFound"]
            records = await asyncio.gather(*(core.open_record(server.spec.id, p.nhs_number) for p in patients))
    finally:
        await core.close()
    assert [r.patient.nhs_number for r in records] == [p.nhs_number for p in patients]
    reads = journal.query(practice_id=server.spec.id, actions=[Action.READ])
    searches = journal.query(practice_id=server.spec.id, actions=[Action.SEARCH])
    assert len(reads) == AT_ONCE and len(searches) == AT_ONCE + 1
    for entry in [*reads, *searches]:
        assert entry.outcome is Outcome.SUCCESS
        assert asked_for(server, entry.details.get("trace_id")) == number_hash(entry.patient_nhs_number), \
            f"{entry.action} of {entry.patient_nhs_number} journaled another request's trace id"
    assert len({e.details["trace_id"] for e in [*reads, *searches]}) == 2 * AT_ONCE + 1


def test_the_adapter_keeps_no_latest_trace_id() -> None:
    """No shared channel left to cross: the adapter has no `last_trace_id` for anyone to read."""
    from adapters.gp_connect.adapter import GpConnectAdapter

    assert not hasattr(GpConnectAdapter(_practice(), None), "last_trace_id")


def _practice():
    from app.core.model import Practice

    return Practice(id="p", name="P", ods_code="A1", adapter="gp-connect", base_url="http://127.0.0.1:1/gpc")
