"""The practice directory: parsing, merging machine and user files, and errors that point at the fault."""

from pathlib import Path

import pytest

from app.core import paths
from app.core.config import ConfigError, load_directory, render_directory

GOOD = """
[[practice]]
id = "riverside"
name = "Riverside Surgery"
ods_code = "Y01234"
adapter = "fhir-r4"
base_url = "http://127.0.0.1:8123/fhir/"
auth = "basic"
username = "mosaic"
colour = "#1D70B8"

[[practice]]
id = "hillview"
name = "Hillview Medical Centre"
ods_code = "Y05678"
adapter = "fhir-r4"
base_url = "https://fhir.hillview.example.nhs.uk/R4"
auth = "client-credentials"
token_url = "https://auth.hillview.example.nhs.uk/token"
client_id = "mosaic-pcn"
timeout = 5
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_explicit_file_is_parsed(tmp_path: Path) -> None:
    practices = load_directory(write(tmp_path / "p.toml", GOOD))
    assert [p.id for p in practices] == ["riverside", "hillview"]
    riverside, hillview = practices
    assert riverside.base_url == "http://127.0.0.1:8123/fhir"
    assert riverside.colour == "#1d70b8"
    assert riverside.username == "mosaic"
    assert hillview.auth == "client-credentials"
    assert hillview.timeout_s == 5.0
    assert hillview.source.endswith("p.toml")


def test_no_files_means_no_practices() -> None:
    assert load_directory() == []


def test_machine_and_user_files_merge(tmp_path: Path) -> None:
    write(paths.machine_config_file(), GOOD)
    write(paths.user_config_file(), """
[[practice]]
id = "riverside"
colour = "#007f3b"
username = "jbloggs"

