"""The one settings schema and what is generated from it: the JSON Schemas IT's editors use, the Group Policy
template, and the copies checked in under packaging/."""

from __future__ import annotations

import json
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from app.cli import main
from app.core.schema_export import ADML, ADMX, POLICY_SCHEMA, PRACTICES_SCHEMA, generated_files
from tests.core.test_config import GOOD
from tests.core.test_policy import policy_text
from tests.machine import REPO

PACKAGING = REPO / "packaging"
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}


def test_the_checked_in_copies_are_what_the_schema_generates() -> None:
    """packaging/schema and packaging/gpo are `mosaic config schema packaging`'s output: run it after changing the
    schema (app/core/settings_schema.py, app/core/policy_schema.py, app/core/gpo_template.py)."""
    for relative, text in generated_files().items():
        checked_in = PACKAGING / relative
        assert checked_in.is_file(), f"{checked_in} is missing: run `mosaic config schema packaging`"
        assert checked_in.read_text(encoding="utf-8") == text, \
            f"{checked_in} is out of date: run `mosaic config schema packaging`"


def test_config_schema_writes_all_four_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema", str(tmp_path / "out")]) == 0
    written = capsys.readouterr().out.split()
    expected = generated_files()
    assert sorted(written) == sorted(str(tmp_path / "out" / relative) for relative in expected)
    for relative, text in expected.items():
        assert (tmp_path / "out" / relative).read_text(encoding="utf-8") == text


def test_config_schema_replaces_a_planted_link_never_its_target(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A link at an output file's name is replaced by the new file; the file it pointed at is untouched."""
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("someone else's file\n", encoding="utf-8")
    (out / "gpo" / "en-US").mkdir(parents=True)
    (out / "schema").mkdir()
    for relative in generated_files():
        (out / relative).symlink_to(victim)
    assert main(["config", "schema", str(out)]) == 0
    capsys.readouterr()
    assert victim.read_text(encoding="utf-8") == "someone else's file\n"
    for relative, text in generated_files().items():
        assert not (out / relative).is_symlink()
        assert (out / relative).read_text(encoding="utf-8") == text
        assert (out / relative).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (out / "gpo").iterdir()) == ["en-US", "mosaic.admx"]  # no temporary file left


@pytest.mark.parametrize("linked", ["schema", "gpo", "gpo/en-US"])
def test_config_schema_refuses_a_subfolder_that_is_a_link(tmp_path: Path, linked: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / linked).parent.mkdir(parents=True, exist_ok=True)
    (out / linked).symlink_to(elsewhere, target_is_directory=True)
    assert main(["config", "schema", str(out)]) == 1
    assert f"{out / linked} is a link" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def _xml(relative: str) -> ET.Element:
    return ET.fromstring(generated_files()[relative].encode("utf-8"))  # well-formed, or this raises


def test_the_group_policy_template_is_consistent() -> None:
    admx, adml = _xml(ADMX), _xml(ADML)
    strings = {s.get("id") for s in adml.iterfind(".//p:stringTable/p:string", NS)}
    presentations = {p.get("id"): p for p in adml.iterfind(".//p:presentationTable/p:presentation", NS)}
    assert len(strings) == len(adml.findall(".//p:stringTable/p:string", NS)), "string ids are unique"
    referenced = set()
    for element in admx.iter():
        for value in element.attrib.values():
            for kind, name in re.findall(r"\$\((string|presentation)\.([^)]+)\)", value):
                assert name in (strings if kind == "string" else presentations), f"{kind}.{name} is not in the ADML"
                referenced.add(name)
    assert strings <= referenced | {p.get("id") for p in admx.iterfind(".//p:policy", NS)}
    categories = {c.get("name") for c in admx.iterfind(".//p:categories/p:category", NS)}
    supported = {d.get("name") for d in admx.iterfind(".//p:supportedOn/p:definitions/p:definition", NS)}
    policies = admx.findall(".//p:policies/p:policy", NS)
    assert {p.get("name") for p in policies} == {"MachineFolder", "IdleLockMinutes"}
    for policy in policies:
        assert policy.get("class") == "Machine", "HKLM only: users cannot set Mosaic's policies"
        assert policy.get("key") == r"SOFTWARE\Policies\Mosaic"
        assert policy.find("p:parentCategory", NS).get("ref") in categories
        assert policy.find("p:supportedOn", NS).get("ref") in supported
        presentation = presentations[policy.get("presentation")[len("$(presentation."):-1]]
        elements = list(policy.find("p:elements", NS))
        assert {e.get("id") for e in elements} == {c.get("refId") for c in presentation}
        assert all(e.get("valueName") == policy.get("name") for e in elements)
    idle = admx.find(".//p:policy[@name='IdleLockMinutes']/p:elements/p:decimal", NS)
    assert (idle.get("minValue"), idle.get("maxValue")) == ("1", "1440")
    box = adml.find(".//p:presentation[@id='IdleLockMinutes']/p:decimalTextBox", NS)
    assert box.get("defaultValue") == "10"


def _schema(relative: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(generated_files()[relative])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_json_schemas_take_good_files_and_name_unknown_keys(network, tmp_path: Path) -> None:
    practices, policy = _schema(PRACTICES_SCHEMA), _schema(POLICY_SCHEMA)
    demo = network.write_config(tmp_path / "demo.toml")
    for text in (GOOD, demo.read_text(), Path(f"{demo}.machine.toml").read_text(),
                 '[lock]\nidle_lock_minutes = 5\n[identity]\nissuer = "https://i.example"\nclient_id = "m"\n'):
        assert not list(practices.iter_errors(tomllib.loads(text))), text
    assert not list(policy.iter_errors(tomllib.loads(policy_text(restricted={"riverside": ["9434765919"]}))))
    typo = list(practices.iter_errors(tomllib.loads(GOOD.replace("colour =", "color ="))))
    assert typo and "color" in typo[0].message
    assert list(practices.iter_errors(tomllib.loads(GOOD.replace('auth = "basic"', 'auth = "kerberos"'))))
    assert list(policy.iter_errors(tomllib.loads(policy_text(sections='["gossip"]'))))
    assert list(policy.iter_errors(tomllib.loads(policy_text().replace("reason_required = false",
                                                                       'reason_required = "yes"'))))
