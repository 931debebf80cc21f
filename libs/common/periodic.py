"""Background work repeated on a period for the life of an app: sweeps, refreshes, key reloads.

    async with periodic(60, sweep_once, name="ingest-sweep", failure="ingest sweep failed", log=log):
        yield

`seconds=None` turns the work off (a setting that disables a sweep): the block runs, nothing else does.

Stopped by an event, not by a cancel alone: a cancellation landing inside a pymongo call can come back as an
ordinary error, which a loop would log and carry on from (and a shutdown would hang). A round in flight gets
`grace` seconds to finish its database calls before the client closes; only then is it cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable


@contextlib.asynccontextmanager
async def periodic(
    seconds: float | None,
    work: Callable[[], Awaitable[object]],
    *,
    name: str,
    failure: str,
    log: logging.Logger,
    at_start: bool = False,
    grace: float = 10.0,
) -> AsyncIterator[None]:
    """While the block runs, await `work()` every `seconds` (the first time at once if `at_start`) in a task
    named `name`, or never if `seconds` is None. A failing round is logged as a warning with `failure` and the next
    period tries again."""
    if seconds is None:
        yield
        return
    period = seconds
    stop = asyncio.Event()

    async def rounds() -> None:
        wait = not at_start
        while not stop.is_set():
            if wait:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(period):
                        await stop.wait()
                if stop.is_set():
                    return
            wait = True
            try:
                await work()
            except Exception:
                log.warning(failure, exc_info=True)

    task = asyncio.create_task(rounds(), name=name)
    try:
        yield
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
