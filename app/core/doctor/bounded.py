"""Run a check within a time bound, whatever it waits on: a coroutine, or a blocking call in a daemon thread.

A blocking call that never returns (a keyring over D-Bus, a database behind a firewall that drops packets) is
abandoned when its bound passes: its daemon thread does not keep the process alive, so doctor still ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(call: Callable[[], T], timeout_s: float) -> T:
    """`call()` in a daemon thread of its own; TimeoutError when it has not returned within `timeout_s`."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():  # abandoned after its bound
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value, error = call(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: doctor finished without this check
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="mosaic-doctor-check", daemon=True).start()
    async with asyncio.timeout(timeout_s):
        return await future
