"""Fixes of helper G's review findings (issue 13) beyond the strict-xfail tests that named them: the warning when
a practice's server clock runs ahead, the TLS refusal naming the insight store's own setting, and the Parquet
export limited to the practices asked for. Real parts: the hostile FHIR server on 127.0.0.1, DuckDB files in
tmp_path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.core.audit.central import CentralStoreError
from app.insight.store import InsightStore
from tests.insight.hostile_fhir import Script, hostile_practice
from tests.insight.test_hostile_server import opened, refresh


async def test_a_server_clock_hours_ahead_is_warned_of_naming_the_practice(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    from tests.insight.hostile_fhir import appointment

    script = Script(resources={"Appointment": [appointment("a1", "2026-03-10T09:00:00+00:00")]},
                    bundle_time="2199-01-01T00:00:00+00:00")
    with hostile_practice(script) as practice:
        async with opened(practice, tmp_path) as (core, store):
            with caplog.at_level(logging.WARNING, logger="mosaic.adapters.fhir_r4.activity"):
                assert (await refresh(core, store)).status == "ok"
            cursor = store.cursor(practice.id)
    warned = [r.getMessage() for r in caplog.records if "ahead" in r.getMessage()]
    assert warned and practice.id in warned[0] and practice.name in warned[0], caplog.text
    assert cursor is not None and cursor.year < 2199


def test_an_insight_store_url_without_tls_names_the_insight_setting() -> None:
    with pytest.raises(CentralStoreError) as refused:
        InsightStore.open("postgresql://mosaic_ws@insight.example.nhs.uk/insight?sslmode=disable")
    message = str(refused.value)
    assert "[insight] store_url" in message and "insight store" in message
    assert "[audit]" not in message and "audit" not in message.replace("insight", "")
