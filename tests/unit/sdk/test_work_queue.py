"""The agent's work queue: many small files at once, at most `large_limit` large ones."""

import asyncio

from libs.sdk.uploader import WorkQueue


async def test_small_files_go_while_large_ones_wait_for_a_slot() -> None:
    queue = WorkQueue(large_limit=2)
    for name in ("L1", "L2", "L3"):
        await queue.put(name, large=True)
    for name in ("s1", "s2"):
        await queue.put(name, large=False)
    taken = [await queue.take() for _ in range(4)]
    # large first while slots are free, then small ones: the third large file waits
    assert taken == [("L1", True), ("L2", True), ("s1", False), ("s2", False)]
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not waiting.done()  # only L3 is left and both large slots are taken
    await queue.finished(False)  # a small file ending frees no large slot
    await asyncio.sleep(0)
    assert not waiting.done()
    await queue.finished(True)
    assert await asyncio.wait_for(waiting, 1) == ("L3", True)
    assert queue.large_running == 2


async def test_a_waiting_worker_takes_a_small_file_that_arrives() -> None:
    queue = WorkQueue(large_limit=1)
    await queue.put("L1", large=True)
    await queue.put("L2", large=True)
    assert await queue.take() == ("L1", True)
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    await queue.put("s1", large=False)
    assert await asyncio.wait_for(waiting, 1) == ("s1", False)


async def test_close_ends_workers_only_when_nothing_is_left() -> None:
    queue = WorkQueue(large_limit=1)
    await queue.put("L1", large=True)
    await queue.put("L2", large=True)
    assert await queue.take() == ("L1", True)
    await queue.close()
    second = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not second.done()  # L2 is still to do, after L1
    await queue.finished(True)
    assert await asyncio.wait_for(second, 1) == ("L2", True)
    await queue.finished(True)
    assert await asyncio.wait_for(queue.take(), 1) is None


async def test_close_wakes_a_worker_already_waiting() -> None:
    queue = WorkQueue(large_limit=1)
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    await queue.close()
    assert await asyncio.wait_for(waiting, 1) is None
