"""Fixtures shared by the security tests (see other_account.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.demo.network import DemoNetwork
from tests.security.other_account import other_account, shared_folder  # noqa: F401


@pytest.fixture(scope="module")
def mixed_network() -> Iterator[DemoNetwork]:
    """Two FHIR R4 practices ($everything, per-type) and one GP Connect practice (tests that do not define
    their own)."""
    network = DemoNetwork.start(practices=3, patients=60, gp_connect=(2,))
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def practices(mixed_network: DemoNetwork, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoNetwork]:
    """The mixed practices with their secrets in this test's environment; faults reset after."""
    from app.core.secrets import env_name

    for practice_id, secret in mixed_network.secrets.items():
        monkeypatch.setenv(env_name(practice_id), secret)
    yield mixed_network
    mixed_network.reset_faults()
