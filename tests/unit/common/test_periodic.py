"""libs.common.periodic: the background rounds every service runs (sweeps, refreshes, key reloads)."""

import asyncio
import logging

import pytest

from libs.common.periodic import periodic

log = logging.getLogger("test.periodic")


async def test_rounds_repeat_and_a_failing_round_is_logged_then_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("database away")

    async with periodic(0.01, work, name="t", failure="round failed", log=log):
        for _ in range(200):
            if calls >= 4:
                break
            await asyncio.sleep(0.01)
    assert calls >= 4
    failed = [r for r in caplog.records if r.message == "round failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None


async def test_at_start_runs_at_once_otherwise_after_one_period() -> None:
    ran: list[str] = []

    async def now() -> None:
        ran.append("now")

    async def later() -> None:
        ran.append("later")

    async with (
        periodic(3600, now, name="a", failure="x", log=log, at_start=True),
        periodic(3600, later, name="b", failure="x", log=log),
    ):
        await asyncio.sleep(0.05)
    assert ran == ["now"]


async def test_leaving_lets_a_round_in_flight_finish_instead_of_cancelling_it() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.1)
        finished.set()

    async with periodic(3600, work, name="t", failure="x", log=log, at_start=True):
        await started.wait()
    assert finished.is_set()


async def test_a_round_that_outlives_the_grace_is_cancelled() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.sleep(3600)

    loop = asyncio.get_running_loop()
    async with periodic(3600, stuck, name="t", failure="x", log=log, at_start=True, grace=0.05):
        await started.wait()
        begun = loop.time()
    assert loop.time() - begun < 1


async def test_no_period_runs_nothing() -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    names = {t.get_name() for t in asyncio.all_tasks()}
    async with periodic(None, work, name="off", failure="x", log=log, at_start=True):
        await asyncio.sleep(0.05)
        assert "off" not in {t.get_name() for t in asyncio.all_tasks()} - names
    assert ran == []
