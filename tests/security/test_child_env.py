"""Issue 10, class 15: the sign-in browser (and any process Mosaic starts) inherited MOSAIC_SECRET_*.

Every child process starts through app.core.child_process with a scrubbed environment. The sign-in test runs
the real flow with a stand-in for the system browser found on PATH as `xdg-open`: it records the environment it
was given, then does what a browser does for the demo provider (follows the redirect back to Mosaic).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from app.core import child_process

SECRETS = {
    "MOSAIC_SECRET_RIVERSIDE": "riverside-password",
    "MOSAIC_SECRET_NOTIFY": "notify-api-key",
    "MOSAIC_SECRET_STUDY_DIAB": "study-key-0123456789",
    "MOSAIC_SECRET": "bare",
    "mosaic_secret_lower": "lower",
    "PGPASSWORD": "db-password",
    "GITHUB_TOKEN": "ghp_token",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "SOME_API_KEY": "api-key",
    "SSH_AUTH_SOCK": "/tmp/agent.sock",
    "HTTPS_PROXY": "http://user:proxy-password@proxy.example:3128",
    "CENTRAL_URL": "postgresql://ws:db-password-2@audit.example/a",
}

BROWSER = """#!{python}
import json, os, sys, urllib.request
with open({out!r}, "w") as handle:
    json.dump(dict(os.environ), handle)

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

opener = urllib.request.build_opener(NoRedirect)
try:
    opener.open(sys.argv[-1])
except urllib.error.HTTPError as exc:  # the provider's 302 back to Mosaic's loopback listener
    urllib.request.urlopen(exc.headers["Location"]).read()
"""


def test_child_env_drops_every_secret_and_keeps_what_a_browser_needs(monkeypatch) -> None:
    for name, value in {**SECRETS, "DISPLAY": ":0", "XAUTHORITY": "/root/.Xauthority", "LANG": "en_GB.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    env = child_process.child_env()
    assert not set(SECRETS) & set(env), sorted(set(SECRETS) & set(env))
    assert all(value not in " ".join(env.values()) for value in SECRETS.values())
    assert {"PATH", "DISPLAY", "XAUTHORITY", "LANG"} <= set(env)


def test_processes_started_through_the_helper_get_the_scrubbed_environment(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    out = child_process.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert not set(SECRETS) & set(seen)
    given = child_process.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={"PATH": os.environ["PATH"], "MOSAIC_SECRET_X": "given"}).stdout
    assert "MOSAIC_SECRET_X" not in json.loads(given)  # an env a caller passes is scrubbed too


@pytest.fixture
def fake_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`xdg-open` first on PATH: records its environment in the returned file, then signs in as a browser would."""
    folder = tmp_path / "bin"
    folder.mkdir()
    record = tmp_path / "browser-env.json"
    script = folder / "xdg-open"
    script.write_text(BROWSER.format(python=sys.executable, out=str(record)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return record


async def test_the_sign_in_browser_gets_no_secret(fake_browser: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.identity import Identity
    from app.demo.network import DemoNetwork

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISPLAY", ":0")
    with DemoNetwork.start(practices=1, patients=5, identity=True) as net:
        assert net.identity is not None
        identity = Identity(net.identity.settings, redirect_timeout_s=30)  # the system browser: no open_url given
        user = await identity.sign_in()
    assert user.login == "clinician1"  # the stand-in really was the browser that signed in
    seen = json.loads(fake_browser.read_text())
    assert not set(SECRETS) & set(seen), sorted(set(SECRETS) & set(seen))
    assert all(value not in json.dumps(seen) for value in SECRETS.values())
    assert seen.get("DISPLAY") == ":0" and seen.get("PATH")
