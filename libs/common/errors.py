"""Domain errors: typed on the inside, rendered at the edge by `web.error_middleware`.

Service code raises these (or subclasses) and never builds HTTP responses for failures itself. Each
carries the HTTP status the edge should use and a message safe to show the client. No aiohttp import here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SeqhubError(Exception):
    """A failure the client should hear about, with a status and a human-readable message.

    Args:
        message: what went wrong and where, for the client.
        extra: additional members of the error body (e.g. field errors), JSON-serialisable.
        headers: response headers the edge must add (e.g. WWW-Authenticate, Retry-After).
    """

    status = 500
    title = "Internal Server Error"

    def __init__(
        self, message: str, *, extra: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class BadRequest(SeqhubError):
    status = 400
    title = "Bad Request"


class Unauthorized(SeqhubError):
    status = 401
    title = "Unauthorized"


class Forbidden(SeqhubError):
    status = 403
    title = "Forbidden"


class NotFound(SeqhubError):
    status = 404
    title = "Not Found"


class NotAcceptable(SeqhubError):
    status = 406
    title = "Not Acceptable"


class Conflict(SeqhubError):
    status = 409
    title = "Conflict"


class Gone(SeqhubError):
    status = 410
    title = "Gone"


class PreconditionFailed(SeqhubError):
    status = 412
    title = "Precondition Failed"


class PayloadTooLarge(SeqhubError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(SeqhubError):
    status = 415
    title = "Unsupported Media Type"


class Locked(SeqhubError):
    status = 423
    title = "Locked"


class TooManyRequests(SeqhubError):
    status = 429
    title = "Too Many Requests"


class NotImplementedYet(SeqhubError):
    status = 501
    title = "Not Implemented"


class ServiceUnavailable(SeqhubError):
    status = 503
    title = "Service Unavailable"