[[practice]]
id = "home-lab"
name = "My test server"
ods_code = "X99999"
adapter = "fhir-r4"
base_url = "http://localhost:8080/fhir"
""")
    practices = {p.id: p for p in load_directory()}
    assert set(practices) == {"riverside", "hillview", "home-lab"}
    assert practices["riverside"].colour == "#007f3b"
    assert practices["riverside"].username == "jbloggs"
    assert practices["riverside"].base_url == "http://127.0.0.1:8123/fhir"  # machine value kept


def test_user_file_cannot_redirect_a_machine_practice(tmp_path: Path) -> None:
    write(paths.machine_config_file(), GOOD)
    write(paths.user_config_file(), '[[practice]]\nid = "riverside"\nbase_url = "http://127.0.0.1:9/x"\n')
    with pytest.raises(ConfigError) as info:
        load_directory()
    assert info.value.practice == "riverside" and info.value.key == "base_url"
    assert "practices.toml" in str(info.value)


def test_explicit_file_replaces_the_user_file_only(tmp_path: Path) -> None:
    """--config stands in for the per-user file; the machine-wide practices stay, under the same rules."""
    write(paths.machine_config_file(), GOOD)
    write(paths.user_config_file(), '[[practice]]\nid = "mine"\nname = "Mine"\nods_code = "Y1"\n'
          'adapter = "fhir-r4"\nbase_url = "https://mine.example/R4"\n')
    only = write(tmp_path / "only.toml", '[[practice]]\nid = "riverside"\nname = "River (mine)"\n')
    practices = load_directory(only)
    assert [p.id for p in practices] == ["riverside", "hillview"]  # the user's own file is not read
    assert practices[0].name == "River (mine)" and practices[0].base_url == "http://127.0.0.1:8123/fhir"
    write(only, '[[practice]]\nid = "riverside"\nbase_url = "http://127.0.0.1:9/fhir"\n')
    with pytest.raises(ConfigError, match="machine-wide directory"):
        load_directory(only)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('auth = "basic"', 'auth = "kerberos"'), "auth", "one of"),
        (('username = "mosaic"\n', ""), "username", "needed"),
        (('colour = "#1D70B8"', 'colour = "blue"'), "colour", "#rrggbb"),
        (('id = "riverside"', 'id = "River Side"'), "id", "lower-case"),
        (('base_url = "http://127.0.0.1:8123/fhir/"', 'base_url = "http://fhir.example.org/r4"'), "base_url", "https"),
        (('ods_code = "Y01234"\n', ""), "ods_code", "missing"),
        (('colour = "#1D70B8"', 'color = "#1D70B8"'), "color", "unknown key"),
        (("timeout = 5", "timeout = -1"), "timeout", "from 1 to 300 seconds"),
        (("timeout = 5", "timeout = inf"), "timeout", "from 1 to 300 seconds"),
        (("timeout = 5", "timeout = 1e308"), "timeout", "from 1 to 300 seconds"),
        (("timeout = 5", "timeout = nan"), "timeout", "from 1 to 300 seconds"),
        (("timeout = 5", "max_response_mb = inf"), "max_response_mb", "from 1 to 1024 MB"),
        (("timeout = 5", "max_response_mb = 1e308"), "max_response_mb", "from 1 to 1024 MB"),
        (("timeout = 5", "max_response_mb = 0"), "max_response_mb", "from 1 to 1024 MB"),
        (('id = "hillview"', 'id = "riverside"'), "id", "twice"),
    ],
)
def test_errors_name_file_practice_and_key(tmp_path: Path, change: tuple[str, str], key: str, words: str) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    file = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_directory(file)
    assert info.value.key == key
    assert info.value.practice in ("riverside", "hillview", "River Side")
    message = str(info.value)
    assert "bad.toml" in message and words in message


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    file = write(tmp_path / "broken.toml", "[[practice]]\nid = riverside\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML.*line 2"):
        load_directory(file)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_directory(tmp_path / "nope.toml")


def test_rendered_directory_reads_back(tmp_path: Path) -> None:
    practices = load_directory(write(tmp_path / "p.toml", GOOD))
    again = load_directory(write(tmp_path / "again.toml", render_directory(practices)))
    assert [(p.id, p.base_url, p.auth, p.timeout_s, p.colour) for p in again] == [
        (p.id, p.base_url, p.auth, p.timeout_s, p.colour) for p in practices]


def test_audit_settings_only_from_the_machine_file(tmp_path: Path) -> None:
    from app.core.config import load_audit_settings

    assert load_audit_settings().central_url is None
    write(paths.machine_config_file(), '[audit]\ncentral_url = "postgresql+psycopg://mosaic_ws@audit.example/a"\n'
          + GOOD)
    assert load_audit_settings().central_url == "postgresql+psycopg://mosaic_ws@audit.example/a"
    assert len(load_directory()) == 2
    write(paths.user_config_file(), '[audit]\ncentral_url = "sqlite:////tmp/elsewhere.sqlite"\n')
    with pytest.raises(ConfigError, match="machine-wide") as info:
        load_audit_settings()
    assert info.value.key == "audit"


def test_unknown_audit_key_is_named(tmp_path: Path) -> None:
    from app.core.config import load_audit_settings

    write(paths.machine_config_file(), '[audit]\ncentral = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_audit_settings()
    assert info.value.key == "central"


@pytest.mark.parametrize(("key", "value"), [("id", "riverside\\n"), ("colour", "#1D70B8\\n")])
def test_a_trailing_newline_is_not_part_of_an_id_or_colour(tmp_path: Path, key: str, value: str) -> None:
    """`$` matched before a final newline: the whole value must match."""
    text = GOOD.replace('id = "riverside"' if key == "id" else 'colour = "#1D70B8"', f'{key} = "{value}"', 1)
    with pytest.raises(ConfigError) as info:
        load_directory(write(tmp_path / "bad.toml", text))
    assert info.value.key == key


@pytest.mark.parametrize(("key", "value"), [
    ("name", "\\u001b[2J\\u001b]0;owned\\u0007Riverside"), ("name", "River\\u009b31mside"),
    ("username", "mos\\nai"), ("name", "Riverside\\u202e"), ("base_url", "http://127.0.0.1:8123/fh\\u001bir"),
])
def test_control_characters_are_refused_at_load(tmp_path: Path, key: str, value: str) -> None:
    """A terminal escape in a setting would reach IT's terminal through `mosaic config show` and `mosaic doctor`."""
    old = {"name": 'name = "Riverside Surgery"', "username": 'username = "mosaic"',
           "base_url": 'base_url = "http://127.0.0.1:8123/fhir/"'}[key]
    file = write(tmp_path / "bad.toml", GOOD.replace(old, f'{key} = "{value}"', 1))
    with pytest.raises(ConfigError) as info:
        load_directory(file)
    assert info.value.key == key and info.value.practice == "riverside"
    assert "bad.toml" in str(info.value) and "control characters" in str(info.value)
    assert "\x1b" not in str(info.value) and "\x9b" not in str(info.value)


