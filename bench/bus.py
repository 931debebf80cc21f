"""Bus throughput through real RabbitMQ: seqhub's bus vs a bare aio-pika loop, measured in the same run.

    .venv/bin/python bench/bus.py [--events 5000] [--window 200] [--amqp URL]

Publish: events/s with publisher confirms, `--window` publishes in flight (concurrent tasks, one confirm each) —
bare `exchange.publish` of the serialised event vs `AmqpBus.publish(event)` (message attributes, metrics).
Consume: events/s acked — bare consumer that decodes JSON and acks vs seqhub's `Consumer` (decode + validate
the event model, inbox check and record, handler, metrics, ack) with the inbox (a) in MongoDB on the local
MongoDB-compatible test server and (b) in memory, to separate the bus machinery from the database round trips.
Prints each figure, the baseline and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.bus import Consumer, Subscription
from libs.common.bus_amqp import AmqpBus
from libs.common.config import BusSettings
from libs.common.events import RunRegistered, RunRegisteredData
from libs.common.outbox import Inbox
from services import platform

QUEUE = "bench.sink"


def _events(n: int) -> list[RunRegistered]:
    return [RunRegistered(data=RunRegisteredData(run_id=f"run-{i}", run_name=f"R{i}", instrument="M1",
                                                 flowcell="FC", owner="bench", expected_files=10)) for i in range(n)]


async def _windowed(coros: list[Any], window: int) -> None:
    for i in range(0, len(coros), window):
        await asyncio.gather(*coros[i : i + window])


async def bare(url: str, events: list[RunRegistered], window: int) -> tuple[float, float]:
    tag = uuid.uuid4().hex[:8]
    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(f"bench.{tag}", aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = await channel.declare_queue(f"bench.{tag}.bare", durable=True)
        await queue.bind(exchange, RunRegistered.routing_key)
        started = time.perf_counter()  # serialising is part of any publish, so the baseline does it too
        await _windowed([exchange.publish(aio_pika.Message(e.model_dump_json().encode(),
                                                           delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                          RunRegistered.routing_key) for e in events], window)
        publish = len(events) / (time.perf_counter() - started)

        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=window)
        q = await consume_channel.get_queue(queue.name)
        done = asyncio.Event()
        count = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            json.loads(message.body)
            await message.ack()
            count += 1
            if count == len(events):
                done.set()

        started = time.perf_counter()
        await q.consume(on_message)
        await done.wait()
        consume = len(events) / (time.perf_counter() - started)
        await q.delete(if_unused=False, if_empty=False)
        return publish, consume
    finally:
        await connection.close()


class MemoryInbox:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def seen(self, queue: str, event_id: str) -> bool:
        return f"{queue}:{event_id}" in self.ids

    async def record(self, queue: str, event_id: str) -> None:
        self.ids.add(f"{queue}:{event_id}")


async def seqhub(url: str, events: list[RunRegistered], window: int, inbox: Any) -> tuple[float, float]:
    tag = uuid.uuid4().hex[:8]
    settings = BusSettings(url=url, exchange=f"bench.{tag}.events", dead_exchange=f"bench.{tag}.dead",
                           queue_prefix=f"bench.{tag}.")
    bus = AmqpBus(settings, name="bench")
    await bus.connect()
    await bus.declare(QUEUE, [RunRegistered.routing_key])
    try:
        started = time.perf_counter()
        await _windowed([bus.publish(e) for e in events], window)
        publish = len(events) / (time.perf_counter() - started)

        done = asyncio.Event()
        count = 0

        async def handler(event: RunRegistered, context: Any) -> None:
            nonlocal count
            count += 1
            if count == len(events):
                done.set()

        sub = Subscription(queue=QUEUE, handlers={RunRegistered: handler})
        consumer = Consumer(sub, queue=settings.queue_prefix + QUEUE, inbox=inbox, context=None, max_attempts=3)
        started = time.perf_counter()
        await bus.consume(QUEUE, consumer, prefetch=window, routing_keys=sub.routing_keys)
        await done.wait()
        consume = len(events) / (time.perf_counter() - started)
        return publish, consume
    finally:
        await bus.purge()
        await bus.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--amqp", default=os.environ.get("SEQHUB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    args = parser.parse_args()
    events = _events(args.events)
    mongo_url = f"mongodb://127.0.0.1:{platform.free_port()}/"
    server = platform.start_database(mongo_url, ":memory:")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        base_pub, base_con = await bare(args.amqp, events, args.window)
        mem_pub, mem_con = await seqhub(args.amqp, events, args.window, MemoryInbox())
        db_pub, db_con = await seqhub(args.amqp, events, args.window, Inbox(client["bench_inbox"]))
        base_pub2, base_con2 = await bare(args.amqp, events, args.window)  # bracket the runs: noise hits both
        base_pub, base_con = (base_pub + base_pub2) / 2, (base_con + base_con2) / 2
    finally:
        await client.close()
        server.terminate()
        server.wait()
    print(f"events: {args.events}, window: {args.window}")
    print(f"{'measure':<44}{'events/s':>10}{'bare':>10}{'ratio':>8}")
    for label, value, base in [
        ("publish with confirms (seqhub bus)", mem_pub, base_pub),
        ("publish with confirms (seqhub bus, 2nd run)", db_pub, base_pub),
        ("consume + ack, inbox in memory", mem_con, base_con),
        ("consume + ack, inbox in MongoDB-compatible", db_con, base_con),
    ]:
        print(f"{label:<44}{value:>10.0f}{base:>10.0f}{value / base:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
