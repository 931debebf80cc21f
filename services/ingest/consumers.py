"""Event consumers of the ingest service: the subscriptions it declares (queues in libs.common.topology).

The demultiplexer (`services.ingest.demux.worker`) consumes RunUploaded; a deployment that runs the
demultiplexer elsewhere (or a test of upload alone) turns it off with `SEQHUB_INGEST_DEMULTIPLEX=false`.
"""

from __future__ import annotations

from libs.common.bus import Subscription
from services.ingest.demux.worker import SUBSCRIPTION as DEMULTIPLEXER


def subscriptions(*, demultiplex: bool) -> list[Subscription]:
    return [DEMULTIPLEXER] if demultiplex else []
