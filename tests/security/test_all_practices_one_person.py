"""Issue 11, class 3: one timeline never mixes two people. Whatever the record check in open_record did (an
adapter or core path that let another patient through), a record whose NHS number is not the one asked for is
left out of every-practice view: its practice is named as having answered with a different patient."""

from __future__ import annotations

import dataclasses

from tests.core.test_all_practices import core_for, shared


async def test_a_record_of_another_nhs_number_never_joins_the_timeline(network, tmp_path, monkeypatch) -> None:
    number, first, second = shared(network)
    other = next(p.nhs_number for p in network.server(second[0]).population
                 if p.nhs_number and p.nhs_number != number)
    core, _ = await core_for(network, tmp_path)
    real_open = core.open_record

    async def lying(practice_id: str, local_id: str, **kw):
        record = await real_open(practice_id, local_id, **kw)
        if practice_id != second[0]:
            return record
        return dataclasses.replace(record, patient=dataclasses.replace(record.patient, nhs_number=other))

    monkeypatch.setattr(core, "open_record", lying)
    try:
        opened = await core.open_all_practices(number)
    finally:
        await core.close()
    statuses = {o.practice.id: o.status for o in opened.opened}
    assert statuses == {first[0]: "ok", second[0]: "failed"}
    failed = next(o for o in opened.opened if o.practice.id == second[0])
    assert failed.record is None and "different patient" in (failed.why or "")
    assert {r.patient.nhs_number for _, r in opened.records} == {number}
    timeline = opened.timeline()
    assert timeline.items and {item.practice.id for item in timeline.items} == {first[0]}
