"""Every way a `mosaic` command can fail ends as a sentence and an exit status, never a traceback.

`run_command` wraps the CLI's command dispatch (app/cli/__init__.py `main`), so no command needs its own guard:

- the reader of stdout went away (`mosaic search … | head`): Mosaic stops quietly, as Unix tools do, with
  exit status 141 (128 + SIGPIPE, what a shell reports for a tool the pipe closed on); stdout is pointed at
  the null device so that the interpreter's last flush cannot print an error either;
- the system keyring is missing, locked or broken (keyring's KeyringError family — NoKeyringError,
  InitError, KeyringLocked — or anything else a keyring backend raised, found by where it was raised, and
  Mosaic's SecretError that wraps one): "mosaic: the system keyring is not available: …", exit 1;
- anything else Mosaic did not expect: one sentence naming the kind of failure and the log file, exit 1;
  the traceback goes only to the log file (never the terminal: it may quote a server's or a patient's data).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from types import TracebackType

log = logging.getLogger("mosaic.cli")

EXIT_FAILED = 1
#: 128 + SIGPIPE: the status a shell reports for a command whose reader closed the pipe
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130

#: modules whose exceptions are the system keyring's: keyring itself, its backends and their transports
_KEYRING_MODULES = ("keyring", "keyrings", "secretstorage", "jeepney", "dbus", "win32cred", "pywintypes")


def run_command(dispatch: Callable[[], int]) -> int:
    """Run `dispatch` (one command) and return its exit status, turning every failure into a sentence."""
    try:
        status = dispatch()
        _flush_stdout()  # a reader gone before the last lines: found here, not by the interpreter at exit
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # the last resort: SystemExit and KeyboardInterrupt pass through as they are
        if _keyring_failure(exc):
            log.warning("the system keyring is not available", exc_info=exc)
            _say(f"the system keyring is not available: {_keyring_words(exc)}")
            return EXIT_FAILED
        where = _log_file()
        log.error("unexpected failure", exc_info=exc)  # the details: in the log file only
        _say(f"the command stopped on a failure Mosaic did not expect ({type(exc).__name__}); "
             + (f"the details are in {where}; " if where else "") + "tell your IT support if it happens again.")
        return EXIT_FAILED


def _say(sentence: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed too: the exit status still says it
        print(f"mosaic: {sentence}", file=sys.stderr, flush=True)


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _silence_stdout() -> None:
    """Point stdout at the null device, so nothing written later (or flushed at exit) fails again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_in_keyring(tb: TracebackType | None) -> bool:
    try:
        from keyring.backend import KeyringBackend
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    while tb is not None:
        frame = tb.tb_frame
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _KEYRING_MODULES or isinstance(frame.f_locals.get("self"), KeyringBackend):
            return True
        tb = tb.tb_next
    return False


def _keyring_failure(exc: BaseException) -> bool:
    try:
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    from app.core.secrets import SecretError

    return any(isinstance(e, KeyringError | SecretError) or _raised_in_keyring(e.__traceback__) for e in _chain(exc))


def _keyring_words(exc: BaseException) -> str:
    """Mosaic's own sentence when it wrapped the failure (it names what needed the keyring), else the keyring's."""
    from app.core.secrets import SecretError

    for e in _chain(exc):
        if isinstance(e, SecretError):
            return " ".join(str(e).split())
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text if text.endswith((".", "!", "?")) else text + "."
    return (f"{text} Unlock the keyring or install one (GNOME Keyring or KWallet through Secret Service, "
            "Windows Credential Manager, macOS Keychain), or ask IT.")


def _log_file() -> str | None:
    """Mosaic's log file (app/core/logs.py), where the root logger writes to one."""
    files = [h.baseFilename for h in logging.getLogger().handlers
             if isinstance(h, logging.FileHandler) and h.baseFilename != os.devnull]
    return next((f for f in files if os.path.basename(f) == "mosaic.log"), files[0] if files else None)