ONE = '[[practice]]\nid = "{id}"\nname = "P"\nods_code = "Y1"\nadapter = "fhir-r4"\nbase_url = "{url}"\n' \
      'auth = "bearer"\n'


@pytest.mark.parametrize("pid", ["central", "notify", "journal-key", "journal_key", "study-demo-study",
                                 "study_x", "mosaic-doctor-probe"])
def test_mosaic_s_own_secret_names_are_not_practice_ids(tmp_path: Path, pid: str) -> None:
    """A practice's secret is read by its id: "central" would be handed the central audit store's password."""
    file = write(tmp_path / "evil.toml", ONE.format(id=pid, url="https://attacker.example/fhir"))
    with pytest.raises(ConfigError) as info:
        load_directory(file)
    assert (info.value.practice, info.value.key) == (pid, "id")
    assert "evil.toml" in str(info.value) and "reserved" in str(info.value)


def test_two_ids_with_one_secret_name_are_refused(tmp_path: Path) -> None:
    """st-marys and st_marys both read MOSAIC_SECRET_ST_MARYS: in one file, or a user's practice against IT's."""
    same_file = write(tmp_path / "both.toml", ONE.format(id="st-marys", url="https://a.example/fhir") + "\n"
                      + ONE.format(id="st_marys", url="https://b.example/fhir"))
    with pytest.raises(ConfigError, match="MOSAIC_SECRET_ST_MARYS") as info:
        load_directory(same_file)
    assert (info.value.practice, info.value.key) == ("st_marys", "id")
    write(paths.machine_config_file(), ONE.format(id="st-marys", url="https://fhir.st-marys.example.nhs.uk/R4"))
    user = write(tmp_path / "user.toml", ONE.format(id="st_marys", url="https://attacker.example/fhir"))
    with pytest.raises(ConfigError, match="MOSAIC_SECRET_ST_MARYS") as info:
        load_directory(user)
    assert "user.toml" in str(info.value) and (info.value.practice, info.value.key) == ("st_marys", "id")
    write(user, ONE.format(id="st-marys-2", url="https://attacker.example/fhir"))
    assert [p.id for p in load_directory(user)] == ["st-marys", "st-marys-2"]


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ('base_url = "http://127.0.0.1:8123/fhir/"', 'base_url = "https://mosaic:hunter2@fhir.example.nhs.uk/R4"',
     "base_url", "user name or password"),
    ('base_url = "http://127.0.0.1:8123/fhir/"', 'base_url = "https://mosaic@fhir.example.nhs.uk/R4"',
     "base_url", "user name or password"),
    ('base_url = "http://127.0.0.1:8123/fhir/"', 'base_url = "https://fhir.example.nhs.uk/R4?access_token=hunter2"',
     "base_url", "query string"),
    ('base_url = "http://127.0.0.1:8123/fhir/"', 'base_url = "https://fhir.example.nhs.uk/R4#hunter2"',
     "base_url", "query string"),
    ('token_url = "https://auth.hillview.example.nhs.uk/token"',
     'token_url = "https://auth.hillview.example.nhs.uk/token?client_secret=hunter2"', "token_url", "query string"),
    ('token_url = "https://auth.hillview.example.nhs.uk/token"',
     'token_url = "https://mosaic-pcn:hunter2@auth.hillview.example.nhs.uk/token"', "token_url", "user name"),
])
def test_credentials_in_a_practice_url_are_refused(tmp_path: Path, old: str, new: str, key: str,
                                                   words: str) -> None:
    """The machine-wide file is world-readable and doctor prints URLs: a URL carries no credentials."""
    file = write(tmp_path / "bad.toml", GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_directory(file)
    assert info.value.key == key and words in str(info.value) and "bad.toml" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://mosaic_ws:hunter2@audit.example/a",
    "postgresql+psycopg://mosaic_ws@audit.example/a?password=hunter2",
    "postgresql+psycopg://mosaic_ws@audit.example/a?sslmode=verify-full&PassWord=hunter2",
    "postgresql+psycopg://mosaic_ws@audit.example/a?sslpassword=hunter2",
    "postgresql+psycopg://mosaic_ws@audit.example/a?passfile=/tmp/pgpass",
])
def test_a_password_in_the_central_url_is_refused(url: str) -> None:
    from app.core.config import load_audit_settings

    write(paths.machine_config_file(), f'[audit]\ncentral_url = "{url}"\n')
    with pytest.raises(ConfigError, match="key 'central_url': must not contain a password") as info:
        load_audit_settings()
    assert "hunter2" not in str(info.value)


