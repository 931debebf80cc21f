"""Structured JSON logging with the request id of the current task attached to every line.

`configure_logging` is called once by a process entry point. The request id travels in a contextvar set
by the request-id middleware (and by the consumer wrapper from an event's correlation id), so every log
line written while serving a request carries it without passing it around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("seqhub_request_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route the root logger to stderr, as JSON lines (default) or plain text for a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    fmt: logging.Formatter = JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aio_pika", "aiormq", "pymongo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
