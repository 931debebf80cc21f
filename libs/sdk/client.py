"""A small async HTTP client for seqhub's APIs, shared by the SDK commands.

`SeqhubClient` holds the base URL (e.g. `http://127.0.0.1:8080`), an optional bearer token and one
aiohttp session; `request()` sends a call and turns error responses (problem+json, RNAget/Beacon bodies,
plain text) into `ApiError` with the status and the server's message. `backoff()` yields retry delays
with exponential growth and full jitter for callers that retry transient failures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
TRANSIENT_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """An HTTP error answer from a seqhub service."""

    def __init__(
        self, status: int, message: str, *, body: Any = None, method: str = "", url: str = ""
    ) -> None:
        super().__init__(f"{method} {url} → {status}: {message}".strip())
        self.status = status
        self.message = message
        self.body = body

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUSES


def error_message(status: int, text: str) -> tuple[str, Any]:
    """The human message of an error body (problem+json `detail`, `{"message"}`, Beacon `error`)."""
    try:
        body = json.loads(text) if text else None
    except json.JSONDecodeError:
        return (text.strip()[:500] or f"HTTP {status}"), None
    if isinstance(body, dict):
        for key in ("detail", "message", "errorMessage", "error_description", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value, body
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("errorMessage"), str):
            return error["errorMessage"], body
        if isinstance(error, str):
            return error, body
    return f"HTTP {status}", body


def backoff(*, base: float = 0.5, cap: float = 30.0, attempts: int = 8) -> Iterator[float]:
    """Delays before each retry: full jitter over an exponentially growing window."""
    for attempt in range(attempts):
        yield random.uniform(0, min(cap, base * 2**attempt))


class SeqhubClient:
    """Async client for one seqhub deployment.

    Args:
        base_url: the deployment's root URL (services are under /auth, /ingest, ...).
        token: bearer access token sent with every request, if given.
        session: an existing aiohttp session to use (not closed by this client).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        connections: int = 100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own_session = session is None
        self._session = session
        self._connections = connections

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=DEFAULT_TIMEOUT, connector=aiohttp.TCPConnector(limit=self._connections)
            )
        return self._session

    async def __aenter__(self) -> SeqhubClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, Mapping[str, str], Any]:
        """Send a request; returns (status, headers, decoded JSON or None); raises ApiError on >= 400. Header
        names are matched case-insensitively (aiohttp's own mapping; a proxy may lower-case them)."""
        url = self.url(path)
        async with self.session.request(
            method, url, json=json_body, params=params, headers=self.headers(headers), data=data
        ) as response:
            text = await response.text()
            if response.status >= 400:
                message, body = error_message(response.status, text)
                raise ApiError(response.status, message, body=body, method=method, url=url)
            payload = None
            if text and "json" in response.headers.get("Content-Type", ""):
                payload = json.loads(text)
            return response.status, response.headers, payload

    async def get_json(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        return (await self.request("GET", path, params=params))[2]

    async def post_json(self, path: str, body: Any) -> Any:
        return (await self.request("POST", path, json_body=body))[2]

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)