def test_the_central_url_may_name_the_workstation_login_and_tls_files() -> None:
    from app.core.config import load_audit_settings

    url = "postgresql+psycopg://mosaic_ws@audit.example/a?sslmode=verify-full&sslrootcert=/etc/mosaic/ca.pem"
    write(paths.machine_config_file(), f'[audit]\ncentral_url = "{url}"\n')
    assert load_audit_settings().central_url == url


@pytest.mark.parametrize("url", ["https://mosaic:hunter2@api.notifications.service.gov.uk",
                                 "https://api.notifications.service.gov.uk?key=hunter2"])
def test_credentials_in_the_notify_url_are_refused(url: str) -> None:
    from app.core.config import load_notify_settings

    write(paths.machine_config_file(), f'[notify]\nbase_url = "{url}"\n')
    with pytest.raises(ConfigError, match="key 'base_url'") as info:
        load_notify_settings()
    assert "hunter2" not in str(info.value)


def test_urls_are_printed_only_redacted() -> None:
    from app.core.schema_types import redacted_url

    assert redacted_url("https://u:hunter2@h.example/R4?access_token=x#f") == "https://u:***@h.example/R4?..."
    assert redacted_url("postgresql+psycopg://mosaic_ws@h/db?sslkey=/k") == "postgresql+psycopg://mosaic_ws@h/db?..."
    assert redacted_url("https://fhir.example.nhs.uk/R4") == "https://fhir.example.nhs.uk/R4"
    assert redacted_url("sqlite:////tmp/central.sqlite") == "sqlite:////tmp/central.sqlite"
    assert redacted_url("http://[::1/x") == "(a URL that cannot be read)"


def test_an_error_quoting_the_file_never_carries_its_control_characters(tmp_path: Path) -> None:
    """An id or an unknown key is quoted in the error message: its escapes are written out, never sent."""
    for text in (GOOD.replace('id = "riverside"', 'id = "\\u001b[2Jx"', 1),
                 GOOD.replace('colour = "#1D70B8"', '"col\\u001b]0;x\\u0007our" = 1', 1),
                 '"\\u009b2J" = 1\n'):
        with pytest.raises(ConfigError) as info:
            load_directory(write(tmp_path / "bad.toml", text))
        assert "\x1b" not in str(info.value) and "\x07" not in str(info.value) and "\x9b" not in str(info.value)
        assert "\\u001b" in str(info.value) or "\\u009b" in str(info.value)
