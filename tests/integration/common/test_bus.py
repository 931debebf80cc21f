"""The bus contract against the real servers: RabbitMQ (aio-pika) and the embedded MongoDB-backed bus.

Each behaviour runs on both adapters: publish → consume; a consumer killed (SIGKILL) before it acks gets the
message again and the effect happens once; a failing handler retries then dead-letters; replay from the
dead-letter queue; the outbox relay publishes an event whose writer died before publishing; and (slow) a
RabbitMQ restart loses no confirmed event.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from libs.common.bus import Bus, Consumer, Subscription, create_bus
from libs.common.config import EMBEDDED_BUS, CommonSettings
from libs.common.events import RunRegistered, RunRegisteredData
from libs.common.outbox import Inbox, Outbox

QUEUE = "test.sink"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["embedded", "amqp"])
def settings(request: pytest.FixtureRequest) -> CommonSettings:
    return request.getfixturevalue("common_settings" if request.param == "embedded" else "amqp_settings")


@pytest.fixture
async def mongo(settings: CommonSettings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    yield client
    await client.close()


@pytest.fixture
async def bus(settings: CommonSettings, mongo: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[Bus]:
    bus_db = mongo[settings.database_name("bus")] if settings.bus_url == EMBEDDED_BUS else None
    bus = create_bus(settings.bus, name="test", database=bus_db)
    await bus.connect()
    yield bus
    await bus.purge()
    await bus.close()


def _event(n: int = 0) -> RunRegistered:
    return RunRegistered(data=RunRegisteredData(run_id=f"run-{n}", run_name=f"R{n}", instrument="M00001",
                                                flowcell="FC", owner="tester", expected_files=3))


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _consume(bus: Bus, settings: CommonSettings, db: Any, handler: Any, *, max_attempts: int = 3) -> None:
    sub = Subscription(queue=QUEUE, handlers={RunRegistered: handler})
    consumer = Consumer(sub, queue=settings.bus_queue_prefix + QUEUE, inbox=Inbox(db), context=None,
                        max_attempts=max_attempts)
    await bus.consume(QUEUE, consumer, prefetch=4, routing_keys=sub.routing_keys)


async def test_published_events_are_consumed_once_each(bus: Bus, settings: CommonSettings, mongo: Any) -> None:
    db = mongo[settings.database_name("sink")]
    seen: list[str] = []

    async def handler(event: RunRegistered, context: Any) -> None:
        seen.append(event.data.run_id)

    await _consume(bus, settings, db, handler)
    events = [_event(i) for i in range(20)]
    await asyncio.gather(*(bus.publish(e) for e in events))
    await bus.publish(events[0])  # a duplicate delivery of the same event id

    async def all_seen() -> bool:
        return len(seen) >= 20
    await _eventually(all_seen)
    await asyncio.sleep(0.3)
    assert sorted(seen) == sorted(e.data.run_id for e in events)


async def test_failing_handler_retries_then_dead_letters_and_replays(
    bus: Bus, settings: CommonSettings, mongo: Any
) -> None:
    db = mongo[settings.database_name("sink")]
    calls: list[int] = []
    healthy = asyncio.Event()

    async def handler(event: RunRegistered, context: Any) -> None:
        calls.append(1)
        if not healthy.is_set():
            raise RuntimeError("downstream unavailable")

    await _consume(bus, settings, db, handler, max_attempts=3)
    event = _event(7)
    await bus.publish(event)

    async def parked() -> bool:
        return len(await bus.dead_letters(QUEUE)) == 1
    await _eventually(parked)
    assert len(calls) == 3
    [letter] = await bus.dead_letters(QUEUE)
    assert letter.event_id == event.id and letter.event_type == "RunRegistered"
    assert len(await bus.dead_letters(QUEUE)) == 1  # listing does not consume

    healthy.set()
    assert await bus.replay(QUEUE) == 1

    async def handled() -> bool:
        return len(calls) == 4
    await _eventually(handled)
    assert await bus.dead_letters(QUEUE) == []


async def test_undecodable_message_is_dead_lettered_at_once(bus: Bus, settings: CommonSettings, mongo: Any) -> None:
    db = mongo[settings.database_name("sink")]
    sub = Subscription(queue=QUEUE, handlers={RunRegistered: lambda e, c: asyncio.sleep(0)})
    consumer = Consumer(sub, queue=settings.bus_queue_prefix + QUEUE, inbox=Inbox(db), context=None, max_attempts=5)
    outcome = await consumer(b'{"type": "RunRegistered", "data": {"run_id": 1}}', 1)
    assert outcome.value == "dead"


async def test_outbox_relay_publishes_what_a_dead_writer_left(bus: Bus, settings: CommonSettings, mongo: Any) -> None:
    db = mongo[settings.database_name("sink")]
    producer_db = mongo[settings.database_name("producer")]
    seen: list[str] = []

    async def handler(event: RunRegistered, context: Any) -> None:
        seen.append(event.id)

    await _consume(bus, settings, db, handler)
    writer = Outbox(producer_db, service="producer")
    event = _event(3)
    async with writer.transaction() as session:  # state change + event, atomically; the writer then "dies"
        await producer_db["runs"].insert_one({"_id": "run-3"}, session=session)
        await writer.add(event, session=session)
    assert seen == []

    restarted = Outbox(producer_db, service="producer")
    assert await restarted.relay_once(bus) == 1
    assert await restarted.relay_once(bus) == 0  # published once, not again

    async def arrived() -> bool:
        return seen == [event.id]
    await _eventually(arrived)


async def test_aborted_transaction_leaves_no_event(settings: CommonSettings, mongo: Any) -> None:
    producer_db = mongo[settings.database_name("producer")]
    outbox = Outbox(producer_db, service="producer")
    with pytest.raises(RuntimeError):
        async with outbox.transaction() as session:
            await producer_db["runs"].insert_one({"_id": "run-9"}, session=session)
            await outbox.add(_event(9), session=session)
            raise RuntimeError("crash before commit")
    assert await producer_db["outbox"].count_documents({}) == 0
    assert await producer_db["runs"].count_documents({}) == 0


def _spawn(settings: CommonSettings, mode: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.common.consumer_proc", settings.model_dump_json(), mode],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"consuming"
    return process


def _reap(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.parametrize("mode", ["die-in-handler", "die-before-ack"])
async def test_rabbitmq_consumer_killed_before_ack_gets_the_event_again_and_applies_it_once(
    amqp_settings: CommonSettings, mode: str
) -> None:
    settings = amqp_settings
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url)
    bus = create_bus(settings.bus, name="test")
    await bus.connect()
    effects = mongo[settings.database_name("sink")]["effects"]
    dying = _spawn(settings, mode)
    event = _event(1)
    await bus.publish(event)
    assert await asyncio.to_thread(dying.wait, 30) == -9  # it SIGKILLed itself while holding the message
    _reap(dying)
    survivor = _spawn(settings, "normal")
    try:
        async def applied_once() -> bool:
            doc = await effects.find_one({"_id": event.id})
            return doc is not None and doc["applied"] == 1
        await _eventually(applied_once)
        await asyncio.sleep(0.5)
        assert (await effects.find_one({"_id": event.id}))["applied"] == 1
    finally:
        _reap(survivor)
        await bus.purge()
        await bus.close()
        await mongo.close()


async def test_embedded_lease_expiry_redelivers(common_settings: CommonSettings, monkeypatch: Any) -> None:
    from datetime import timedelta

    from libs.common import bus_embedded

    monkeypatch.setattr(bus_embedded, "LEASE", timedelta(seconds=1))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(common_settings.mongo_url)
    try:
        effects = client[common_settings.database_name("sink")]["effects"]
        publisher = create_bus(common_settings.bus, name="p", database=client[common_settings.database_name("bus")])
        await publisher.connect()
        dying = _spawn(common_settings, "die-before-ack")
        event = _event(2)
        await publisher.publish(event)
        assert await asyncio.to_thread(dying.wait, 30) == -9
        _reap(dying)
        # the survivor runs with the default 60 s lease; shorten by rewriting the dead claim's lease deadline
        await client[common_settings.database_name("bus")]["bus_messages"].update_many(
            {"state": "inflight"}, {"$set": {"visible_at": bus_embedded._now()}})
        survivor = _spawn(common_settings, "normal")
        try:
            async def drained() -> bool:
                return await client[common_settings.database_name("bus")]["bus_messages"].count_documents(
                    {"queue": common_settings.bus_queue_prefix + QUEUE}) == 0
            await _eventually(drained)
            assert (await effects.find_one({"_id": event.id}))["applied"] == 1
        finally:
            _reap(survivor)
        await publisher.purge()
        await publisher.close()
    finally:
        await client.close()


@pytest.mark.slow
async def test_rabbitmq_restart_loses_no_confirmed_event(amqp_settings: CommonSettings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(amqp_settings.mongo_url)
    bus = create_bus(amqp_settings.bus, name="restart-test")
    await bus.connect()
    seen: set[str] = set()

    async def handler(event: RunRegistered, context: Any) -> None:
        seen.add(event.id)

    try:
        await _consume(bus, amqp_settings, client[amqp_settings.database_name("sink")], handler)
        before = [_event(i) for i in range(50)]
        for e in before:
            await bus.publish(e)
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "await_startup", "--timeout", "60"], check=True, capture_output=True)
        after = [_event(100 + i) for i in range(50)]
        for e in after:
            for _ in range(100):  # the robust connection reconnects; a publish during the gap fails and is retried
                try:
                    await bus.publish(e)
                    break
                except Exception:
                    await asyncio.sleep(0.2)

        async def all_arrived() -> bool:
            return {e.id for e in before + after} <= seen
        await _eventually(all_arrived, timeout=60)
    finally:
        await bus.purge()
        await bus.close()
        await client.close()


async def test_transient_transaction_conflicts_are_retried_and_commit_once(
    settings: CommonSettings, mongo: Any
) -> None:
    from pymongo.errors import OperationFailure

    producer_db = mongo[settings.database_name("producer")]
    outbox = Outbox(producer_db, service="producer")
    attempts: list[int] = []
    event = _event(11)

    async def work(session: Any) -> str:
        attempts.append(1)
        await producer_db["runs"].insert_one({"_id": "run-11"}, session=session)
        await outbox.add(event, session=session)
        if len(attempts) < 3:  # what the server answers when a concurrent transaction wrote the same documents
            raise OperationFailure("WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]})
        return "committed"

    assert await outbox.run_transaction(work) == "committed"
    assert len(attempts) == 3
    assert await producer_db["runs"].count_documents({}) == 1  # the aborted attempts left nothing behind
    assert await producer_db["outbox"].count_documents({"_id": event.id}) == 1

    async def always_conflicts(session: Any) -> None:
        raise OperationFailure("WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]})

    with pytest.raises(OperationFailure):
        await outbox.run_transaction(always_conflicts, attempts=2)
