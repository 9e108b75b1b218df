"""Refreshing the insight store from real demo practices over loopback (app/insight/refresh.py): every practice
read at once through the core's sessions, GP Connect practices "not provided" (never zero), a practice that fails
named with the reason while its earlier figures and the others' stand, and every refresh journaled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from app.core.audit.journal import Journal
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.secrets import env_name
from app.core.service import MosaicCore
from app.demo.network import DemoNetwork
from app.demo.sizes import gp_connect_indexes
from app.insight.refresh import FAILED, NOT_PROVIDED, OK, PracticeRefresh

InsightStore = pytest.importorskip("app.insight.store").InsightStore

USER = AuditUser(login="lead", display_name="Locality Lead")


@pytest.fixture(scope="module")
def books() -> Iterator[DemoNetwork]:
    """Five demo practices (two GP Connect) publishing their appointment books."""
    network = DemoNetwork.start(practices=5, patients=150, gp_connect=gp_connect_indexes(5))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def practices(books: DemoNetwork, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoNetwork]:
    for practice_id, secret in books.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    yield books
    books.reset_faults()


def period() -> tuple[date, date]:
    """The demo's two years of books, ending with this month."""
    today = date.today()
    return date(today.year - 2, today.month, 1), today


def fhir_ids(network: DemoNetwork) -> list[str]:
    return [p.id for i, p in enumerate(network.practices) if i not in gp_connect_indexes(len(network.practices))]


def gpc_ids(network: DemoNetwork) -> list[str]:
    return [p.id for i, p in enumerate(network.practices) if i in gp_connect_indexes(len(network.practices))]


async def refreshed(network: DemoNetwork, tmp_path: Path, store, **options) -> tuple[list[PracticeRefresh], object]:
    journal = Journal.open(tmp_path / "journal.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=USER, policy=None, notify=None,
                      health_interval_s=None)
    heard: list[PracticeRefresh] = []
    start, end = period()
    try:
        report = await core.refresh_insight(store, start=start, end=end, on_progress=heard.append, **options)
    finally:
        await core.close()
        journal.close()
    return heard, report


def appointments_by_practice(store) -> dict[str | None, float | None]:
    start, end = period()
    text = f"{start:%Y-%m}..{end:%Y-%m}"
    return {f.practice_id: f.value for f in store.figures("appointments", "practice", text) if f.status == OK}


async def test_every_practice_is_read_and_gp_connect_is_not_provided(practices, tmp_path: Path) -> None:
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        heard, report = await refreshed(practices, tmp_path, store)
        statuses = {p.practice_id: p.status for p in report.practices}
        assert {pid: statuses[pid] for pid in fhir_ids(practices)} == {pid: OK for pid in fhir_ids(practices)}
        assert {pid: statuses[pid] for pid in gpc_ids(practices)} == {pid: NOT_PROVIDED for pid in gpc_ids(practices)}
        assert {p.practice_id for p in heard} == set(statuses)  # on_progress heard every practice
        assert all(p.appointments > 0 and p.slots > 0 for p in report.practices if p.status == OK)
        names = {p.id: p.name for p in practices.practices}
        for pid in gpc_ids(practices):  # never a zero: no figure, status "not provided", the reason naming it
            [row] = [r for r in store.practices() if r.id == pid]
            assert row.status == NOT_PROVIDED and "not provided" in (row.error or "") and names[pid] in row.error
        start, end = period()
        shown = store.figures("appointments", "practice", f"{start:%Y-%m}..{end:%Y-%m}")
        for figure in shown:
            if figure.practice_id in gpc_ids(practices):
                assert figure.status == NOT_PROVIDED and figure.value is None
    finally:
        store.close()
    entries = [e for e in Journal.open(tmp_path / "journal.sqlite").query() if e.action is Action.INSIGHT]
    assert [e.details["insight"] for e in entries] == ["refresh", "refresh"]  # before the requests, and the outcome
    outcome, before = entries
    assert before.recorded_at <= outcome.recorded_at and "outcomes" not in before.details
    assert outcome.details["outcomes"] == {p.practice_id: p.status for p in report.practices}


async def test_a_practice_failing_mid_refresh_is_named_and_every_figure_before_stands(practices,
                                                                                     tmp_path: Path) -> None:
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        _, first = await refreshed(practices, tmp_path, store, full=True)
        assert not first.failed
        before = appointments_by_practice(store)
        broken = practices.practices[0]
        server = practices.server(broken.id)
        # its metadata, schedules and slot pages are answered; every appointment page fails, mid-read
        with server.faults.override(mode="http-500", match="Appointment"):
            _, second = await refreshed(practices, tmp_path, store)
        assert server.faults.counts["http-500"] >= 1
        [failed] = second.failed
        assert failed.practice_id == broken.id and broken.name in (failed.error or "")
        assert {p.practice_id for p in second.practices if p.status == OK} == set(fhir_ids(practices)) - {broken.id}
        others = {pid: value for pid, value in before.items() if pid != broken.id}
        assert appointments_by_practice(store) == others  # the others' figures stand, unchanged
        start, end = period()
        [shown] = [f for f in store.figures("appointments", "practice", f"{start:%Y-%m}..{end:%Y-%m}")
                   if f.practice_id == broken.id]
        assert shown.status == FAILED and shown.value is None and broken.name in (shown.error or "")  # named
        _, third = await refreshed(practices, tmp_path, store)  # the practice back: only what changed is read
        assert not third.failed
        assert appointments_by_practice(store) == before  # nothing of its earlier figures was lost or half-applied
    finally:
        store.close()
    outcomes = [e for e in Journal.open(tmp_path / "journal.sqlite").query() if e.action is Action.INSIGHT
                and "outcomes" in e.details]
    assert outcomes[1].outcome is Outcome.FAILURE and broken.name in (outcomes[1].outcome_detail or "")
    assert outcomes[1].details["outcomes"][broken.id] == FAILED


async def test_a_second_refresh_reads_only_what_changed(practices, tmp_path: Path) -> None:
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        _, first = await refreshed(practices, tmp_path, store)
        _, second = await refreshed(practices, tmp_path, store)
        for done in second.practices:
            if done.status == OK:
                assert done.incremental
                assert done.appointments < next(p.appointments for p in first.practices
                                                if p.practice_id == done.practice_id)
    finally:
        store.close()


async def test_a_refresh_with_the_period_backwards_is_refused_before_anything(practices, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(practices.practices, journal=journal, user=USER, policy=None, notify=None,
                      health_interval_s=None)
    try:
        with pytest.raises(ValueError, match="ends"):
            await core.refresh_insight(object(), start=date(2026, 3, 1), end=date(2026, 1, 1))  # type: ignore[arg-type]
        assert not [e for e in journal.query() if e.action is Action.INSIGHT]  # nothing asked, nothing journaled
    finally:
        await core.close()


async def test_a_refresh_makes_every_protected_table_ahead_for_any_later_process(practices, tmp_path: Path) -> None:
    store = InsightStore.open(tmp_path / "insight.duckdb")
    try:
        await refreshed(practices, tmp_path, store)
        shown = appointments_by_practice(store)
    finally:
        store.close()
    start, end = period()
    later = InsightStore.open(tmp_path / "insight.duckdb")  # the CLI's `insight show`, or the window opened later
    try:
        assert later.prepare(f"{start:%Y-%m}..{end:%Y-%m}") == 0  # nothing left to work out on the spot
        assert appointments_by_practice(later) == shown and shown
    finally:
        later.close()
