"""Prometheus metrics shared by every service: HTTP RED, bus, outbox. Names follow docs/operations.md.

Metrics live in the process-wide default registry (one process = one scrape target); labels are low
cardinality only (route templates, never concrete paths or ids). Services add domain metrics in their own
modules with the `seqhub_<service>_` prefix.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

HTTP_REQUESTS = Counter(
    "http_server_requests", "HTTP requests served.", ["service", "method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time to produce the response headers, by route template.",
    ["service", "method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge("http_server_requests_in_progress", "Requests being served.", ["service"])

MESSAGES_PUBLISHED = Counter(
    "seqhub_messages_published", "Events published with a broker confirm.", ["exchange", "routing_key"]
)
MESSAGES_CONSUMED = Counter(
    "seqhub_messages_consumed", "Deliveries handled, by outcome (ack, retry, dead).", ["queue", "outcome"]
)
MESSAGE_SECONDS = Histogram(
    "seqhub_message_processing_seconds", "Time spent handling one delivery.", ["queue"], buckets=LATENCY_BUCKETS
)
CONSUMER_UP = Gauge("seqhub_consumer_up", "1 while the consumer of a queue is attached.", ["queue"])
DEAD_LETTERS = Gauge("seqhub_dead_letters", "Messages parked in the dead-letter queue (last seen).", ["queue"])
OUTBOX_BACKLOG_AGE = Gauge(
    "seqhub_outbox_backlog_age_seconds", "Age of the oldest event not yet published (0 when empty).", ["service"]
)
OUTBOX_PENDING = Gauge("seqhub_outbox_pending", "Events written but not yet published.", ["service"])


def render() -> tuple[bytes, str]:
    """The exposition text of the default registry and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
