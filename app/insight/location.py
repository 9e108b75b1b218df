"""Where the insight store lives: the user's own DuckDB file by default, or the locality's PostgreSQL when IT
names one in the machine-wide practice directory (`[insight] store_url`, without a password).

The password is never in a file or on a command line: MOSAIC_SECRET_INSIGHT or the keyring (user `insight`),
added to the URL here, in memory, as the central audit store's is.
"""

from __future__ import annotations

from pathlib import Path

from app.core import paths

INSIGHT_SECRET_ID = "insight"
DUCKDB_NAME = "insight.duckdb"


class InsightLocationError(Exception):
    """The configured store cannot be used; the message says what to change."""


def default_store_file() -> Path:
    """The user's own store: insight.duckdb in their data folder (made private, like the journal's)."""
    return paths.private_dir(paths.user_data_dir()) / DUCKDB_NAME


def store_target(config_file: Path | None = None) -> str | Path:
    """What InsightStore.open takes: the configured PostgreSQL URL (with its password, from the secret store),
    else the user's own DuckDB file. ConfigError for a malformed [insight] table."""
    from app.core.config import load_insight_store_url

    url = load_insight_store_url(config_file)
    return default_store_file() if url is None else with_password(url)


def with_password(url: str) -> str:
    """`url` with the insight store's password added when its login needs one (peer or certificate
    authentication need none, and then no secret is set)."""
    import sqlalchemy as sa

    from app.core.secrets import resolve_secret

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InsightLocationError(f"[insight] store_url is not a database URL ({exc}).") from exc
    if parsed.password:
        raise InsightLocationError("Leave the password out of [insight] store_url; set MOSAIC_SECRET_INSIGHT or run "
                                   "`mosaic credentials set insight`.")
    if parsed.username:
        secret = resolve_secret(INSIGHT_SECRET_ID, "The insight store")
        if secret:
            parsed = parsed.set(password=secret)
    return parsed.render_as_string(hide_password=False)


def describe(target: str | Path) -> str:
    """The store as a message may name it: a file's path, a URL without its password."""
    if isinstance(target, Path):
        return str(target)
    from app.core.schema_types import redacted_url

    return redacted_url(target)
