"""Every process Mosaic starts (the sign-in browser, icacls/whoami on Windows) starts through here, with a
scrubbed environment: no MOSAIC_SECRET_* and no other variable that carries a secret.

Mosaic's own environment may hold practice passwords, tokens, the Notify API key and study keys (for
unattended runs). A browser, and everything it starts in turn, must not inherit them: `child_env()` is
what a child gets, `run`/`spawn` pass it, and `open_in_browser` starts the system browser with it (Python's
`webbrowser` would hand the child Mosaic's whole environment).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

#: variables whose NAME says they carry a secret (case-insensitive), besides MOSAIC_SECRET_*: passwords,
#: tokens, keys, credentials, and agent sockets that hand out signatures on request
_SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|PASSPHRASE|PASSWORD_FILE|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SIGNING_?KEY|"
    r"CREDENTIAL|AUTH_?HEADER|COOKIE|SESSION_?KEY|CLIENT_?ASSERTION)", re.IGNORECASE)
#: named outright: agents and database/URL variables that routinely hold a password
_SECRET_NAMES = frozenset({"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "PGPASSWORD", "PGSERVICEFILE", "PGPASSFILE",
                           "DATABASE_URL", "MYSQL_PWD", "NETRC", "KRB5_KTNAME"})
#: named like a secret but needed by a browser or a shell, and carrying none
_KEEP = frozenset({"XAUTHORITY", "KRB5CCNAME"})
#: a value that is a URL with a password in it (scheme://user:password@host) is a secret whatever its name
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


def is_secret_variable(name: str, value: str = "") -> bool:
    """Whether a child must not inherit this variable."""
    upper = name.upper()
    if upper in _KEEP:
        return False
    if upper.startswith("MOSAIC_SECRET") or upper in _SECRET_NAMES or _SECRET_NAME.search(upper):
        return True
    return bool(_URL_WITH_PASSWORD.search(value))


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process gets: Mosaic's own (or `base`) without any secret-bearing variable."""
    source = os.environ if base is None else base
    env = {name: value for name, value in source.items() if not is_secret_variable(name, value)}
    return _without_bundle_library_path(env)


def _without_bundle_library_path(env: dict[str, str]) -> dict[str, str]:
    """In the PyInstaller bundle (packaging/) the launcher puts the bundle's own folder first on LD_LIBRARY_PATH
    and keeps the user's value in LD_LIBRARY_PATH_ORIG: a browser started with it would load Mosaic's copies of
    system libraries instead of its own. A child gets the user's value back (or none)."""
    if not getattr(sys, "frozen", False):
        return env
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    env.pop("LD_LIBRARY_PATH", None)
    if original is not None:
        env["LD_LIBRARY_PATH"] = original
    return env


def run(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` with the scrubbed environment (an `env` given is scrubbed too)."""
    kwargs["env"] = child_env(kwargs.get("env"))
    return subprocess.run(list(args), **kwargs)  # callers say check=


def spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a process that runs on by itself (a browser): scrubbed environment, no handles of ours."""
    kwargs["env"] = child_env(kwargs.get("env"))
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    kwargs.setdefault("close_fds", True)
    if sys.platform != "win32":
        kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(list(args), **kwargs)


#: Linux/BSD openers, tried in this order (the desktop's own choice first)
_OPENERS = ("xdg-open", "gio", "sensible-browser", "x-www-browser", "firefox", "chromium", "chromium-browser",
            "google-chrome")


def browser_command(url: str) -> list[str]:
    """The command that opens `url` in the system browser on this OS. OSError when there is none."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return ["rundll32.exe", "url.dll,FileProtocolHandler", url]  # the browser inherits rundll32's env
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        return ["/usr/bin/open", url]
    for name in _OPENERS:
        found = shutil.which(name)
        if found:
            return [found, "open", url] if name == "gio" else [found, url]
    raise OSError("no web browser was found (xdg-open or a browser on PATH)")


def open_in_browser(url: str) -> bool:
    """Open `url` in the system browser, which gets the scrubbed environment. Raises OSError when it cannot."""
    spawn(browser_command(url))
    return True
