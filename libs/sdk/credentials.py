"""Tokens for the `seqhub` command line: device-flow login, a per-user token cache, refresh with rotation.

The cache lives in `$SEQHUB_CONFIG_DIR` (default `$XDG_CONFIG_HOME/seqhub`, else `~/.config/seqhub`) as
`credentials.json`, one entry per platform URL, written atomically with mode 0600. `get_access_token(url)`
is what every CLI command calls: `SEQHUB_TOKEN` wins; else client credentials from `SEQHUB_CLIENT_ID` /
`SEQHUB_CLIENT_SECRET` (services, CI); else the cached login, refreshed (and the rotated refresh token
saved) when it is about to expire.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

CLI_CLIENT_ID = "seqhub-cli"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_SCOPE = "repository:read repository:write ingest:upload rnaget:read beacon:registered offline_access"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EXPIRY_MARGIN = 30.0


class LoginError(Exception):
    """Login failed or is needed; the message says what to do."""


@dataclass
class Credentials:
    """A cached login for one platform URL."""

    access_token: str
    expires_at: float
    scope: str
    refresh_token: str | None = None
    client_id: str = CLI_CLIENT_ID


def platform_url(url: str | None = None) -> str:
    return (url or os.environ.get("SEQHUB_URL") or DEFAULT_URL).rstrip("/")


def auth_url(url: str | None = None) -> str:
    """The auth service under a platform URL (`<url>/auth`, the issuer)."""
    return platform_url(url) + "/auth"


def config_dir() -> Path:
    if explicit := os.environ.get("SEQHUB_CONFIG_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "seqhub"


def _cache_file() -> Path:
    return config_dir() / "credentials.json"


def _read_all() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LoginError(
            f"{_cache_file()}: unreadable credentials cache ({exc}); run `seqhub logout`"
        ) from None
    return data if isinstance(data, dict) else {}


def _write_all(data: Mapping[str, Any]) -> None:
    """Write the cache atomically (temp file + rename), readable by the owner only."""
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(url: str | None = None) -> Credentials | None:
    entry = _read_all().get(platform_url(url))
    if not isinstance(entry, dict):
        return None
    try:
        return Credentials(**entry)
    except TypeError:
        return None


def save(url: str | None, creds: Credentials) -> None:
    data = _read_all()
    data[platform_url(url)] = asdict(creds)
    _write_all(data)


def forget(url: str | None = None) -> Credentials | None:
    data = _read_all()
    entry = data.pop(platform_url(url), None)
    _write_all(data)
    return Credentials(**entry) if isinstance(entry, dict) else None


def _from_token_response(
    body: Mapping[str, Any], client_id: str, previous: Credentials | None = None
) -> Credentials:
    return Credentials(
        access_token=str(body["access_token"]),
        expires_at=time.time() + float(body.get("expires_in", 300)),
        scope=str(body.get("scope", previous.scope if previous else "")),
        refresh_token=body.get("refresh_token") or (previous.refresh_token if previous else None),
        client_id=client_id,
    )


async def _post_form(
    http: aiohttp.ClientSession, url: str, data: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    try:
        async with http.post(
            url, data=dict(data), headers=dict(headers or {}), timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            body = await response.json(content_type=None)
            return response.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise LoginError(f"cannot reach the auth service at {url}: {exc}") from None


async def device_login(
    url: str | None = None,
    *,
    scope: str = DEFAULT_SCOPE,
    client_id: str = CLI_CLIENT_ID,
    prompt: Callable[[dict[str, Any]], None] = lambda grant: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Credentials:
    """RFC 8628 device login: show the code (via `prompt`), poll until approved, cache the tokens.

    Raises:
        LoginError: denied, expired, or the service is unreachable / refuses the client.
    """
    base = auth_url(url)
    async with aiohttp.ClientSession() as http:
        status, grant = await _post_form(
            http, f"{base}/device_authorization", {"client_id": client_id, "scope": scope}
        )
        if status != 200:
            raise LoginError(f"the auth service refused the login: {grant.get('error_description') or grant}")
        prompt(grant)
        interval = float(grant.get("interval", 5))
        deadline = time.monotonic() + float(grant.get("expires_in", 600))
        while time.monotonic() < deadline:
            await sleep(interval)
            status, body = await _post_form(
                http,
                f"{base}/token",
                {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": client_id},
            )
            if status == 200:
                creds = _from_token_response(body, client_id)
                save(url, creds)
                return creds
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":  # RFC 8628 §3.5: add 5 seconds to the interval from now on
                interval += 5
                continue
            if error == "access_denied":
                raise LoginError("the sign-in was denied in the browser")
            if error == "expired_token":
                break
            raise LoginError(f"login failed: {error}: {body.get('error_description', '')}")
    raise LoginError("the code expired before it was approved; run `seqhub login` again")


async def refresh(url: str | None, creds: Credentials) -> Credentials:
    """Exchange the refresh token (rotated by the server) for a new access token, and cache both."""
    if not creds.refresh_token:
        raise LoginError("the login expired; run `seqhub login`")
    async with aiohttp.ClientSession() as http:
        status, body = await _post_form(
            http,
            f"{auth_url(url)}/token",
            {
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token,
                "client_id": creds.client_id,
            },
        )
    if status != 200:
        forget(url)
        raise LoginError("the login is no longer valid; run `seqhub login`")
    fresh = _from_token_response(body, creds.client_id, creds)
    save(url, fresh)
    return fresh


async def client_credentials_token(
    url: str | None, client_id: str, secret: str, scope: str | None = None
) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    async with aiohttp.ClientSession() as http:
        status, body = await _post_form(
            http,
            f"{auth_url(url)}/token",
            data,
            {"Authorization": aiohttp.encode_basic_auth(client_id, secret)},
        )
    if status != 200:
        raise LoginError(f"client {client_id!r} could not get a token: {body.get('error', status)}")
    return str(body["access_token"])


async def get_access_token(url: str | None = None, *, scope: str | None = None) -> str:
    """A valid access token for the platform at `url`, for any CLI command.

    Raises:
        LoginError: nobody is logged in (the message says to run `seqhub login`).
    """
    if token := os.environ.get("SEQHUB_TOKEN"):
        return token
    client_id, secret = os.environ.get("SEQHUB_CLIENT_ID"), os.environ.get("SEQHUB_CLIENT_SECRET")
    if client_id and secret:
        return await client_credentials_token(url, client_id, secret, scope)
    creds = load(url)
    if creds is None:
        raise LoginError(f"not logged in to {platform_url(url)}; run `seqhub login`")
    if creds.expires_at - EXPIRY_MARGIN > time.time():
        return creds.access_token
    return (await refresh(url, creds)).access_token


async def logout(url: str | None = None) -> tuple[bool, bool]:
    """Delete the cache entry and revoke its refresh token (RFC 7009). Returns (was logged in, revoked)."""
    creds = forget(url)
    if creds is None:
        return False, False
    if not creds.refresh_token:
        return True, False
    try:
        async with aiohttp.ClientSession() as http:
            status, _ = await _post_form(
                http,
                f"{auth_url(url)}/revoke",
                {
                    "token": creds.refresh_token,
                    "token_type_hint": "refresh_token",
                    "client_id": creds.client_id,
                },
            )
    except LoginError:
        return True, False
    return True, status == 200
