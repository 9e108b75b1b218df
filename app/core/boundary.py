"""The one door between the core and an adapter: whatever an adapter raises comes out as an AdapterError.

Adapters are pluggable (a third party can ship one) and parse what a practice's server sends, so a
hostile or broken reply can make one raise anything: RecursionError from deeply nested JSON, KeyError,
TypeError, ValueError, a JSON decode error. Every call the core makes to an adapter for a user's request
goes through `adapter_call`, so such a failure is a named error naming the practice — journaled like
any other failed request — and never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from adapters.base import AdapterError
from app.core.model import Practice
from app.core.text import clean_model, clean_text

log = logging.getLogger("mosaic.core.boundary")

T = TypeVar("T")


async def adapter_call(practice: Practice, call: Awaitable[T], doing: str = "answering") -> T:
    """Await `call` (an adapter's coroutine); any exception but an AdapterError (or a cancellation, or an
    exit) becomes an AdapterError of kind "bad-reply" that names the practice."""
    try:
        # every string in the answer cleaned of control and bidi characters (app/core/text.py), whatever
        # the adapter did: a third-party adapter may decode replies without adapters/http.py
        return clean_model(await call)
    except AdapterError as exc:
        _clean_error(exc)  # cleaned when made (adapters/base.py); again here, for an adapter that changed it since
        raise
    except Exception as exc:  # BaseException (cancellation, KeyboardInterrupt, SystemExit) passes through
        # the type only: a parser's message may quote the practice's data
        log.warning("practice=%s adapter failed while %s: %s", practice.id, doing, type(exc).__name__)
        raise AdapterError(f"{practice.name} sent a reply Mosaic could not read ({_what(exc)}), so nothing from "
                           f"it is shown. Try again; if it persists, tell the practice.", "bad-reply") from None


def _what(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return f"{type(exc).__name__}"


def _clean_error(exc: AdapterError) -> None:
    exc.message = clean_text(exc.message)
    exc.args = tuple(clean_text(a) if isinstance(a, str) else a for a in exc.args)
