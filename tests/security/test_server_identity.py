"""Issue 10, class 5: aliases. A per-user practice entry pointing at a machine practice's server escaped that
practice's restrictions. Rules attach to the server identity (normalised base URL + ODS code where the server
routes by it): a per-user entry for a machine practice's server, however spelt, is refused."""

from __future__ import annotations

import pytest

from app.core import paths
from app.core.config import ConfigError, load_directory
from tests.machine import write_machine_file

MACHINE = """
[[practice]]
id = "riverside"
name = "Riverside Surgery"
ods_code = "Y01234"
adapter = "fhir-r4"
base_url = "https://fhir.riverside.example.nhs.uk:443/R4/"

[[practice]]
id = "local"
name = "Local"
ods_code = "Y05678"
adapter = "fhir-r4"
base_url = "http://127.0.0.1:8123/fhir"

[[practice]]
id = "tls-local"
name = "TLS local"
ods_code = "Y05679"
adapter = "fhir-r4"
base_url = "https://127.0.0.1:9443/fhir"
"""


def user_practice(base_url: str, ods: str = "Y99999", pid: str = "mine", adapter: str = "fhir-r4") -> str:
    return (f'[[practice]]\nid = "{pid}"\nname = "Mine"\nods_code = "{ods}"\nadapter = "{adapter}"\n'
            f'base_url = "{base_url}"\n')


@pytest.mark.parametrize("base_url", [
    "https://fhir.riverside.example.nhs.uk/R4",
    "https://FHIR.Riverside.Example.NHS.uk/R4/",
    "HTTPS://fhir.riverside.example.nhs.uk.:443/R4//",
    "https://fhir.riverside.example.nhs.uk/x/../R4/./",
    "https://fhir.riverside.example.nhs.uk/%52%34",
    "https://fhir.riverside.example.nhs.uk/r4",
    "https://fhir.riverside.example.nhs.uk:443/R4",  # (a query string, ?alias=1, is refused outright)
    "http://localhost:8123/fhir",
    "http://127.0.0.2:8123/fhir/",
    "http://[::1]:8123/fhir",
    "https://2130706433:9443/fhir",
    "https://127.1:9443/fhir",
    "https://0x7f.0.0.1:9443/fhir",
    "https://0.0.0.0:9443/fhir",
    "https://[::ffff:127.0.0.1]:9443/fhir",
])
def test_a_per_user_alias_of_a_machine_practice_is_refused(base_url: str) -> None:
    write_machine_file(MACHINE)
    paths.user_config_file().write_text(user_practice(base_url), encoding="utf-8")
    with pytest.raises(ConfigError, match="machine-wide practice") as info:
        load_directory()
    assert info.value.key == "base_url" and info.value.practice == "mine"


def test_an_alias_in_a_config_file_is_refused_too(tmp_path) -> None:
    write_machine_file(MACHINE)
    mine = tmp_path / "mine.toml"
    mine.write_text(user_practice("https://fhir.riverside.example.nhs.uk/R4", ods="Y01234", pid="river2"))
    with pytest.raises(ConfigError, match="'riverside'"):
        load_directory(mine)


def test_other_servers_and_gp_connect_practices_behind_one_url_are_not_aliases() -> None:
    write_machine_file(MACHINE + '\n[[practice]]\nid = "gpc"\nname = "GPC"\nods_code = "A11111"\n'
                       'adapter = "gp-connect"\nbase_url = "https://proxy.spine.example/gpc"\n')
    paths.user_config_file().write_text(
        user_practice("https://fhir.riverside.example.nhs.uk/R4-other")
        + user_practice("http://127.0.0.1:8124/fhir", pid="other-port")
        + user_practice("https://proxy.spine.example/gpc", ods="B22222", pid="gpc2", adapter="gp-connect"),
        encoding="utf-8")
    assert [p.id for p in load_directory()] == ["riverside", "local", "tls-local", "gpc", "mine", "other-port", "gpc2"]
    paths.user_config_file().write_text(
        user_practice("https://proxy.spine.example/gpc/", ods="a11111", pid="gpc3", adapter="gp-connect"),
        encoding="utf-8")
    with pytest.raises(ConfigError, match="'gpc'"):  # the same GP Connect practice: same URL and ODS code
        load_directory()
