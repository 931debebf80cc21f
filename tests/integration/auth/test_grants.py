"""Every grant end to end with real OAuth client libraries against the auth service on a real port, and the
issued tokens accepted by another seqhub service through libs/common with only the JWKS URL configured."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient, DeviceClient, InvalidScopeError
from requests_oauthlib import OAuth2Session as RequestsOAuthSession

from services.auth import hashing, keys
from tests.integration.auth.browser import FormBrowser
from tests.integration.auth.conftest import LiveAuth, Resource

CALLBACK = "http://127.0.0.1:9/callback"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


async def _call_resource(resource: Resource, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(resource.url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_client_credentials_with_authlib_and_requests_oauthlib(live_auth: LiveAuth, resource: Resource) -> None:
    client = await live_auth.create_client(
        grant_types=["client_credentials"], scopes=["repository:read", "ingest:upload"]
    )
    token_url = live_auth.issuer + "/token"

    def authlib_fetch() -> dict[str, Any]:
        with AuthlibSession(client["client_id"], client["client_secret"], scope="repository:read") as s:
            return dict(s.fetch_token(token_url, grant_type="client_credentials"))

    def oauthlib_fetch() -> dict[str, Any]:
        session = RequestsOAuthSession(client=BackendApplicationClient(client_id=client["client_id"]))
        return dict(
            session.fetch_token(
                token_url,
                client_id=client["client_id"],
                client_secret=client["client_secret"],
                scope=["ingest:upload"],
            )
        )

    first = await asyncio.to_thread(authlib_fetch)
    assert first["token_type"] == "Bearer" and first["scope"] == "repository:read"
    assert "refresh_token" not in first  # RFC 6749 §4.4.3
    status, body = await _call_resource(resource, first["access_token"])
    assert (status, body["sub"]) == (200, client["client_id"])

    second = await asyncio.to_thread(oauthlib_fetch)
    assert second["scope"] == ["ingest:upload"]  # oauthlib parses the scope into a list
    status, _ = await _call_resource(resource, second["access_token"])
    assert status == 403  # valid token, missing repository:read


async def _login_and_consent(
    live_auth: LiveAuth, url: str, username: str, password: str, untick: set[str] = frozenset()
) -> str:  # type: ignore[assignment]
    def run() -> str:
        browser = FormBrowser(live_auth.issuer)
        page = browser.open(url)
        assert "Sign in" in page.text
        page = browser.submit(page, {"username": username, "password": password})
        assert page.status_code == 200 and "wants access" in page.text, page.text
        assert "read project P1" in page.text  # scopes in plain words
        done = browser.submit(page, {}, button=("decision", "approve"), untick=untick)
        assert done.status_code == 302, done.text
        return str(done.headers["Location"])

    return await asyncio.to_thread(run)


async def test_pkce_code_flow_with_consent_then_refresh_rotation_with_authlib(
    live_auth: LiveAuth, resource: Resource
) -> None:
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(
        public=True,
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["repository:read", "project:*:read", "offline_access"],
    )
    session = AuthlibSession(
        client["client_id"],
        redirect_uri=CALLBACK,
        scope="repository:read project:P1:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = session.create_authorization_url(live_auth.issuer + "/authorize", code_verifier=verifier)
    callback = await _login_and_consent(live_auth, url, username, password)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]

    token_url = live_auth.issuer + "/token"
    token = await asyncio.to_thread(
        lambda: dict(session.fetch_token(token_url, authorization_response=callback, code_verifier=verifier))
    )
    assert set(token["scope"].split()) == {"repository:read", "project:P1:read"}
    status, body = await _call_resource(resource, token["access_token"])
    assert (status, body["sub"]) == (200, username)

    first_refresh = token["refresh_token"]
    rotated = await asyncio.to_thread(lambda: dict(session.refresh_token(token_url, refresh_token=first_refresh)))
    assert rotated["refresh_token"] != first_refresh and rotated["access_token"] != token["access_token"]

    # reuse of the rotated-out token = theft: refused, and the whole family (incl. the new token) is revoked
    with pytest.raises(OAuthError) as reused:
        await asyncio.to_thread(lambda: session.refresh_token(token_url, refresh_token=first_refresh))
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as family:
        await asyncio.to_thread(lambda: session.refresh_token(token_url, refresh_token=rotated["refresh_token"]))
    assert family.value.error == "invalid_grant"


async def test_pkce_code_flow_with_requests_oauthlib_and_partial_consent(
    live_auth: LiveAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")  # we grant fewer scopes than asked (RFC 6749 §3.3)
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["repository:read", "project:*:read"],
    )
    oauth = RequestsOAuthSession(
        client["client_id"], redirect_uri=CALLBACK, pkce="S256", scope=["repository:read", "project:P1:read"]
    )
    url, _ = oauth.authorization_url(live_auth.issuer + "/authorize")
    callback = await _login_and_consent(live_auth, url, username, password, untick={"repository:read"})
    token = await asyncio.to_thread(
        lambda: dict(
            oauth.fetch_token(
                live_auth.issuer + "/token",
                authorization_response=callback,
                client_secret=client["client_secret"],
                include_client_id=True,
            )
        )
    )
    assert token["scope"] == ["project:P1:read"]  # the user unticked repository:read

    def refresh() -> dict[str, Any]:
        return dict(
            oauth.refresh_token(
                live_auth.issuer + "/token",
                client_id=client["client_id"],
                client_secret=client["client_secret"],
            )
        )

    with pytest.raises(InvalidScopeError):  # refreshing may not widen the grant to the unticked scope
        await asyncio.to_thread(refresh)
    oauth.scope = token["scope"]
    refreshed = await asyncio.to_thread(refresh)
    assert refreshed["refresh_token"] != token["refresh_token"]


async def test_remembered_consent_skips_the_consent_page(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(
        public=True,
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code"],
        scopes=["repository:read", "project:*:read"],
    )
    session = AuthlibSession(
        client["client_id"], redirect_uri=CALLBACK, scope="project:P1:read", code_challenge_method="S256"
    )
    url, _ = session.create_authorization_url(live_auth.issuer + "/authorize", code_verifier=secrets.token_urlsafe(48))

    def run() -> tuple[str, requests.Response]:
        browser = FormBrowser(live_auth.issuer)
        page = browser.submit(browser.open(url), {"username": username, "password": password})
        first = browser.submit(page, {}, button=("decision", "approve"))
        return first.headers["Location"], browser.open(url)

    first, second = await asyncio.to_thread(run)
    assert "code=" in first
    assert second.status_code == 302 and "code=" in second.headers["Location"]  # no consent page this time

    # the user forgets the consent: the next authorization asks again
    service = live_auth.app[keys.service]
    user = await service.store.get_user(username)
    assert user is not None
    cli = live_auth.settings.cli_client_id
    async with live_auth.http.post(live_auth.issuer + "/device_authorization", data={"client_id": cli}) as r:
        grant = await r.json()
    assert await service.device_decide(grant["user_code"], user, approved=True, chosen=[])
    async with live_auth.http.post(
        live_auth.issuer + "/token", data={"grant_type": DEVICE, "device_code": grant["device_code"], "client_id": cli}
    ) as r:
        user_token = (await r.json())["access_token"]
    bearer = {"Authorization": f"Bearer {user_token}"}
    async with live_auth.http.get(live_auth.issuer + "/me/consents", headers=bearer) as r:
        assert await r.json() == [{"client_id": client["client_id"], "scopes": ["project:P1:read"]}]
    async with live_auth.http.delete(live_auth.issuer + f"/me/consents/{client['client_id']}", headers=bearer) as r:
        assert r.status == 204

    def third() -> requests.Response:
        browser = FormBrowser(live_auth.issuer)
        return browser.submit(browser.open(url), {"username": username, "password": password})

    assert "wants access" in (await asyncio.to_thread(third)).text


async def test_device_flow_polling_with_oauthlib_device_client(live_auth: LiveAuth, resource: Resource) -> None:
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(
        public=True, grant_types=[DEVICE, "refresh_token"], scopes=["repository:read", "offline_access"]
    )
    device = DeviceClient(client["client_id"])
    async with live_auth.http.post(
        live_auth.issuer + "/device_authorization",
        data={"client_id": client["client_id"], "scope": "repository:read"},
    ) as r:
        assert r.status == 200
        grant = await r.json()
    assert grant["verification_uri"] == live_auth.issuer + "/device" and grant["interval"] == 1

    async def poll() -> tuple[int, dict[str, Any]]:
        body = device.prepare_request_body(grant["device_code"], include_client_id=True)  # public client
        async with live_auth.http.post(
            live_auth.issuer + "/token",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            return r.status, await r.json()

    status, pending = await poll()
    assert (status, pending["error"]) == (400, "authorization_pending")
    status, fast = await poll()
    assert fast["error"] == "slow_down"  # polled again within the interval

    def approve() -> str:
        browser = FormBrowser(live_auth.issuer)
        page = browser.submit(
            browser.open(grant["verification_uri_complete"]), {"username": username, "password": password}
        )
        assert grant["user_code"] in page.text
        return browser.submit(page, {}, button=("decision", "approve")).text

    assert "connected" in await asyncio.to_thread(approve)
    await asyncio.sleep(1.1)
    status, token = await poll()
    assert status == 200, token
    assert token["scope"] == "repository:read" and token["refresh_token"]
    status, body = await _call_resource(resource, token["access_token"])
    assert (status, body["sub"]) == (200, username)
    await asyncio.sleep(1.1)
    status, _ = await poll()
    assert status == 400  # a device code gives one token set


async def test_device_flow_denied_and_expired(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(public=True, grant_types=[DEVICE], scopes=["repository:read"])

    async def start() -> dict[str, Any]:
        async with live_auth.http.post(
            live_auth.issuer + "/device_authorization", data={"client_id": client["client_id"]}
        ) as r:
            return dict(await r.json())

    async def poll(code: str) -> dict[str, Any]:
        async with live_auth.http.post(
            live_auth.issuer + "/token",
            data={"grant_type": DEVICE, "device_code": code, "client_id": client["client_id"]},
        ) as r:
            assert r.status == 400
            return dict(await r.json())

    denied = await start()

    def deny() -> None:
        browser = FormBrowser(live_auth.issuer)
        page = browser.submit(
            browser.open(denied["verification_uri_complete"]), {"username": username, "password": password}
        )
        browser.submit(page, {}, button=("decision", "deny"))

    await asyncio.to_thread(deny)
    assert (await poll(denied["device_code"]))["error"] == "access_denied"

    expired = await start()
    # the record expires after device_code_ttl; simulate that by moving its expiry into the past
    store = live_auth.app[keys.service].store
    await store.db.device_grants.update_one(
        {"_id": hashing.digest(expired["device_code"])}, {"$set": {"expires_at": time.time() - 1}}
    )
    assert (await poll(expired["device_code"]))["error"] == "expired_token"


async def _device_token(live_auth: LiveAuth, username: str, scope: str, chosen: list[str]) -> dict[str, Any]:
    cli = live_auth.settings.cli_client_id
    async with live_auth.http.post(
        live_auth.issuer + "/device_authorization", data={"client_id": cli, "scope": scope}
    ) as r:
        grant = await r.json()
    service = live_auth.app[keys.service]
    user = await service.store.get_user(username)
    assert user is not None
    assert await service.device_decide(grant["user_code"], user, approved=True, chosen=chosen)
    async with live_auth.http.post(
        live_auth.issuer + "/token", data={"grant_type": DEVICE, "device_code": grant["device_code"], "client_id": cli}
    ) as r:
        return dict(await r.json())


async def test_user_tokens_never_exceed_what_the_user_may_and_did_grant(live_auth: LiveAuth) -> None:
    username, _ = await live_auth.create_user()  # an ordinary user: may not grant `admin`
    # the CLI client may ask for admin, the (forged) form approves it: the user cannot grant it
    token = await _device_token(live_auth, username, "admin repository:read", ["admin", "repository:read"])
    assert token["scope"] == "repository:read"
    # approving nothing gives a token with no scope, not the client's default scopes
    token = await _device_token(live_auth, username, "repository:read rnaget:read", [])
    assert token["scope"] == ""


async def test_consent_with_nothing_ticked_is_a_denial(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()
    client = await live_auth.create_client(
        public=True,
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code"],
        scopes=["repository:read", "rnaget:read"],
    )
    session = AuthlibSession(
        client["client_id"], redirect_uri=CALLBACK, scope="repository:read", code_challenge_method="S256"
    )
    url, state = session.create_authorization_url(
        live_auth.issuer + "/authorize", code_verifier=secrets.token_urlsafe(48)
    )

    def run() -> str:
        browser = FormBrowser(live_auth.issuer)
        page = browser.submit(browser.open(url), {"username": username, "password": password})
        done = browser.submit(page, {}, button=("decision", "approve"), untick={"repository:read"})
        return str(done.headers["Location"])

    query = parse_qs(urlsplit(await asyncio.to_thread(run)).query)
    assert query["error"] == ["access_denied"] and query["state"] == [state] and "code" not in query
