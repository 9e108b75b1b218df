"""The demo journals in a folder of its own, keyed through the environment: it runs where the machine has no
OS keyring, and its fictional patients never enter the user's real audit trail."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.core.audit.keys import ENV_KEY
from app.demo.network import DemoNetwork
from app.demo.session import HOME_VARIABLE, demo_files


def test_demo_files_are_private_fresh_and_keyed() -> None:
    first, second = demo_files(), demo_files()
    assert first[HOME_VARIABLE] != second[HOME_VARIABLE] and first[ENV_KEY] != second[ENV_KEY]
    folder = Path(first[HOME_VARIABLE])
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len(bytes.fromhex(first[ENV_KEY])) == 32


def test_a_script_reading_file_env_journals_in_the_demo_folder_without_a_keyring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `set -a; . FILE.env` gives a script: the practices' secrets, the demo's folder and journal key.
    With no OS keyring at all, a search is journaled there, keyed with that key, and the journal verifies."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with DemoNetwork.start(practices=1, patients=5) as network:
            config = network.write_config(tmp_path / "demo.toml")
            lines = (tmp_path / "demo.toml.env").read_text().splitlines()
            env = dict(line.split("=", 1) for line in lines)
            assert env[HOME_VARIABLE] != os.environ.get(HOME_VARIABLE)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            import asyncio

            from app.core.config import load_directory
            from app.core.query import parse_query
            from app.core.service import MosaicCore

            async def search() -> None:
                core = MosaicCore(load_directory(config))
                try:
                    await core.sign_in()
                    outcome = await core.search(parse_query(next(iter(network.servers[0].population)).family))
                    assert not outcome.failures
                finally:
                    await core.close()

            asyncio.run(search())
            journal = Path(env[HOME_VARIABLE]) / "data" / "journal.sqlite"
            assert journal.is_file(), "the search was journaled in the demo's own folder"
            from app.core.audit.journal import Journal

            opened = Journal.open(journal)
            try:
                result = opened.verify()
                assert result.ok and result.keyed_from is not None, result
            finally:
                opened.close()
    finally:
        keyring.set_keyring(previous)
