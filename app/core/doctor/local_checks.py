"""Checks of this PC itself: Qt's system libraries and the OS keyring."""

from __future__ import annotations

import sys

from app.core import qt_libs
from app.core.doctor.result import CheckResult
from app.core.secrets import KEYRING_SERVICE

#: the keyring entry the check reads (and never writes): nobody stores anything under it
PROBE_USER = "mosaic-doctor-probe"
_KEYRING_WHAT_TO_DO = (
    "Install and unlock an OS keyring for this account: GNOME Keyring or KWallet through Secret Service (a desktop "
    "session with D-Bus) on Linux; Windows Credential Manager is built in. Without one Mosaic opens no journal and "
    "shows no patient, except in unattended runs that set MOSAIC_SECRET_JOURNAL_KEY and each practice's "
    "MOSAIC_SECRET_<ID> in the environment.")


def qt_libraries() -> CheckResult:
    name, title = "qt-libraries", "Qt libraries"
    if not sys.platform.startswith("linux"):
        return CheckResult.ok(name, title, "Nothing to check: Qt brings its own libraries on this system.")
    found = qt_libs.check()
    if not found.ok:
        return CheckResult.fail(name, title, f"Missing for the {found.platform} platform: "
                                + ", ".join(f"{lib} ({pkg})" for lib, pkg in found.missing.items())
                                + ". Mosaic's window cannot open without them.", found.install_command())
    needed = len(qt_libs.needed(found.platform))
    detail = f"All {needed} libraries the {found.platform} platform needs are present."
    if found.platform in qt_libs.HEADLESS_PLATFORMS:
        detail += (f" (QT_QPA_PLATFORM={found.platform}: the libraries of a window on a screen were not looked "
                   "for; run without it to check them.)")
    return CheckResult.ok(name, title, detail)


def keyring_backend() -> CheckResult:
    """Whether the OS keyring answers a read (of an entry nobody stores); nothing is written. Blocking."""
    import keyring
    from keyring.backends import fail

    name, title = "keyring", "OS keyring"
    backend = keyring.get_keyring()
    label = f"{type(backend).__module__}.{type(backend).__name__}"
    if isinstance(backend, fail.Keyring) or getattr(backend, "backends", None) == []:
        return CheckResult.fail(name, title, "No OS keyring is available to this account (the keyring library found "
                                "no usable backend). Mosaic keeps practice secrets and the audit journal's key "
                                "there.", _KEYRING_WHAT_TO_DO)
    try:
        keyring.get_password(KEYRING_SERVICE, PROBE_USER)
    except Exception as exc:  # backends raise many kinds: locked, no D-Bus session, access refused
        words = " ".join(str(exc).split()) or type(exc).__name__
        return CheckResult.fail(name, title, f"The OS keyring ({label}) could not be read: {type(exc).__name__}: "
                                f"{words}", "Unlock the keyring (sign in to the desktop session), or: "
                                + _KEYRING_WHAT_TO_DO)
    return CheckResult.ok(name, title, f"{label} answers (read only; nothing was stored).")
