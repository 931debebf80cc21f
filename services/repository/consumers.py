"""Event consumers of the repository service: demultiplexed runs become INSDC metadata.

Queues (libs.common.topology): `repository.ingest` (RunRegistered, SamplesDemultiplexed, DemultiplexingFailed)
and `repository.index-status` (VariantsIndexed, ExpressionIndexed). Handlers are idempotent.
"""

from __future__ import annotations

import logging

from aiohttp import web

from libs.common.bus import Subscription
from libs.common.events import (
    DemultiplexingFailed,
    Event,
    ExpressionIndexed,
    RunRegistered,
    SamplesDemultiplexed,
    VariantsIndexed,
)
from services.repository import keys
from services.repository.registration import register_demultiplexed_run

log = logging.getLogger(__name__)


async def on_samples_demultiplexed(event: SamplesDemultiplexed, app: web.Application) -> None:
    await register_demultiplexed_run(event.data, store=app[keys.resource_store])


async def on_noted(event: Event, app: web.Application) -> None:
    """Events the repository only records in its log (run registered, demux failed, index ready)."""
    log.info(
        "event noted",
        extra={"event_type": event.type, "event_id": event.id, "data": event.data.model_dump(mode="json")},
    )


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(
        queue="repository.ingest",
        handlers={
            SamplesDemultiplexed: on_samples_demultiplexed,
            RunRegistered: on_noted,
            DemultiplexingFailed: on_noted,
        },
        prefetch=1,
    ),
    Subscription(queue="repository.index-status", handlers={VariantsIndexed: on_noted, ExpressionIndexed: on_noted}),
]
