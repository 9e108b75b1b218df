"""Run a check within a time bound, whatever it waits on: a coroutine, or a blocking call in a daemon thread
(`in_thread` for doctor's event loop, `within` for plain code such as `mosaic config show`).

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


def within(call: Callable[[], T], timeout_s: float) -> T:
    """`call()` in a daemon thread of its own, waited for here; TimeoutError when it has not returned within
    `timeout_s` (the thread is abandoned: a daemon, it does not keep the process alive)."""
    done = threading.Event()
    outcome: list[tuple[T | None, BaseException | None]] = []

    def work() -> None:
        try:
            outcome.append((call(), None))
        except BaseException as exc:  # raised again in the waiting thread
            outcome.append((None, exc))
        done.set()

    threading.Thread(target=work, name="mosaic-bounded-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise TimeoutError(f"did not answer within {timeout_s:g} s")
    value, error = outcome[0]
    if error is not None:
        raise error
    return value  # type: ignore[return-value]
