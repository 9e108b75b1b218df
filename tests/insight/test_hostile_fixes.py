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


def test_ids_are_kept_as_a_keyed_hash_that_still_matches_on_every_refresh(tmp_path: Path) -> None:
    """An id is stored as the store's keyed hash: never as sent, the same on a later apply (the upsert matches:
    no duplicate) and after the store is opened again."""
    import duckdb

    from tests.insight._activity import activity, appointments, utc

    path = tmp_path / "s.duckdb"
    made = appointments(12, start=utc(2026, 3, 10, 9), status="fulfilled", prefix="9434765919-")
    for status in ("fulfilled", "noshow"):
        store = InsightStore.open(path)
        try:
            store.apply(activity("p1", appts=[type(a)(**{**a.__dict__, "status": status}) for a in made]))
            [figure] = store.figures("dna_rate", "practice", "2026-03")
        finally:
            store.close()
    assert (figure.numerator, figure.denominator) == (12, 12)  # all 12 replaced, none added
    con = duckdb.connect(str(path), read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM appointments").fetchall()]
    finally:
        con.close()
    assert len(ids) == 12 and not any("9434765919" in i for i in ids)
    assert ids == [i for i in ids if len(i) == 32 and int(i, 16) >= 0]


def test_a_store_from_before_ids_were_hashed_is_read_again_never_mixed(tmp_path: Path) -> None:
    """A store whose rows hold ids as sent (no key yet): its rows go, and its practices say to refresh, so an
    incremental refresh never adds hashed rows beside the old ones (every appointment counted twice)."""
    import duckdb

    from tests.insight._activity import activity, appointments, utc

    path = tmp_path / "s.duckdb"
    store = InsightStore.open(path)
    store.apply(activity("p1", appts=appointments(12, start=utc(2026, 3, 10, 9), status="fulfilled")))
    store.set_status("p1", "Practice One", "ok")
    store.close()
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM store_key")  # as a store made before the key was
    con.close()
    store = InsightStore.open(path)
    try:
        [row] = store.practices()
        assert row.status == "failed" and row.error is not None and "refresh" in row.error
        assert store.cursor("p1") is None
        [figure] = store.figures("appointments", "practice", "2026-03")
        assert figure.status == "failed" and figure.value is None
    finally:
        store.close()


def test_a_practices_type_text_is_stored_without_digit_runs_and_capped(tmp_path: Path) -> None:
    from app.insight.store import MAX_STORED_TYPE_CHARS, stored_local_type

    assert stored_local_type("Home visit Mrs Jones 943 476 5919") == "Home visit Mrs Jones [number removed]"
    assert stored_local_type("Clinic 12 slots") == "Clinic 12 slots"
    long = stored_local_type("Diabetic review " + "y" * 10_000 + " 9434765919")
    assert long is not None and len(long) <= MAX_STORED_TYPE_CHARS and "943" not in long
