"""The RFC failure table (RFC 6749 §4.1.2.1/§5.2, RFC 7636, RFC 8628 §3.5, RFC 7009, RFC 7662), exact HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from libs.common.config import CommonSettings
from tests.integration.auth.browser import FormBrowser
from tests.integration.auth.conftest import LiveAuth, Resource, basic, serve_auth

CALLBACK = "http://127.0.0.1:9/callback"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def _post(
    live: LiveAuth, path: str, data: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    async with live.http.post(live.issuer + path, data=data, headers=headers or {}) as r:
        body = await r.json(content_type=None) if r.content_length != 0 else {}
        return r.status, body or {}, r.headers


async def _code_client(live: LiveAuth) -> dict[str, Any]:
    return await live.create_client(
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["repository:read"],
    )


async def _authorize(live: LiveAuth, client: dict[str, Any], verifier: str, **extra: str) -> str:
    """Log in and approve; returns the callback URL the browser was sent to."""
    username, password = await live.create_user()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "repository:read",
        "state": "s1",
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
        **extra,
    }

    def run() -> str:
        browser = FormBrowser(live.issuer)
        page = browser.submit(
            browser.open(f"{live.issuer}/authorize?{urlencode(params)}"),
            {"username": username, "password": password},
        )
        if "wants access" in page.text:
            page = browser.submit(page, {}, button=("decision", "approve"))
        assert page.status_code == 302, page.text
        return str(page.headers["Location"])

    return await asyncio.to_thread(run)


def _code(callback: str) -> str:
    return parse_qs(urlsplit(callback).query)["code"][0]


async def test_wrong_client_secret_is_invalid_client_401_with_challenge(live_auth: LiveAuth) -> None:
    client = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    status, body, headers = await _post(
        live_auth, "/token", {"grant_type": "client_credentials"}, basic(client["client_id"], "wrong")
    )
    assert (status, body["error"]) == (401, "invalid_client")
    assert headers["WWW-Authenticate"].startswith("Basic")


async def test_unregistered_redirect_uri_is_never_redirected_to(live_auth: LiveAuth) -> None:
    client = await _code_client(live_auth)
    for params in (
        {"client_id": client["client_id"], "redirect_uri": "http://127.0.0.1:9/evil"},
        {"client_id": client["client_id"], "redirect_uri": CALLBACK + "/x"},
        {"client_id": "no-such-client", "redirect_uri": CALLBACK},
    ):
        query = urlencode(
            {
                "response_type": "code",
                "scope": "repository:read",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
                **params,
            }
        )
        async with live_auth.http.get(f"{live_auth.issuer}/authorize?{query}", allow_redirects=False) as r:
            assert r.status in (400, 401) and "Location" not in r.headers
            assert "refused" in await r.text()


async def test_pkce_is_mandatory_and_s256_only(live_auth: LiveAuth) -> None:
    client = await _code_client(live_auth)
    base = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "repository:read",
        "state": "st",
    }
    for extra in ({}, {"code_challenge": "a" * 43, "code_challenge_method": "plain"}):
        async with live_auth.http.get(
            f"{live_auth.issuer}/authorize?{urlencode({**base, **extra})}", allow_redirects=False
        ) as r:
            # the redirect URI is registered, so the error goes back to the client (RFC 6749 §4.1.2.1)
            assert r.status == 302
            query = parse_qs(urlsplit(r.headers["Location"]).query)
            assert query["error"] == ["invalid_request"] and query["state"] == ["st"]


async def test_missing_or_wrong_code_verifier(live_auth: LiveAuth) -> None:
    client = await _code_client(live_auth)
    verifier = secrets.token_urlsafe(48)
    code = _code(await _authorize(live_auth, client, verifier))
    auth = basic(client["client_id"], client["client_secret"])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    status, body, _ = await _post(live_auth, "/token", form, auth)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body, _ = await _post(live_auth, "/token", {**form, "code_verifier": secrets.token_urlsafe(48)}, auth)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_redirect_uri_must_match_at_the_token_endpoint(live_auth: LiveAuth) -> None:
    client = await _code_client(live_auth)
    verifier = secrets.token_urlsafe(48)
    code = _code(await _authorize(live_auth, client, verifier))
    status, body, _ = await _post(
        live_auth,
        "/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/other",
            "code_verifier": verifier,
        },
        basic(client["client_id"], client["client_secret"]),
    )
    assert (status, body["error"]) == (400, "invalid_grant")


async def _denied_after_event(resource: Resource, token: str, *, timeout: float = 10.0) -> bool:
    async with aiohttp.ClientSession() as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with http.get(resource.url, headers={"Authorization": f"Bearer {token}"}) as r:
                if r.status == 401:
                    return True
            await asyncio.sleep(0.2)
    return False


async def test_reused_code_is_refused_and_revokes_what_it_issued(live_auth: LiveAuth, resource: Resource) -> None:
    client = await _code_client(live_auth)
    verifier = secrets.token_urlsafe(48)
    code = _code(await _authorize(live_auth, client, verifier))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    auth = basic(client["client_id"], client["client_secret"])
    status, first, _ = await _post(live_auth, "/token", form, auth)
    assert status == 200
    async with (
        aiohttp.ClientSession() as http,
        http.get(resource.url, headers={"Authorization": f"Bearer {first['access_token']}"}) as r,
    ):
        assert r.status == 200
    status, again, _ = await _post(live_auth, "/token", form, auth)
    assert (status, again["error"]) == (400, "invalid_grant")
    status, refreshed, _ = await _post(
        live_auth, "/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth
    )
    assert (status, refreshed["error"]) == (400, "invalid_grant")
    assert await _denied_after_event(resource, first["access_token"])  # TokenRevoked reached the other service


async def test_invalid_scope_and_unsupported_grant_and_bad_body(live_auth: LiveAuth) -> None:
    client = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    auth = basic(client["client_id"], client["client_secret"])
    for scope in ("repository:write", "no-such-scope", "repository:read admin"):
        status, body, _ = await _post(live_auth, "/token", {"grant_type": "client_credentials", "scope": scope}, auth)
        assert (status, body["error"]) == (400, "invalid_scope"), scope
    status, body, _ = await _post(live_auth, "/token", {"grant_type": "password", "username": "a"}, auth)
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    async with live_auth.http.post(
        live_auth.issuer + "/token", json={"grant_type": "client_credentials"}, headers=auth
    ) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_request"


async def test_public_client_cannot_use_client_credentials(live_auth: LiveAuth) -> None:
    client = await live_auth.create_client(
        public=True, grant_types=["authorization_code"], redirect_uris=[CALLBACK], scopes=["repository:read"]
    )
    status, body, _ = await _post(
        live_auth, "/token", {"grant_type": "client_credentials", "client_id": client["client_id"]}
    )
    assert status in (400, 401) and body["error"] in ("invalid_client", "unauthorized_client")


async def test_token_responses_are_not_cacheable(live_auth: LiveAuth) -> None:
    client = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    status, _, headers = await _post(
        live_auth,
        "/token",
        {"grant_type": "client_credentials"},
        basic(client["client_id"], client["client_secret"]),
    )
    assert status == 200 and headers["Cache-Control"] == "no-store"


async def test_revoked_access_token_is_denied_by_a_resource_service(live_auth: LiveAuth, resource: Resource) -> None:
    client = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    auth = basic(client["client_id"], client["client_secret"])
    _, token, _ = await _post(live_auth, "/token", {"grant_type": "client_credentials"}, auth)
    status, _, _ = await _post(
        live_auth, "/revoke", {"token": token["access_token"], "token_type_hint": "access_token"}, auth
    )
    assert status == 200
    assert await _denied_after_event(resource, token["access_token"])
    status, _, _ = await _post(live_auth, "/revoke", {"token": "no-such-token"}, auth)
    assert status == 200  # RFC 7009 §2.2


async def test_revocation_reaches_another_service_through_rabbitmq(
    live_auth_amqp: LiveAuth, resource_amqp: Resource
) -> None:
    live = live_auth_amqp
    client = await live.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    auth = basic(client["client_id"], client["client_secret"])
    _, token, _ = await _post(live, "/token", {"grant_type": "client_credentials"}, auth)
    async with (
        aiohttp.ClientSession() as http,
        http.get(resource_amqp.url, headers={"Authorization": f"Bearer {token['access_token']}"}) as r,
    ):
        assert r.status == 200
    status, _, _ = await _post(live, "/revoke", {"token": token["access_token"]}, auth)
    assert status == 200
    assert await _denied_after_event(resource_amqp, token["access_token"])


async def test_another_clients_token_cannot_be_revoked(live_auth: LiveAuth, resource: Resource) -> None:
    owner = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    other = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    _, token, _ = await _post(
        live_auth,
        "/token",
        {"grant_type": "client_credentials"},
        basic(owner["client_id"], owner["client_secret"]),
    )
    status, _, _ = await _post(
        live_auth,
        "/revoke",
        {"token": token["access_token"]},
        basic(other["client_id"], other["client_secret"]),
    )
    assert status == 200
    assert not await _denied_after_event(resource, token["access_token"], timeout=1.0)


async def test_introspection_answers_only_allowed_clients(live_auth: LiveAuth) -> None:
    rs = await live_auth.create_client(
        grant_types=["client_credentials"], scopes=["repository:read"], can_introspect=True
    )
    nosy = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    _, token, _ = await _post(
        live_auth,
        "/token",
        {"grant_type": "client_credentials"},
        basic(nosy["client_id"], nosy["client_secret"]),
    )
    status, info, _ = await _post(
        live_auth,
        "/introspect",
        {"token": token["access_token"]},
        basic(rs["client_id"], rs["client_secret"]),
    )
    assert status == 200 and info["active"] is True
    assert (info["client_id"], info["scope"], info["token_type"]) == (
        nosy["client_id"],
        "repository:read",
        "Bearer",
    )
    status, info, _ = await _post(
        live_auth,
        "/introspect",
        {"token": token["access_token"]},
        basic(nosy["client_id"], nosy["client_secret"]),
    )
    assert (status, info) == (200, {"active": False})  # not allowed to introspect: no reason leaked
    status, info, _ = await _post(
        live_auth, "/introspect", {"token": "garbage"}, basic(rs["client_id"], rs["client_secret"])
    )
    assert info == {"active": False}
    status, body, _ = await _post(
        live_auth, "/introspect", {"token": token["access_token"]}, basic(rs["client_id"], "wrong")
    )
    assert (status, body["error"]) == (401, "invalid_client")
    await _post(
        live_auth,
        "/revoke",
        {"token": token["access_token"]},
        basic(nosy["client_id"], nosy["client_secret"]),
    )
    _, info, _ = await _post(
        live_auth,
        "/introspect",
        {"token": token["access_token"]},
        basic(rs["client_id"], rs["client_secret"]),
    )
    assert info == {"active": False}


async def test_introspection_reports_tokens_of_a_disabled_client_inactive(live_auth: LiveAuth) -> None:
    rs = await live_auth.create_client(
        grant_types=["client_credentials"], scopes=["repository:read"], can_introspect=True
    )
    app = await live_auth.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
    _, token, _ = await _post(
        live_auth, "/token", {"grant_type": "client_credentials"}, basic(app["client_id"], app["client_secret"])
    )
    await live_auth.admin("POST", f"/admin/clients/{app['client_id']}/disable")
    _, info, _ = await _post(
        live_auth, "/introspect", {"token": token["access_token"]}, basic(rs["client_id"], rs["client_secret"])
    )
    assert info == {"active": False}


async def test_token_and_device_endpoints_are_rate_limited(common_settings: CommonSettings) -> None:
    async with serve_auth(common_settings, token_rate=0.5, token_burst=5, device_rate=0.5, device_burst=3) as live:
        client = await live.create_client(grant_types=["client_credentials"], scopes=["repository:read"])
        auth = basic(client["client_id"], client["client_secret"])
        statuses = []
        for _ in range(8):
            async with live.http.post(
                live.issuer + "/token", data={"grant_type": "client_credentials"}, headers=auth
            ) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
        assert [s for s, _ in statuses[:4]] == [200] * 4  # the fixture already took one token for the admin
        assert all(s == 429 and int(retry or 0) >= 1 for s, retry in statuses[5:])
        for _ in range(3):
            async with live.http.post(
                live.issuer + "/device_authorization", data={"client_id": live.settings.cli_client_id}
            ) as r:
                assert r.status == 200
        async with live.http.post(
            live.issuer + "/device_authorization", data={"client_id": live.settings.cli_client_id}
        ) as r:
            assert r.status == 429 and "Retry-After" in r.headers
