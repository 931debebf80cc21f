"""The embedded bus: the same contract as RabbitMQ, kept durably in MongoDB — for the one-process mode.

Collections (in the bus database): `bus_bindings` (queue → routing keys, declared like durable queues, so an
event published while a consumer is down still waits for it) and `bus_messages` (one document per queue
per event: ready → inflight with a lease → deleted on ack, back to ready with a delay on retry, or dead).
A crashed process's in-flight messages come back when their lease expires; a running handler renews its
lease. In-process publishes wake consumers at once; otherwise they poll with a short back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from libs.common import metrics
from libs.common.bus import DeadLetter, Deliver, Outcome, retry_delay
from libs.common.config import BusSettings
from libs.common.events import Event
from libs.common.topology import QUEUES, routing_keys, topic_matches

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
IDLE_POLL_MAX = 1.0
INDEXES = {
    "bus_messages": [
        # the claim query: next ready (or lease-expired) message of a queue, oldest first
        IndexModel([("queue", ASCENDING), ("state", ASCENDING), ("visible_at", ASCENDING)], name="claim"),
    ],
}
_wakeups: dict[str, set[asyncio.Event]] = {}
"""Process-wide: queue key → events of the consumers polling it, set by in-process publishes."""


def _now() -> datetime:
    return datetime.now(UTC)


class EmbeddedBus:
    """The bus kept in MongoDB collections of `database`."""

    def __init__(self, settings: BusSettings, *, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.settings = settings
        self.db = database
        self._messages = database["bus_messages"]
        self._bindings = database["bus_bindings"]
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._connected = False
        self._declared: set[str] = set()

    def _q(self, queue: str) -> str:
        return f"{self.settings.queue_prefix}{queue}"

    def _wake_key(self, name: str) -> str:
        return f"{self.db.name}/{name}"

    async def connect(self) -> None:
        await self._messages.create_indexes(INDEXES["bus_messages"])
        for queue in QUEUES:
            await self._declare(queue)
        self._connected = True

    async def _declare(self, queue: str, keys: Sequence[str] | None = None) -> None:
        name = self._q(queue)
        if name not in self._declared:
            bound = list(keys) if keys is not None else list(routing_keys(queue))
            await self._bindings.update_one(
                {"_id": name},
                {"$set": {"routing_keys": bound, "exchange": self.settings.exchange}},
                upsert=True,
            )
            self._declared.add(name)

    async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        await self._declare(queue, routing_keys)

    def ready(self) -> bool:
        return self._connected and not self._closing.is_set()

    async def publish(self, event: Event) -> None:
        body = event.model_dump_json()
        queues = [
            b["_id"] async for b in self._bindings.find({"exchange": self.settings.exchange})
            if any(topic_matches(pattern, event.routing_key) for pattern in b["routing_keys"])
        ]
        now = _now()
        if queues:
            await self._messages.insert_many([
                {"queue": q, "state": "ready", "visible_at": now, "attempt": 1, "body": body,
                 "event_id": event.id, "event_type": event.type, "routing_key": event.routing_key, "created_at": now}
                for q in queues
            ])
        metrics.MESSAGES_PUBLISHED.labels(exchange=self.settings.exchange, routing_key=event.routing_key).inc()
        for q in queues:
            for waiter in _wakeups.get(self._wake_key(q), ()):
                waiter.set()

    async def consume(self, queue: str, deliver: Deliver, *, prefetch: int, routing_keys: Sequence[str]) -> None:
        await self._declare(queue, routing_keys)
        name = self._q(queue)
        wake = asyncio.Event()
        _wakeups.setdefault(self._wake_key(name), set()).add(wake)
        task = asyncio.create_task(self._consume_loop(queue, name, deliver, prefetch, wake), name=f"bus:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        metrics.CONSUMER_UP.labels(queue=queue).set(1)

    async def _consume_loop(self, queue: str, name: str, deliver: Deliver, prefetch: int, wake: asyncio.Event) -> None:
        slots = asyncio.Semaphore(prefetch)
        running: set[asyncio.Task[None]] = set()
        idle = 0.05
        try:
            while not self._closing.is_set():
                await slots.acquire()
                doc = await self._claim(name)
                if doc is None:
                    slots.release()
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(idle):
                            await wake.wait()
                    idle = min(idle * 2, IDLE_POLL_MAX)
                    continue
                idle = 0.05
                task = asyncio.create_task(self._run(doc, deliver, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            _wakeups.get(self._wake_key(name), set()).discard(wake)
            metrics.CONSUMER_UP.labels(queue=queue).set(0)
            if running:
                await asyncio.gather(*running, return_exceptions=True)  # let in-flight messages finish

    async def _claim(self, name: str) -> dict[str, Any] | None:
        now = _now()
        return await self._messages.find_one_and_update(
            {"queue": name, "state": {"$in": ["ready", "inflight"]}, "visible_at": {"$lte": now}},
            {"$set": {"state": "inflight", "visible_at": now + LEASE}},
            sort=[("visible_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def _run(self, doc: dict[str, Any], deliver: Deliver, slots: asyncio.Semaphore) -> None:
        finished = asyncio.Event()
        renew = asyncio.create_task(self._renew_lease(doc["_id"], finished))
        try:
            outcome = await deliver(doc["body"].encode(), int(doc["attempt"]))
        except Exception:
            log.exception("delivery crashed", extra={"queue": doc["queue"]})
            outcome = Outcome.RETRY
        finally:
            finished.set()
            slots.release()
        await renew
        if outcome is Outcome.ACK:
            await self._messages.delete_one({"_id": doc["_id"]})
        elif outcome is Outcome.RETRY:
            delay = retry_delay(int(doc["attempt"]), self.settings)
            await self._messages.update_one(
                {"_id": doc["_id"]},
                {"$set": {"state": "ready", "visible_at": _now() + timedelta(seconds=delay)}, "$inc": {"attempt": 1}},
            )
        else:
            await self._messages.update_one({"_id": doc["_id"]}, {"$set": {"state": "dead", "dead_at": _now()}})

    async def _renew_lease(self, message_id: Any, finished: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LEASE.total_seconds() / 3):
                    await finished.wait()
            if finished.is_set():
                return
            await self._messages.update_one(
                {"_id": message_id, "state": "inflight"}, {"$set": {"visible_at": _now() + LEASE}}
            )

    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        docs = self._messages.find({"queue": self._q(queue), "state": "dead"}).sort("dead_at", ASCENDING).limit(limit)
        out = [
            DeadLetter(queue=queue, event_id=d.get("event_id"), event_type=d.get("event_type"),
                       attempts=int(d["attempt"]), reason="rejected", body=d["body"].encode())
            async for d in docs
        ]
        metrics.DEAD_LETTERS.labels(queue=queue).set(len(out))
        return out

    async def replay(self, queue: str, limit: int | None = None) -> int:
        name = self._q(queue)
        count = 0
        while limit is None or count < limit:
            doc = await self._messages.find_one_and_update(
                {"queue": name, "state": "dead"},
                {"$set": {"state": "ready", "visible_at": _now(), "attempt": 1}, "$unset": {"dead_at": ""}},
            )
            if doc is None:
                break
            count += 1
        for waiter in _wakeups.get(self._wake_key(name), ()):
            waiter.set()
        return count

    async def purge(self) -> None:
        names = list(self._declared)
        await self._messages.delete_many({"queue": {"$in": names}})
        await self._bindings.delete_many({"_id": {"$in": names}})

    async def close(self) -> None:
        self._closing.set()
        for waiters in _wakeups.values():
            for waiter in waiters:
                waiter.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._connected = False
