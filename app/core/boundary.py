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

log = logging.getLogger("mosaic.core.boundary")

T = TypeVar("T")


async def adapter_call(practice: Practice, call: Awaitable[T], doing: str = "answering") -> T:
    """Await `call` (an adapter's coroutine); any exception but an AdapterError (or a cancellation, or an
    exit) becomes an AdapterError of kind "bad-reply" that names the practice."""
    try:
        return await call
    except AdapterError:
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
