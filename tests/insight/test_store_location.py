"""Where `mosaic insight` keeps its figures: the user's DuckDB file, or the locality's PostgreSQL named by
[insight] store_url in the machine-wide file (its password never in a file: MOSAIC_SECRET_INSIGHT)."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest

from app.core import paths
from app.core.config import ConfigError
from app.insight.location import DUCKDB_NAME, InsightLocationError, store_target, with_password
from tests.machine import write_machine_file

PG = "postgresql://postgres@127.0.0.1:5432/test"


def test_by_default_the_store_is_the_user_s_own_duckdb_file() -> None:
    target = store_target()
    assert target == paths.user_data_dir() / DUCKDB_NAME


def test_the_machine_file_names_a_postgresql_store_and_the_password_comes_from_the_secret(monkeypatch) -> None:
    write_machine_file(f'[insight]\nstore_url = "{PG}"\n')
    assert store_target() == PG  # trust authentication here: no secret set, none added
    monkeypatch.setenv("MOSAIC_SECRET_INSIGHT", "s3cret")
    assert store_target() == "postgresql://postgres:s3cret@127.0.0.1:5432/test"


@pytest.mark.parametrize("url", ["postgresql://ws:pw@db.example/insight", "postgresql://ws@db.example/i?password=x",
                                 "https://example.org/", "sqlite:///x.db"])
def test_a_url_with_a_password_or_not_postgresql_is_refused(url: str) -> None:
    write_machine_file(f'[insight]\nstore_url = "{url}"\n')
    with pytest.raises(ConfigError) as raised:
        store_target()
    assert "store_url" in str(raised.value)


def test_a_user_file_may_not_name_the_store(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(f'[insight]\nstore_url = "{PG}"\n')
    with pytest.raises(ConfigError) as raised:
        store_target(mine)
    assert "machine-wide" in str(raised.value)


def test_a_password_in_the_url_is_refused_however_it_arrives() -> None:
    with pytest.raises(InsightLocationError):
        with_password("postgresql://ws:pw@db.example/insight")


async def test_a_refresh_into_postgresql_gives_the_duckdb_figures(network, tmp_path: Path) -> None:
    """The same refresh into both engines: the same figures (the locality's shared store)."""
    from app.core.audit.journal import Journal
    from app.core.audit.model import AuditUser
    from app.core.service import MosaicCore
    from app.insight.store import InsightStore

    schema = f"d_test_{uuid.uuid4().hex[:8]}"
    stores = [InsightStore.open(tmp_path / "i.duckdb"), InsightStore.open(PG, schema=schema)]
    today = date.today()
    try:
        for i, store in enumerate(stores):
            core = MosaicCore(network.practices, journal=Journal.open(tmp_path / f"j{i}.sqlite"),
                              user=AuditUser("lead", "Lead"), policy=None, notify=None, health_interval_s=None)
            try:
                await core.refresh_insight(store, start=date(today.year - 1, 1, 1), end=today)
            finally:
                await core.close()
        period = f"{today.year - 1}-01..{today:%Y-%m}"
        duck, pg = ([(f.practice_id, f.status, f.value) for f in s.figures("dna_rate", "practice", period)]
                    for s in stores)
        assert duck == pg and any(status == "ok" for _, status, _ in duck)
    finally:
        for store in stores:
            store.close()
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_config_show_names_the_store_redacted_and_its_secret(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from app.cli import main

    write_machine_file('[insight]\nstore_url = "postgresql://mosaic_ws@insight.example/i?sslmode=verify-full"\n')
    assert main(["config", "show", "--json"]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["insight"]["store_url"]["value"] == "postgresql://mosaic_ws@insight.example/i?..."
    assert any(s["environment"] == "MOSAIC_SECRET_INSIGHT" for s in settings["secrets"])
    assert main(["config", "show"]) == 0
    assert "[insight]" in capsys.readouterr().out
