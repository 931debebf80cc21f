"""RabbitMQ adapter of the bus (aio-pika): robust connection, confirms, per-queue retry and dead-letter queues.

Topology per queue Q (prefix applied): durable Q bound to the topic exchange with its routing keys and
`x-dead-letter-exchange` = the dead exchange (routing key Q); `Q.retry` holding messages for their back-off
(per-message TTL) and dead-lettering back to Q through the default exchange; `Q.dlq` bound to the dead
exchange with key Q. A retry is a confirmed publish to `Q.retry` followed by the ack of the original, so a
crash in between only duplicates (the inbox absorbs it), never loses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from libs.common import metrics
from libs.common.bus import DeadLetter, Deliver, Outcome, retry_delay
from libs.common.config import BusSettings
from libs.common.events import Event
from libs.common.topology import QUEUES, routing_keys

log = logging.getLogger(__name__)
ATTEMPT_HEADER = "x-seqhub-attempt"
REASON_HEADER = "x-seqhub-reason"


class AmqpBus:
    """The bus over RabbitMQ. One connection per process; a publish channel with confirms; a channel per consumer."""

    def __init__(self, settings: BusSettings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._declared: set[str] = set()

    def _q(self, queue: str) -> str:
        return f"{self.settings.queue_prefix}{queue}"

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.settings.url, client_properties={"connection_name": self.name}, timeout=self.settings.publish_timeout
        )
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            self.settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await self._publish_channel.declare_exchange(self.settings.dead_exchange, aio_pika.ExchangeType.DIRECT,
                                                     durable=True)
        for queue in QUEUES:
            await self._declare(self._publish_channel, queue)

    async def _declare(self, channel: AbstractChannel, queue: str, keys: Sequence[str] | None = None) -> AbstractQueue:
        name = self._q(queue)
        main = await channel.declare_queue(
            name, durable=True,
            arguments={"x-dead-letter-exchange": self.settings.dead_exchange, "x-dead-letter-routing-key": name},
        )
        if name not in self._declared:
            exchange = await channel.get_exchange(self.settings.exchange, ensure=False)
            for key in keys if keys is not None else routing_keys(queue):
                await main.bind(exchange, key)
            await channel.declare_queue(
                f"{name}.retry", durable=True,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name},
            )
            dlq = await channel.declare_queue(f"{name}.dlq", durable=True)
            await dlq.bind(await channel.get_exchange(self.settings.dead_exchange, ensure=False), name)
            self._declared.add(name)
        return main

    async def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        if self._publish_channel is None:
            raise RuntimeError("bus not connected")
        await self._declare(self._publish_channel, queue, routing_keys)

    def ready(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, event: Event) -> None:
        if self._exchange is None:
            raise RuntimeError("bus not connected")
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=event.id,
            type=event.type,
            correlation_id=event.correlation_id,
            app_id=event.producer or self.name,
        )
        await self._exchange.publish(message, event.routing_key, timeout=self.settings.publish_timeout)
        metrics.MESSAGES_PUBLISHED.labels(exchange=self.settings.exchange, routing_key=event.routing_key).inc()

    async def consume(self, queue: str, deliver: Deliver, *, prefetch: int, routing_keys: Sequence[str]) -> None:
        if self._connection is None:
            raise RuntimeError("bus not connected")
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        main = await self._declare(channel, queue, routing_keys)
        name = self._q(queue)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(channel, name, message, deliver)

        tag = await main.consume(on_message)
        self._consumers.append((main, tag))
        metrics.CONSUMER_UP.labels(queue=queue).set(1)

    async def _handle(
        self, channel: AbstractChannel, name: str, message: AbstractIncomingMessage, deliver: Deliver
    ) -> None:
        attempt = int(str((message.headers or {}).get(ATTEMPT_HEADER, 1)))
        outcome = await deliver(message.body, attempt)
        if outcome is Outcome.ACK:
            await message.ack()
        elif outcome is Outcome.RETRY:
            delay = retry_delay(attempt, self.settings)
            retry = aio_pika.Message(
                message.body, headers={**(message.headers or {}), ATTEMPT_HEADER: attempt + 1},
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type=message.content_type,
                message_id=message.message_id, type=message.type, correlation_id=message.correlation_id,
                expiration=max(delay, 0.001),
            )
            await channel.default_exchange.publish(retry, f"{name}.retry", timeout=self.settings.publish_timeout)
            await message.ack()
        else:
            await message.reject(requeue=False)  # → dead exchange → <queue>.dlq

    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Read up to `limit` parked messages without removing them (unacked, returned on channel close)."""
        if self._connection is None:
            raise RuntimeError("bus not connected")
        out: list[DeadLetter] = []
        channel = await self._connection.channel()
        try:
            dlq = await channel.declare_queue(f"{self._q(queue)}.dlq", durable=True)
            while len(out) < limit and (message := await dlq.get(no_ack=False, fail=False)) is not None:
                out.append(_dead_letter(queue, message))
        finally:
            await channel.close()
        metrics.DEAD_LETTERS.labels(queue=queue).set(len(out))
        return out

    async def replay(self, queue: str, limit: int | None = None) -> int:
        """Move parked messages back to their queue with a fresh attempt count; returns how many."""
        if self._connection is None:
            raise RuntimeError("bus not connected")
        name = self._q(queue)
        count = 0
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            dlq = await channel.declare_queue(f"{name}.dlq", durable=True)
            while limit is None or count < limit:
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    break
                headers = {k: v for k, v in (message.headers or {}).items() if k not in ("x-death",)}
                headers[ATTEMPT_HEADER] = 1
                await channel.default_exchange.publish(
                    aio_pika.Message(message.body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     content_type=message.content_type, message_id=message.message_id,
                                     type=message.type, correlation_id=message.correlation_id),
                    name, timeout=self.settings.publish_timeout,
                )
                await message.ack()
                count += 1
        finally:
            await channel.close()
        return count

    async def purge(self) -> None:
        if self._connection is None:
            return
        channel = await self._connection.channel()
        try:
            for name in sorted(self._declared):
                for suffix in ("", ".retry", ".dlq"):
                    await channel.queue_delete(name + suffix)
            if self.settings.queue_prefix:  # test isolation: the exchanges are per-run too
                await channel.exchange_delete(self.settings.exchange)
                await channel.exchange_delete(self.settings.dead_exchange)
        finally:
            await channel.close()

    async def close(self) -> None:
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:  # the channel may already be gone with the broker
                log.debug("cancel failed", exc_info=True)
        self._consumers.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def _dead_letter(queue: str, message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    deaths = headers.get("x-death")
    reason = "rejected"
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = str(deaths[0].get("reason", reason))
    return DeadLetter(
        queue=queue,
        event_id=message.message_id,
        event_type=message.type,
        attempts=int(str(headers.get(ATTEMPT_HEADER, 1))),
        reason=str(headers.get(REASON_HEADER, reason)),
        body=message.body,
    )
