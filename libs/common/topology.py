"""The bus topology, declared once in code: which durable queue receives which events.

Queues are named `<service>.<purpose>`; each has a `<queue>.dlq` on the dead-letter exchange. Every process
declares the whole table when it connects, so an event published before its consumer first starts is
still queued (no loss on first deployment). A consumer subscribes by naming its queue here.
"""

from __future__ import annotations

from libs.common.events import (
    AnalysisPublished,
    AnalysisWithdrawn,
    DemultiplexingFailed,
    Event,
    ExpressionIndexed,
    RunRegistered,
    RunUploaded,
    SamplesDemultiplexed,
    TokenRevoked,
    VariantsIndexed,
)

SERVICES = ("auth", "ingest", "repository", "beacon", "rnaget")

QUEUES: dict[str, tuple[type[Event], ...]] = {
    "ingest.demultiplexer": (RunUploaded,),
    "repository.ingest": (RunRegistered, SamplesDemultiplexed, DemultiplexingFailed),
    "repository.index-status": (VariantsIndexed, ExpressionIndexed),
    "beacon.analyses": (AnalysisPublished, AnalysisWithdrawn),
    "rnaget.analyses": (AnalysisPublished, AnalysisWithdrawn),
    **{f"{service}.revocations": (TokenRevoked,) for service in SERVICES},
}


def routing_keys(queue: str) -> tuple[str, ...]:
    """Routing keys bound to a queue of the table (KeyError for an undeclared queue)."""
    return tuple(cls.routing_key for cls in QUEUES[queue])


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` is zero or more words."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])
