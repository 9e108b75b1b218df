"""Issue 13 reviewed as an attacker would (helper G): refusals journaled as denied on every face, nothing of a
practice outside the role shown or exported, and the data-quality badge and mapping check without counts from 1
to 4 or a practice's free text that could name a patient.

The core, the CLI's `run` and the window's LocalitySource run for real, in this process, over a DuckDB store in
tmp_path filled by hand (tests/insight/_activity.py: every count is read off the arguments) and the demo network's
practices; the journal is the real one in this test's MOSAIC_HOME."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from app.core.audit.journal import Journal, default_path
from app.core.audit.model import Action, AuditUser, Outcome
from app.core.policy import PolicyError, load_policy
from app.core.service import MosaicCore
from app.insight.store import InsightStore
from app.insight.store_rows import MappingIssue, MappingUse, QualityRow
from tests.core.test_policy import write_policy
from tests.insight._activity import activity, appointments, slots, utc

LEAD = AuditUser(login="lead", display_name="Locality Lead", role="manager")
GP = AuditUser(login="gp", display_name="Dr Green", role="GP")
NHS_NUMBER = "943 476 5919"


def policy_for(tmp_path: Path, first: str) -> Path:
    """lead: insight for `first` only, no records; gp: records, no insight."""
    return write_policy(tmp_path, f'[roles.lead]\npractices = ["{first}"]\nrecords = false\ninsight = true\n\n'
                                  '[roles.clinician]\npractices = ["*"]\n\n'
                                  '[users.lead]\nrole = "lead"\n\n[users.gp]\nrole = "clinician"\n')


def insight_entries(journal_path: Path | None = None) -> list:
    journal = Journal.open(journal_path or default_path())
    try:
        return [e for e in journal.query() if e.action is Action.INSIGHT]
    finally:
        journal.close()


def filled_store(path: Path, first: str, second: str) -> Path:
    """Two practices in March 2026: `first` with 40 appointments (3 of them with no category) and slots of a
    local type whose text carries an NHS number, `second` with 30."""
    store = InsightStore.open(path)
    try:
        march = utc(2026, 3, 10, 9)
        mine = [*appointments(37, start=march, status="fulfilled"),
                *appointments(3, start=march, status="fulfilled", category=None, prefix="u")]
        typed = [*slots(20, start=march, status="busy", local_type="Diabetic review"),
                 *slots(3, start=march, status="busy", local_type="Diabetic review", category="Planned Clinics"),
                 *slots(2, start=march, status="free", local_type=f"Home visit Mrs Jones {NHS_NUMBER}"),
                 *slots(1, start=march, status="free", local_type=f"Home visit Mrs Jones {NHS_NUMBER}",
                        category="Home Visit")]
        store.apply(activity(first, appts=mine, slot_list=typed))
        store.set_status(first, first, "ok")
        store.apply(activity(second, appts=appointments(30, start=march, status="fulfilled", prefix="b")))
        store.set_status(second, second, "ok")
    finally:
        store.close()
    return path


# --- the window (LocalitySource) ---------------------------------------------------------------------------------

async def test_the_window_journals_a_role_without_insight_as_denied_before_opening_the_store(network,
                                                                                          tmp_path) -> None:
    from app.ui.locality.source import LocalitySource

    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=GP,
                      policy=load_policy(policy_for(tmp_path, network.practices[0].id)), notify=None,
                      health_interval_s=None)
    source = LocalitySource(tmp_path / "never.duckdb")
    try:
        with pytest.raises(PolicyError):
            await source.overview(core)
        with pytest.raises(PolicyError):
            await source.refresh(core)
    finally:
        await source.close()
        await core.close()
    entries = [e for e in journal.query() if e.action is Action.INSIGHT]
    # the window says "This attempt is recorded": it must be
    assert [e.outcome for e in entries] == [Outcome.DENIED, Outcome.DENIED], entries
    assert not (tmp_path / "never.duckdb").exists()


async def test_the_window_journals_a_practice_outside_the_role_as_denied_never_as_shown(network, tmp_path) -> None:
    from app.ui.locality.source import LocalitySource, ViewQuery

    first, second = network.practices[0].id, network.practices[1].id
    journal = Journal.open(tmp_path / "j.sqlite")
    core = MosaicCore(network.practices, journal=journal, user=LEAD, policy=load_policy(policy_for(tmp_path, first)),
                      notify=None, health_interval_s=None)
    source = LocalitySource(filled_store(tmp_path / "s.duckdb", first, second))
    try:
        with pytest.raises(PolicyError):
            await source.load(core, ViewQuery("appointments", "practice", "2026-03", practice=second))
    finally:
        await source.close()
        await core.close()
    [entry] = [e for e in journal.query() if e.action is Action.INSIGHT]
    assert entry.outcome is Outcome.DENIED and entry.details.get("denied") is True
    assert entry.details["practices"] == [second]


async def test_the_window_shows_nothing_of_a_practice_outside_the_role(network, tmp_path) -> None:
    """A shared store (or the user's own from before IT narrowed the role) holds another practice: its name, state,
    list size and data quality stay out of the answer and the overview."""
    from app.ui.locality.source import LocalitySource, ViewQuery

    first, second = network.practices[0].id, network.practices[1].id
    core = MosaicCore(network.practices, journal=Journal.open(tmp_path / "j.sqlite"), user=LEAD,
                      policy=load_policy(policy_for(tmp_path, first)), notify=None, health_interval_s=None)
    source = LocalitySource(filled_store(tmp_path / "s.duckdb", first, second))
    try:
        overview = await source.overview(core)
        answer = await source.load(core, ViewQuery("appointments", "practice", "2026-03"))
    finally:
        await source.close()
        await core.close()
    assert [p.id for p in overview.practices] == [first]
    assert [p.id for p in answer.practices] == [first]
    assert [q.practice_id for q in answer.quality] == [first]
    assert {f.practice_id for f in answer.figures} == {first}


def test_the_badge_never_falls_back_to_practices_outside_its_scope_nor_shows_1_to_4() -> None:
    from app.ui.locality.panels import quality_words

    outside = QualityRow("other", "Other Surgery", "failed", 100, 0.5, 0, 0, 0, 0, 0, ())
    text, _ = quality_words([outside], ["mine"])
    assert "Other Surgery" not in text and "50.0 %" not in text, text
    few = QualityRow("mine", "Mine", "ok", 400, 3 / 400, 0, 0, 0, 0, 0, ())  # 3 appointments with no category
    text, _ = quality_words([few], ["mine"])
    assert "0.8 %" not in text and "fewer than 5" in text, text
    tiny = QualityRow("mine", "Mine", "ok", 3, 0.0, 0, 0, 0, 0, 0, ())  # a total of 3: 0 % of 3 is still a count
    text, _ = quality_words([tiny], ["mine"])
    assert "fewer than 5" in text, text


# --- the CLI, in this process ------------------------------------------------------------------------------------

def cli(network, policy: Path, user: AuditUser, *argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from app.cli.insight import add_parser, run

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["insight", *argv])
    args.config, args.central_url, args.policy, args.acting_user = None, None, load_policy(policy), user
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run(args, lambda _args: network.practices)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def default_store(network, mosaic_home: Path) -> tuple[str, str]:
    from app.insight.location import default_store_file

    first, second = network.practices[0].id, network.practices[1].id
    filled_store(default_store_file(), first, second)
    return first, second


def test_the_cli_journals_a_role_without_insight_as_denied(network, tmp_path, default_store) -> None:
    first, _ = default_store
    status, out, err = cli(network, policy_for(tmp_path, first), GP, "show", "--metric", "appointments")
    assert status == 1 and out == "" and "does not include locality insight" in err
    [entry] = insight_entries()
    assert entry.outcome is Outcome.DENIED and entry.details["insight"] == "show"
    assert entry.details["metric"] == "appointments"


def test_the_cli_journals_a_practice_outside_the_role_as_denied(network, tmp_path, default_store) -> None:
    first, second = default_store
    for command in (("show", "--metric", "appointments", "--practice", second),
                    ("peers", second, "--metric", "dna_rate", "--period", "2026-03")):
        status, out, err = cli(network, policy_for(tmp_path, first), LEAD, *command)
        assert status == 1 and out == "" and "does not include practice" in err, err
    entries = insight_entries()
    assert [(e.details["insight"], e.outcome) for e in entries] == [("peers", Outcome.DENIED),
                                                                    ("show", Outcome.DENIED)]
    assert all(e.details["practices"] == [second] for e in entries)


def test_the_cli_export_never_writes_a_practice_outside_the_role(network, tmp_path, default_store) -> None:
    """The store holds a practice outside the role: the export writes the role's practice alone (the practices
    table, every figure, the locality's sums: 40 appointments in March, never 40 + the other's 30)."""
    import duckdb

    first, second = default_store
    folder = tmp_path / "parquet"
    status, _, err = cli(network, policy_for(tmp_path, first), LEAD, "export", "--parquet", str(folder))
    assert status == 0, err
    con = duckdb.connect()
    try:
        def rows(name: str) -> list[tuple]:
            return con.execute("SELECT * FROM read_parquet(?)", [str(folder / f"{name}.parquet")]).fetchall()

        assert [r[0] for r in rows("practices")] == [first]
        figures = rows("figures")
        assert figures and second not in repr(figures)
        march = [r for r in figures if r[0] == "month" and r[2] == "appointments" and r[3] == "2026-03"]
        assert march and {r[6] for r in march} == {40.0}, march
    finally:
        con.close()
    [entry] = insight_entries()
    assert entry.outcome is Outcome.SUCCESS and entry.details["insight"] == "export"
    assert entry.details["practices"] == [first]


def test_the_cli_export_to_a_folder_it_cannot_write_says_so_in_a_sentence(network, tmp_path, default_store) -> None:
    first, _ = default_store
    taken = tmp_path / "a file"
    taken.write_text("not a folder")
    status, out, err = cli(network, policy_for(tmp_path, first), LEAD, "export", "--parquet", str(taken / "out"))
    assert status == 1 and out == ""
    assert err.startswith("mosaic: the Parquet files could not be written to") and "Traceback" not in err, err


def test_the_cli_quality_shows_no_count_from_1_to_4_and_no_patient_in_a_local_type(network, tmp_path,
                                                                                   default_store) -> None:
    first, _ = default_store
    policy = write_policy(tmp_path, '[roles.lead]\npractices = ["*"]\nrecords = false\ninsight = true\n\n'
                                    '[users.lead]\nrole = "lead"\n')
    status, out, err = cli(network, policy, LEAD, "quality", "--json", "--period", "2026-03")
    assert status == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    mine = next(r for r in rows if r.get("practice") == first)
    assert mine["appointments"] == 40
    assert mine["unmapped_category"] is None and "unmapped_category" in mine["suppressed"]  # 3 of 40
    issues = [r for r in rows if "local_type" in r]
    assert [i["local_type"] for i in issues] == ["Diabetic review"]  # used for 23 slots: a type
    assert {u["slots"] for u in issues[0]["mapped_to"]} == {"20", "<5"}
    assert {"unnamed_local_types": 1} in rows  # the 3-slot text naming a patient: counted, not named
    text = cli(network, policy, LEAD, "quality", "--period", "2026-03")[1]
    for shown in (out, text):
        assert "Jones" not in shown and "5919" not in shown and "4765919" not in shown.replace(" ", "")


# --- the rules themselves ----------------------------------------------------------------------------------------

def test_a_local_type_is_shown_without_digit_runs_and_capped() -> None:
    from app.insight.shown_quality import MAX_TYPE_CHARS, shown_local_type

    assert shown_local_type(f"Review {NHS_NUMBER} today") == "Review [number removed] today"
    assert shown_local_type("Call 07700-900-123") == "Call [number removed]"
    assert shown_local_type("Flu clinic 2026") == "Flu clinic 2026"  # a year is not a run of six
    assert len(shown_local_type("x" * 10_000)) == MAX_TYPE_CHARS


def test_a_share_of_a_tiny_total_is_suppressed_whole() -> None:
    from app.insight.shown_quality import shown_quality

    shown = shown_quality(QualityRow("p", "P", "ok", 3, 1 / 3, 0.0, 0.0, 0.0, 0.0, 2, ()))
    assert shown.appointments is None and shown.unreadable is None
    assert all(value is None for value in shown.shares.values())
    assert set(shown.suppressed) >= {"appointments", "unmapped_category", "unmapped_mode", "unreadable"}


def test_the_mapping_check_names_no_rare_text_and_no_small_count() -> None:
    from app.insight.shown_quality import shown_mapping

    issues = [MappingIssue("Mrs Jones", (MappingUse("a", "Home Visit", 1), MappingUse("a", None, 1))),
              MappingIssue("Flu", (MappingUse("a", "Planned Clinics", 40), MappingUse("b", None, 2)))]
    shown, rare = shown_mapping(issues, ["a", "b"])
    assert rare == 1 and [i.local_type for i in shown] == ["Flu"]
    assert [u.slots for u in shown[0].uses] == ["40", "<5"]
    assert shown_mapping(issues, ["b"]) == ([], 0)  # among the practices shown it is mapped one way


@pytest.mark.parametrize("text", ["9999-12", "2026-01..9999-11", "1000-01..2026-01"])
def test_a_period_out_of_range_is_a_sentence_never_a_traceback(text: str) -> None:
    from app.cli.insight import UsageError, parse_period

    with pytest.raises(UsageError) as raised:  # was: ValueError (year 10000), or a query of ~96,000 months
        parse_period(text)
    assert "--period" in str(raised.value)


def test_a_month_less_its_whole_weeks_never_reveals_a_count_from_1_to_4(tmp_path) -> None:
    """Practice p1: 20 face-to-face appointments a day, video 10 in each of W06-W08 and 2 on 24 February (the
    secret). February's video (32) and W06-W08's (30) are each shown, and differ by 2."""
    from datetime import timedelta

    store = InsightStore.open(tmp_path / "s.duckdb")
    try:
        made = []
        day = utc(2026, 1, 19, 9)
        while day < utc(2026, 3, 9):
            made += appointments(20, start=day, status="fulfilled")
            day += timedelta(days=1)
        for when, n in ((utc(2026, 1, 27, 12), 10), (utc(2026, 2, 3, 12), 10), (utc(2026, 2, 10, 12), 10),
                        (utc(2026, 2, 17, 12), 10), (utc(2026, 2, 24, 12), 2), (utc(2026, 3, 1, 12), 10)):
            made += appointments(n, start=when, status="fulfilled", mode="video", prefix="v")
        store.apply(activity("p1", appts=made))
        store.set_status("p1", "P1", "ok")
        store.apply(activity("p2", appts=appointments(400, start=utc(2026, 2, 2, 9), status="fulfilled", prefix="q")))
        store.set_status("p2", "P2", "ok")

        def video(period: str) -> float | None:
            [shown] = [f for f in store.figures("appointments", "mode", period, practices=["p1"]) if f.group == "video"]
            return shown.value

        month = video("2026-02")
        weeks = [video(f"2026-W0{n}") for n in (6, 7, 8)]
        if month is not None and None not in weeks:
            left = month - sum(w for w in weeks if w is not None)
            assert not 1 <= left <= 4, f"February's video less W06-W08's: {left}"
    finally:
        store.close()


def test_an_export_folder_with_an_apostrophe(tmp_path) -> None:
    store = InsightStore.open(tmp_path / "s.duckdb")
    try:
        written = store.export_parquet(tmp_path / "O'Brien's exports")
    finally:
        store.close()
    assert {p.name for p in written} >= {"figures.parquet", "practices.parquet"}
