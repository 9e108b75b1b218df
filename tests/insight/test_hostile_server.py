"""A hostile practice server against a real refresh (helper G's review of issue 13): MosaicCore.refresh_insight over
the real FhirR4Adapter and HTTP to tests/insight/hostile_fhir.py on 127.0.0.1, into a DuckDB store in tmp_path.

Each test of a finding (G-H1, G-H2, G-H3, G-P1) was marked xfail(strict=True) until its fix landed (helper H)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import AuditUser
from app.core.model import Practice
from app.core.service import MosaicCore
from app.insight.refresh import PracticeRefresh
from app.insight.store import InsightStore
from tests.insight.hostile_fhir import Script, appointment, hostile_practice, slot

USER = AuditUser(login="lead", display_name="Locality Lead")
MARCH = (date(2026, 3, 1), date(2026, 3, 31))
NHS_NUMBER = "9434765919"


@pytest.fixture
def script() -> Script:
    return Script(resources={"Appointment": [appointment(f"a{i}", "2026-03-10T09:00:00+00:00")
                                             for i in range(10)]})


@pytest.fixture
def practice(script: Script) -> Iterator[Practice]:
    with hostile_practice(script) as served:
        yield served


@asynccontextmanager
async def opened(practice: Practice, tmp_path: Path) -> AsyncIterator[tuple[MosaicCore, InsightStore]]:
    core = MosaicCore([practice], journal=Journal.open(tmp_path / "j.sqlite"), user=USER, policy=None, notify=None,
                      health_interval_s=None)
    store = InsightStore.open(tmp_path / "s.duckdb")
    try:
        yield core, store
    finally:
        store.close()
        await core.close()


async def refresh(core: MosaicCore, store: InsightStore) -> PracticeRefresh:
    report = await core.refresh_insight(store, start=MARCH[0], end=MARCH[1])
    [done] = report.practices
    return done


def appointments_stored(store: InsightStore, practice_id: str) -> float | None:
    [figure] = store.figures("appointments", "practice", "2026-03", practices=[practice_id])
    return figure.value


def every_text(path: Path) -> str:
    """Every text value in every table of the store, read with DuckDB itself (not the store's code)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        found: list[str] = []
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            columns = [c for c, kind in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
                [table]).fetchall() if kind == "VARCHAR"]
            for column in columns:
                found.extend(str(v) for (v,) in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall() if v)
        return "\n".join(found)
    finally:
        con.close()


async def test_the_hostile_server_is_read_as_any_practice(practice: Practice, tmp_path: Path) -> None:
    """The baseline the findings below depart from: ten appointments, read and counted."""
    async with opened(practice, tmp_path) as (core, store):
        done = await refresh(core, store)
        assert done.status == "ok", done.error
        assert appointments_stored(store, practice.id) == 10


async def test_a_bundle_time_in_year_9999_does_not_stop_later_changes_being_read(script: Script, practice: Practice,
                                                                                tmp_path: Path) -> None:
    script.bundle_time = "9999-12-31T00:00:00+00:00"
    async with opened(practice, tmp_path) as (core, store):
        assert (await refresh(core, store)).status == "ok"
        cursor = store.cursor(practice.id)
        assert cursor is not None and cursor <= datetime.now(UTC) + timedelta(minutes=5), cursor
        script.bundle_time = "2026-04-01T00:00:00+00:00"
        later = datetime.now(UTC).isoformat()
        script.resources["Appointment"] += [
            {**appointment(f"n{i}", "2026-03-11T09:00:00+00:00"), "meta": {"lastUpdated": later}} for i in range(6)]
        done = await refresh(core, store)
        assert done.status == "ok" and done.incremental
        assert appointments_stored(store, practice.id) == 16


async def test_one_appointment_in_year_9999_is_counted_unreadable_not_the_practice_failed(
        script: Script, practice: Practice, tmp_path: Path) -> None:
    script.resources["Appointment"] += [appointment("far", "9999-12-31T23:00:00-05:00"),
                                        {**appointment("old", "2026-03-10T09:00:00+00:00"), "created": "0001-01-01"}]
    async with opened(practice, tmp_path) as (core, store):
        done = await refresh(core, store)
        assert done.status == "ok", done.error
        assert done.unreadable == 2 and appointments_stored(store, practice.id) == 10


async def test_a_slot_ending_before_it_starts_is_unreadable(script: Script, practice: Practice,
                                                          tmp_path: Path) -> None:
    script.resources["Slot"] = [slot(f"s{i}", "2026-03-10T09:00:00+00:00", "2026-03-10T09:10:00+00:00")
                                for i in range(10)]
    script.resources["Slot"].append(slot("back", "2026-03-10T09:00:00+00:00", "2020-01-01T00:00:00+00:00"))
    async with opened(practice, tmp_path) as (core, store):
        done = await refresh(core, store)
        assert done.status == "ok" and done.unreadable == 1 and done.slots == 10


async def test_no_nhs_number_from_a_hostile_server_reaches_the_store(script: Script, practice: Practice,
                                                                    tmp_path: Path) -> None:
    typed: dict[str, Any] = {"serviceType": [{"text": f"Home visit Mrs Jones {NHS_NUMBER} " + "x" * 100_000}]}
    script.resources["Slot"] = [slot(f"s{i}", "2026-03-10T09:00:00+00:00", "2026-03-10T09:10:00+00:00", **typed)
                                for i in range(6)]
    script.resources["Appointment"].append(appointment(NHS_NUMBER, "2026-03-10T09:00:00+00:00"))
    async with opened(practice, tmp_path) as (core, store):
        done = await refresh(core, store)
        assert done.status == "ok", done.error
    stored = every_text(tmp_path / "s.duckdb")
    assert NHS_NUMBER not in stored.replace(" ", "")
    assert max(len(line) for line in stored.splitlines()) <= 200
