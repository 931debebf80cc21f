"""The login and consent pages in a real browser (headless Chromium via the DevTools protocol): sign in,
see the scopes in plain words, untick one, approve, and land on the client's callback with a code that
exchanges for a token with exactly the approved scopes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

import pytest
from aiohttp import web

from services import platform
from tests.integration.auth.cdp import CHROMIUM, chromium_page
from tests.integration.auth.conftest import LiveAuth, start_site

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")


async def test_login_and_consent_in_headless_chromium(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()
    received: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def callback(request: web.Request) -> web.Response:
        await received.put(dict(request.query))
        return web.Response(text="done")

    client_app = web.Application()
    client_app.router.add_get("/callback", callback)
    port = platform.free_port()
    runner = await start_site(client_app, port)
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    client = await live_auth.create_client(
        public=True,
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code"],
        scopes=["repository:read", "project:*:read"],
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": redirect_uri,
            "scope": "repository:read project:Cancer-2024:read",
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    try:
        async with chromium_page() as page:
            await page.send("Page.navigate", url=f"{live_auth.issuer}/authorize?{query}")
            await page.wait_for("document.getElementById('signin') !== null")
            await page.evaluate(
                f"document.getElementById('username').value = {json.dumps(username)};"
                f"document.getElementById('password').value = {json.dumps(password)};"
                "document.getElementById('signin').click(); true"
            )
            text = await page.wait_for("document.getElementById('approve') && document.body.innerText")
            assert "read project Cancer-2024" in text and "Test App" in text
            await page.evaluate(
                "document.querySelector(\"input[value='repository:read']\").checked = false;"
                "document.getElementById('approve').click(); true"
            )
            params = await asyncio.wait_for(received.get(), 15)
    finally:
        await runner.cleanup()
    assert params["state"] == "xyz"
    async with live_auth.http.post(
        live_auth.issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "client_id": client["client_id"],
            "code_verifier": verifier,
        },
    ) as r:
        token = await r.json()
    assert r.status == 200 and token["scope"] == "project:Cancer-2024:read"
