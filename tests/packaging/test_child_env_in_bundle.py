"""Inside the bundle, a child process (the sign-in browser) gets the user's library path, not the bundle's."""

from __future__ import annotations

import sys

import pytest

from app.core import child_process


def test_a_child_of_the_bundle_gets_the_users_library_path_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    env = child_process.child_env({"LD_LIBRARY_PATH": "/opt/mosaic/_internal", "LD_LIBRARY_PATH_ORIG": "/home/u/lib",
                                   "PATH": "/usr/bin"})
    assert env == {"LD_LIBRARY_PATH": "/home/u/lib", "PATH": "/usr/bin"}
    assert "LD_LIBRARY_PATH" not in child_process.child_env({"LD_LIBRARY_PATH": "/opt/mosaic/_internal"})


def test_outside_the_bundle_the_library_path_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert child_process.child_env({"LD_LIBRARY_PATH": "/x"}) == {"LD_LIBRARY_PATH": "/x"}
