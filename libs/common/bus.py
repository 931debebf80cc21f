"""The message bus: one interface, two adapters (RabbitMQ and the embedded MongoDB-backed bus).

Contract, identical for both adapters:
- `publish(event)` returns only once the broker has durably accepted the event (publisher confirm / write
  acknowledged); messages are persistent.
- A subscription names a queue of `topology.QUEUES` and a handler per event type. Delivery is at least once;
  the `Consumer` wrapper deduplicates through the inbox (event ids already processed), acks only after the
  handler's effect is stored, retries a failing handler with exponential back-off, and dead-letters the
  message after `max_attempts` (or at once for a payload that is not a valid event). Operators list and
  replay dead letters (`seqhub admin dlq list|replay`).

Handlers are `async def handler(event, context) -> None` and must be idempotent: a crash after the effect
but before the inbox record re-runs them. `context` is whatever the service passes (its aiohttp app).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from libs.common import metrics
from libs.common.config import EMBEDDED_BUS, BusSettings
from libs.common.events import Event, UnknownEvent, parse_event
from libs.common.logs import request_id_var

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A consumer: its queue (`<service>.<purpose>`, declared in `topology.QUEUES`) and a handler per event class."""

    queue: str
    handlers: Mapping[type[Event], Handler]
    prefetch: int | None = None
    """Messages handled concurrently; default from settings. Use 1 for heavy handlers (demultiplexing)."""

    @property
    def routing_keys(self) -> tuple[str, ...]:
        return tuple(sorted({cls.routing_key for cls in self.handlers}))


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class DeadLetter:
    """A parked message, as an operator sees it."""

    queue: str
    event_id: str | None
    event_type: str | None
    attempts: int
    reason: str
    body: bytes = field(repr=False)


class InboxPort(Protocol):
    async def seen(self, queue: str, event_id: str) -> bool: ...
    async def record(self, queue: str, event_id: str) -> None: ...


Deliver = Callable[[bytes, int], Awaitable[Outcome]]
"""What an adapter calls per delivery: (body, attempt number starting at 1) → what to do with the message."""


class Bus(Protocol):
    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, event: Event) -> None: ...
    async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        """Declare a durable queue and its bindings without consuming (events published from now on wait in it)."""

    async def consume(self, queue: str, deliver: Deliver, *, prefetch: int, routing_keys: Sequence[str]) -> None:
        """Declare `queue` bound to `routing_keys` (if new) and consume it in the background until `close()`."""

    def ready(self) -> bool: ...
    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]: ...
    async def replay(self, queue: str, limit: int | None = None) -> int: ...
    async def purge(self) -> None:
        """Delete this bus's queues (tests)."""


def retry_delay(attempt: int, settings: BusSettings) -> float:
    """Exponential back-off with full jitter, capped (seconds before attempt `attempt + 1`)."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Consumer:
    """Decode, deduplicate, dispatch, and decide ack / retry / dead-letter for one subscription.

    Args:
        subscription: queue and handlers.
        queue: the physical queue name (prefix applied).
        inbox: processed-event store of the consuming service.
        context: passed to handlers as their second argument.
        max_attempts: deliveries before a failing message is dead-lettered.
    """

    def __init__(
        self, subscription: Subscription, *, queue: str, inbox: InboxPort, context: Any, max_attempts: int
    ) -> None:
        self.subscription = subscription
        self.queue = queue
        self.inbox = inbox
        self.context = context
        self.max_attempts = max_attempts

    async def __call__(self, body: bytes, attempt: int) -> Outcome:
        started = time.perf_counter()
        outcome = await self._process(body, attempt)
        metrics.MESSAGES_CONSUMED.labels(queue=self.subscription.queue, outcome=outcome.value).inc()
        metrics.MESSAGE_SECONDS.labels(queue=self.subscription.queue).observe(time.perf_counter() - started)
        return outcome

    async def _process(self, body: bytes, attempt: int) -> Outcome:
        try:
            event = parse_event(body)
        except (UnknownEvent, ValidationError) as exc:
            log.error("undecodable message dead-lettered", extra={"queue": self.queue, "error": str(exc)[:500]})
            return Outcome.DEAD
        handler = self.subscription.handlers.get(type(event))
        if handler is None:
            return Outcome.ACK
        token = request_id_var.set(event.correlation_id or event.id)
        try:
            if await self.inbox.seen(self.queue, event.id):
                log.info("duplicate event skipped", extra={"event_id": event.id, "queue": self.queue})
                return Outcome.ACK
            await handler(event, self.context)
            await self.inbox.record(self.queue, event.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            final = attempt >= self.max_attempts
            log.exception(
                "handler failed",
                extra={"event_id": event.id, "event_type": event.type, "queue": self.queue, "attempt": attempt,
                       "dead_lettered": final},
            )
            return Outcome.DEAD if final else Outcome.RETRY
        finally:
            request_id_var.reset(token)
        log.info("event handled", extra={"event_id": event.id, "event_type": event.type, "queue": self.queue})
        return Outcome.ACK


def create_bus(settings: BusSettings, *, name: str, database: Any = None) -> Bus:
    """The adapter for `settings.url`: `amqp://…`/`amqps://…` → RabbitMQ, `embedded` → MongoDB-backed.

    Args:
        name: connection name (service), visible in the broker.
        database: the AsyncDatabase holding the embedded bus's collections (embedded only).
    """
    if settings.url.startswith(("amqp://", "amqps://")):
        from libs.common.bus_amqp import AmqpBus

        return AmqpBus(settings, name=name)
    if settings.url == EMBEDDED_BUS:
        from libs.common.bus_embedded import EmbeddedBus

        if database is None:
            raise ValueError("the embedded bus needs a database")
        return EmbeddedBus(settings, database=database)
    raise ValueError(f"unsupported bus URL {settings.url!r}: use amqp://… or {EMBEDDED_BUS!r}")
