"""The example machine files the .deb ships (/usr/share/doc/mosaic/examples/) load as IT would deploy them."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.core.config import load_directory, load_gp_connect_settings, load_identity_settings
from app.core.policy import load_policy
from tests.machine import write_machine_file
from tests.packaging.conftest import REPO

EXAMPLES = REPO / "packaging" / "examples"


def test_the_example_practices_and_policy_load(machine_dir: Path) -> None:
    """Copied into the machine folder (where /etc/mosaic would be), with their /etc/mosaic paths pointing there."""
    text = (EXAMPLES / "practices.toml").read_text(encoding="utf-8").replace("/etc/mosaic/", f"{machine_dir}/")
    write_machine_file(text, machine_dir)
    policy = machine_dir / "policy.toml"
    shutil.copy(EXAMPLES / "policy.toml", policy)
    policy.chmod(0o644)

    practices = load_directory()
    assert [(p.id, p.adapter, p.auth) for p in practices] == [
        ("riverside", "fhir-r4", "basic"), ("oakwood", "gp-connect", "none"),
        ("millbrook", "fhir-r4", "private-key-jwt")]
    assert load_identity_settings().configured
    assert load_gp_connect_settings().asid == "918999100001"
    loaded = load_policy()
    assert loaded is not None
    assert set(loaded.roles) == {"gp", "hub", "researcher"}
