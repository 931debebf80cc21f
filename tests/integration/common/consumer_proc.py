"""A consumer process for crash tests: `python -m tests.integration.common.consumer_proc SETTINGS_JSON MODE`.

It consumes queue `test.sink` and applies each RunRegistered event by `$inc`-ing `applied` on a document keyed by
the event id (so a double application shows as 2). MODE: `normal`; `die-in-handler` (SIGKILL itself before the
effect); `die-before-ack` (SIGKILL itself after the handler and inbox record, before the ack).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from libs.common.bus import Consumer, Outcome, Subscription, create_bus
from libs.common.config import EMBEDDED_BUS, CommonSettings
from libs.common.db import mongo_client
from libs.common.events import RunRegistered
from libs.common.outbox import Inbox

QUEUE = "test.sink"


async def main(settings: CommonSettings, mode: str) -> None:
    async with mongo_client(settings.mongo_url, timeout_ms=5000, app_name="consumer-proc") as client:
        db = client[settings.database_name("sink")]

        async def apply(event: RunRegistered, context: Any) -> None:
            if mode == "die-in-handler":
                os.kill(os.getpid(), signal.SIGKILL)
            await db["effects"].update_one({"_id": event.id}, {"$inc": {"applied": 1}}, upsert=True)

        bus_db = client[settings.database_name("bus")] if settings.bus_url == EMBEDDED_BUS else None
        bus = create_bus(settings.bus, name="consumer-proc", database=bus_db)
        await bus.connect()
        sub = Subscription(queue=QUEUE, handlers={RunRegistered: apply})
        consumer = Consumer(sub, queue=settings.bus_queue_prefix + QUEUE, inbox=Inbox(db), context=None,
                            max_attempts=5)

        async def deliver(body: bytes, attempt: int) -> Outcome:
            outcome = await consumer(body, attempt)
            if mode == "die-before-ack":
                os.kill(os.getpid(), signal.SIGKILL)
            return outcome

        await bus.consume(QUEUE, deliver, prefetch=1, routing_keys=sub.routing_keys)
        print("consuming", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(CommonSettings.model_validate_json(sys.argv[1]), sys.argv[2]))
