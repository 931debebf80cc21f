"""Transactional outbox and inbox: no event lost between a state change and its publication, none applied twice.

Producer side: write the state change and `outbox.add(event, session=...)` in one transaction
(`async with outbox.transaction() as session:`); the relay publishes pending events with confirms and marks
them published, so a process that dies between the write and the publish publishes on restart.
Consumer side: the inbox records `(queue, event id)` after a handler succeeded, so a redelivered event is
acknowledged without running the handler again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from libs.common import metrics
from libs.common.bus import Bus
from libs.common.events import Event, parse_event

log = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_FOR = timedelta(seconds=30)
INDEXES = {
    "outbox": [
        # the relay's query: unpublished events, oldest first
        IndexModel([("published_at", ASCENDING), ("created_at", ASCENDING)], name="pending"),
        # published events are kept a week for audit, then expire
        IndexModel([("expire_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
    "inbox": [
        IndexModel([("expire_at", ASCENDING)], name="expire", expireAfterSeconds=0),
    ],
}
KEEP_PUBLISHED = timedelta(days=7)
KEEP_INBOX = timedelta(days=30)


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Events waiting to be published, stored in the service's own database.

    Args:
        db: the service database (the outbox lives beside the state it announces).
        service: used for metrics and the `producer` field.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, service: str) -> None:
        self.db = db
        self.service = service
        self._collection = db["outbox"]
        self._pending = asyncio.Event()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncClientSession]:
        """A session inside a transaction; committed when the block exits cleanly, then the relay is woken."""
        async with self.db.client.start_session() as session, await session.start_transaction():
            yield session
        self._pending.set()

    async def run_transaction(self, work: Callable[[AsyncClientSession], Awaitable[T]], *, attempts: int = 30) -> T:
        """Run `work(session)` in a transaction, retrying transient conflicts with jittered back-off.

        Concurrent writers of the same documents (an API request and a consumer, two replicas) make MongoDB abort
        one transaction with the TransientTransactionError label; the whole unit is then safe to run again, so
        callers whose state change races with others should use this rather than `transaction()` alone.
        """
        for attempt in range(attempts):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except PyMongoError as exc:
                retryable = exc.has_error_label("TransientTransactionError") or exc.has_error_label(
                    "UnknownTransactionCommitResult")
                if attempt + 1 < attempts and retryable:
                    await asyncio.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))
                    continue
                raise
        raise AssertionError("unreachable")

    async def add(self, event: Event, *, session: AsyncClientSession | None = None) -> None:
        """Store an event for publication (inside the caller's transaction when `session` is given)."""
        if not event.producer:
            event = event.model_copy(update={"producer": self.service})
        await self._collection.insert_one(
            {"_id": event.id, "type": event.type, "routing_key": event.routing_key, "body": event.model_dump_json(),
             "created_at": _now(), "published_at": None, "claimed_until": None},
            session=session,
        )
        if session is None:
            self._pending.set()

    async def relay_once(self, bus: Bus) -> int:
        """Publish every pending event once; returns how many were published."""
        published = 0
        while (doc := await self._claim()) is not None:
            await bus.publish(parse_event(doc["body"]))
            await self._collection.update_one(
                {"_id": doc["_id"]}, {"$set": {"published_at": _now(), "expire_at": _now() + KEEP_PUBLISHED}}
            )
            published += 1
        await self._observe_backlog()
        return published

    async def _claim(self) -> dict[str, Any] | None:
        now = _now()
        return await self._collection.find_one_and_update(
            {"published_at": None, "$or": [{"claimed_until": None}, {"claimed_until": {"$lte": now}}]},
            {"$set": {"claimed_until": now + CLAIM_FOR}},
            sort=[("created_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def _observe_backlog(self) -> None:
        pending = await self._collection.count_documents({"published_at": None})
        oldest = await self._collection.find_one({"published_at": None}, sort=[("created_at", ASCENDING)])
        age = (_now() - oldest["created_at"]).total_seconds() if oldest else 0.0
        metrics.OUTBOX_PENDING.labels(service=self.service).set(pending)
        metrics.OUTBOX_BACKLOG_AGE.labels(service=self.service).set(max(age, 0.0))

    async def run_relay(self, bus: Bus, stop: asyncio.Event, *, poll_seconds: float = 2.0) -> None:
        """Publish until `stop` is set: at once when woken by a local write, else every `poll_seconds`.

        Stopping is by event, not by task cancellation: a cancellation that lands inside a pymongo call can be
        absorbed by the driver, and the loop would then never end.
        """
        while not stop.is_set():
            self._pending.clear()
            try:
                await self.relay_once(bus)
            except Exception:
                log.warning("outbox relay could not publish; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_seconds):
                    await self._pending.wait()

    def wake(self) -> None:
        self._pending.set()


class Inbox:
    """Ids of events a consumer has already applied."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = db["inbox"]

    async def seen(self, queue: str, event_id: str) -> bool:
        return await self._collection.find_one({"_id": f"{queue}:{event_id}"}, projection={"_id": 1}) is not None

    async def record(self, queue: str, event_id: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self._collection.insert_one(
                {"_id": f"{queue}:{event_id}", "at": _now(), "expire_at": _now() + KEEP_INBOX}
            )
