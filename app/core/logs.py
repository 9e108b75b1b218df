"""Logging set-up. Logs carry practice ids, request ids and timings, never patient data."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys

from app.core import paths

_configured = False  # set by the first call in a process: later calls leave the handlers as they are
#: the HTTP library's loggers (httpx2 and its transport; httpx's names too, should anything still use it)
HTTP_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every log file it opens (the first, and each one after a rollover) is user-only (0600)."""

    def _open(self) -> io.TextIOWrapper:
        return paths.open_private(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(verbose: bool = False) -> None:
    global _configured
    root = logging.getLogger()
    if _configured:
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        folder = paths.private_dir(paths.user_log_dir())
        handler: logging.Handler = _PrivateRotatingFileHandler(
            folder / "mosaic.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        print(f"mosaic: cannot write logs ({exc}); logging to the console instead", file=sys.stderr)
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    quiet_http_loggers()  # from the start: the sign-in comes before any adapter is imported
    _configured = True


def quiet_http_loggers() -> None:
    """The HTTP library logs every request's full URL at INFO, query string included (NHS numbers, names, the
    sign-in callback's code): WARNING and above only, unless someone configured that logger on purpose."""
    for name in HTTP_LOGGERS:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
