"""Class 20: secret files written into a file another account made first.

The demo's FILE, FILE.env and key files (and any secret file Mosaic writes, through
paths.create_secret_file) are created exclusively, 0600, never following a link: a file another account
made first, or a symlink planted where the file will go, is refused and receives nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.core import paths
from app.demo.network import DemoNetwork
from tests.security.other_account import OtherAccount


@pytest.fixture(scope="module")
def network():
    with DemoNetwork.start(practices=5, patients=20) as net:
        yield net


def sticky_folder(shared_folder: Path) -> Path:
    """A world-writable sticky folder, like /tmp: anyone may create a file in it."""
    folder = shared_folder / "drop"
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


def secret_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("MOSAIC_SECRET_")]


def test_a_file_another_account_made_first_is_refused_and_receives_nothing(
        network: DemoNetwork, other_account: OtherAccount, shared_folder: Path) -> None:
    folder = sticky_folder(shared_folder)
    config = folder / "demo.toml"
    env = folder / "demo.toml.env"
    for planted in (config, env):  # the other account gets there first, readable and writable by itself
        made = other_account.run("sh", "-c", f"umask 000; : > {planted}")
        assert made.returncode == 0, made.stderr
        assert planted.stat().st_uid == other_account.uid
    with pytest.raises(OSError, match="another account"):
        network.write_config(config)
    readable = other_account.run("cat", str(env))
    assert readable.returncode == 0 and "MOSAIC_SECRET_" not in readable.stdout, "a secret reached their file"
    assert "base_url" not in other_account.run("cat", str(config)).stdout


def test_a_symlink_planted_where_the_secrets_go_is_refused(network: DemoNetwork, other_account: OtherAccount,
                                                           shared_folder: Path) -> None:
    folder = sticky_folder(shared_folder)
    target = shared_folder / "theirs.txt"
    made = other_account.run("sh", "-c", f": > {folder}/placeholder")  # proves they can write in the folder
    assert made.returncode == 0, made.stderr
    target.write_text("")
    os.chmod(target, 0o666)
    config = folder / "demo.toml"
    os.symlink(target, config.with_name(config.name + ".env"))
    with pytest.raises(OSError):
        network.write_config(config)
    assert target.read_text() == "", "secrets followed the link"


def test_written_again_by_the_same_user_the_files_are_new_and_private(network: DemoNetwork, tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    network.write_config(config)
    env = config.with_name("demo.toml.env")
    os.chmod(env, 0o644)
    network.write_config(config)  # demo-server run again with the same FILE: our own files are made anew
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o600
    assert secret_lines(env)


def test_create_secret_file_never_reuses_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "secret"
    existing.write_text("old")
    with pytest.raises(paths.PrivateFileError):
        paths.create_secret_file(existing)
    assert existing.read_text() == "old"
