"""No secret or token in any log line, even at DEBUG: passwords, client secrets, access/refresh tokens,
personal access tokens, device codes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.integration.auth.browser import FormBrowser
from tests.integration.auth.conftest import LiveAuth, basic

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


async def test_secrets_never_reach_the_logs(live_auth: LiveAuth, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    username, password = await live_auth.create_user(password="a very secret password")
    client = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    async with live_auth.http.post(
        live_auth.issuer + "/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client["client_id"], client["client_secret"]),
    ) as r:
        access = (await r.json())["access_token"]
    pat = await live_auth.admin("POST", f"/admin/users/{username}/tokens", {"name": "t", "scope": "repository:read"})
    cli = live_auth.settings.cli_client_id
    async with live_auth.http.post(
        live_auth.issuer + "/device_authorization", data={"client_id": cli, "scope": "repository:read offline_access"}
    ) as r:
        grant = await r.json()

    def approve() -> None:
        browser = FormBrowser(live_auth.issuer)
        page = browser.submit(
            browser.open(grant["verification_uri_complete"]), {"username": username, "password": password}
        )
        browser.submit(page, {}, button=("decision", "approve"))

    await asyncio.to_thread(approve)
    await asyncio.sleep(1.1)
    async with live_auth.http.post(
        live_auth.issuer + "/token", data={"grant_type": DEVICE, "device_code": grant["device_code"], "client_id": cli}
    ) as r:
        tokens = await r.json()
    assert tokens.get("refresh_token"), tokens
    assert caplog.records  # the access log did run
    logged = caplog.text + " ".join(str(getattr(rec, "__dict__", "")) for rec in caplog.records)
    secrets = {
        "password": password,
        "client secret": client["client_secret"],
        "access token": access,
        "personal access token": pat["token"],
        "device code": grant["device_code"],
        "refresh token": tokens["refresh_token"],
        "user's access token": tokens["access_token"],
        "admin token": live_auth.admin_token,
    }
    for name, value in secrets.items():
        assert value not in logged, f"{name} appears in the logs"
