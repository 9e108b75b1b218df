"""The OS account Mosaic runs as: the user when no identity provider is configured.

Never an environment variable: `getpass.getuser()` reads LOGNAME, USER, LNAME and USERNAME first, so
`LOGNAME=apatel mosaic show …` would act (and be journaled) as apatel. The account is asked of the OS:

- POSIX: the password database's name for the process's *real* uid (`pwd.getpwuid(os.getuid())`): the
  account that started the process, which no variable changes;
- Windows: `GetUserNameW` (advapi32), the account of the process's token. Not exercised by the tests,
  which run on Linux.
"""

from __future__ import annotations

import functools
import os
import sys


class AccountError(RuntimeError):
    """The OS could not name the account Mosaic runs as (e.g. a uid with no entry in the password database)."""


@functools.cache
def os_login() -> str:
    """The login name of the account running this process, from the OS (cached: it cannot change)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _windows_user_name()
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise AccountError(f"this account (uid {uid}) has no name in the password database; Mosaic cannot say "
                           "who is using it. Ask IT.") from None


def _windows_user_name() -> str:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    size = wintypes.DWORD(257)  # UNLEN + 1
    buffer = ctypes.create_unicode_buffer(size.value)
    if not advapi32.GetUserNameW(buffer, ctypes.byref(size)):
        raise AccountError(f"Windows could not name this account (error {ctypes.get_last_error()}). "  # type: ignore[attr-defined,unused-ignore]
                           "Ask IT.")
    return buffer.value
