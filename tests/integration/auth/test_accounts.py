"""Accounts and abuse protection: admin API, personal access tokens, login lockout, rate limits, CSRF,
cookie flags, passports verified by libs/common, key rotation, expiry cleanup."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import requests
from aiohttp import web

from libs.common.config import CommonSettings
from libs.common.passports import ControlledAccessGrants, PassportVerifier, TrustedIssuer
from services import platform
from services.auth import keys
from services.auth.app import create_app
from services.auth.settings import AuthSettings
from tests.integration.auth.browser import FormBrowser, forms
from tests.integration.auth.conftest import ADMIN_CLIENT, ADMIN_SECRET, LiveAuth, basic, start_site


async def _json(live: LiveAuth, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with live.http.request(method, live.issuer + path, json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None) if r.status != 204 else None


async def _client_token(live: LiveAuth, scope: str) -> str:
    async with live.http.post(
        live.issuer + "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic(ADMIN_CLIENT, ADMIN_SECRET),
    ) as r:
        return str((await r.json())["access_token"])


async def test_admin_api_requires_an_admin_token(live_auth: LiveAuth) -> None:
    assert (await _json(live_auth, "GET", "/admin/users", None))[0] == 401
    status, body = await _json(live_auth, "GET", "/admin/users", await _client_token(live_auth, "repository:read"))
    assert status == 403 and "admin" in body["detail"]


async def test_bad_admin_input_is_a_400_naming_the_field(live_auth: LiveAuth) -> None:
    cases = [
        ("/admin/users", {"username": "Bad Name", "password": "long enough pw"}, "username"),
        ("/admin/users", {"username": "okname", "password": "short"}, "password"),
        (
            "/admin/clients",
            {"client_id": "c1", "name": "x", "grant_types": ["implicit"], "scopes": ["admin"]},
            "grant_types",
        ),
        (
            "/admin/clients",
            {
                "client_id": "c2",
                "name": "x",
                "grant_types": ["authorization_code"],
                "scopes": ["repository:read"],
                "redirect_uris": ["http://evil.example/cb"],
            },
            "redirect_uris",
        ),
        (
            "/admin/clients",
            {
                "client_id": "c3",
                "name": "x",
                "grant_types": ["client_credentials"],
                "scopes": ["repository:read"],
                "public": True,
            },
            "grant_types",
        ),
    ]
    for path, body, field in cases:
        status, problem = await _json(live_auth, "POST", path, live_auth.admin_token, body)
        assert status == 400 and field in problem["detail"], (body, problem)
    await live_auth.create_user("dupe")
    status, problem = await _json(
        live_auth,
        "POST",
        "/admin/users",
        live_auth.admin_token,
        {"username": "dupe", "password": "long enough pw"},
    )
    assert status == 409


async def test_personal_access_token_shown_once_introspected_then_revoked(live_auth: LiveAuth) -> None:
    username, _ = await live_auth.create_user()
    rs = await live_auth.create_client(
        grant_types=["client_credentials"], scopes=["repository:read"], can_introspect=True
    )
    created = await live_auth.admin(
        "POST",
        f"/admin/users/{username}/tokens",
        {"name": "laptop", "scope": "repository:read repository:write"},
    )
    token = created["token"]
    assert token.startswith("shp_")
    listed = await live_auth.admin("GET", f"/admin/users/{username}/tokens")
    assert [t["name"] for t in listed] == ["laptop"] and "token" not in listed[0]
    stored = await live_auth.app[keys.service].store.db.personal_tokens.find_one({"username": username})
    assert token not in str(stored)  # only the digest is stored

    async def introspect() -> dict[str, Any]:
        async with live_auth.http.post(
            live_auth.issuer + "/introspect",
            data={"token": token},
            headers=basic(rs["client_id"], rs["client_secret"]),
        ) as r:
            return dict(await r.json())

    info = await introspect()
    assert info["active"] is True and info["username"] == username
    assert info["scope"] == "repository:read repository:write"
    await live_auth.admin("DELETE", f"/admin/tokens/{created['token_id']}")
    assert await introspect() == {"active": False}


async def test_disabled_user_cannot_sign_in(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()
    await live_auth.admin("POST", f"/admin/users/{username}/disable")

    def attempt() -> requests.Response:
        browser = FormBrowser(live_auth.issuer)
        return browser.submit(browser.open(live_auth.issuer + "/login"), {"username": username, "password": password})

    page = await asyncio.to_thread(attempt)
    assert page.status_code == 401 and "wrong password" in page.text


async def test_repeated_failures_lock_the_account(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()

    def attempts() -> list[int]:
        browser = FormBrowser(live_auth.issuer)
        codes = []
        for _ in range(live_auth.settings.login_max_failures):
            page = browser.submit(browser.open(live_auth.issuer + "/login"), {"username": username, "password": "x"})
            codes.append(page.status_code)
        page = browser.submit(browser.open(live_auth.issuer + "/login"), {"username": username, "password": password})
        codes.append(page.status_code)
        codes.append(int(page.headers.get("Retry-After", "0")))
        return codes

    codes = await asyncio.to_thread(attempts)
    assert codes[:-2] == [401] * live_auth.settings.login_max_failures
    assert codes[-2] == 423 and codes[-1] > 0  # even the right password is refused while locked


async def test_login_requires_the_csrf_token_and_sets_hardened_cookies(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()

    def run() -> tuple[int, int, str]:
        session = requests.Session()
        page = session.get(live_auth.issuer + "/login?next=/auth/signed-in", timeout=10)
        assert (
            page.headers["X-Frame-Options"] == "DENY"
            and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        )
        (form,) = forms(page.text)
        fields = dict(form.fields)
        forged = session.post(
            live_auth.issuer + "/login",
            data={**fields, "csrf": "forged", "username": username, "password": password},
            allow_redirects=False,
        )
        ok = session.post(
            live_auth.issuer + "/login",
            data={**fields, "username": username, "password": password},
            allow_redirects=False,
        )
        return forged.status_code, ok.status_code, ok.headers["Set-Cookie"]

    forged, ok, cookie = await asyncio.to_thread(run)
    assert forged == 403 and ok == 303
    assert "seqhub_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_open_redirect_after_login_is_refused(live_auth: LiveAuth) -> None:
    username, password = await live_auth.create_user()

    def run() -> str:
        browser = FormBrowser(live_auth.issuer)
        page = browser.open(live_auth.issuer + "/login?next=//evil.example/x")
        (form,) = forms(page.text)
        response = browser.session.post(
            live_auth.issuer + "/login",
            data={**dict(form.fields), "username": username, "password": password},
            allow_redirects=False,
        )
        return str(response.headers["Location"])

    assert "evil" not in await asyncio.to_thread(run)


async def test_login_is_rate_limited_with_retry_after(live_auth: LiveAuth) -> None:
    limiter = live_auth.app[keys.limits].login
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(limiter.burst + 5):
            async with http.post(live_auth.issuer + "/login", data={"username": "x", "password": "y"}) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
    limited = [s for s in statuses if s[0] == 429]
    assert limited and all(int(retry or 0) >= 1 for _, retry in limited)


async def test_passport_visas_verify_with_libs_common(live_auth: LiveAuth) -> None:
    username, _ = await live_auth.create_user()
    await live_auth.admin(
        "POST",
        f"/admin/users/{username}/visas",
        {
            "type": "ControlledAccessGrants",
            "value": "https://seqhub.example/beacon/datasets/d1",
            "source": "https://dac.example",
        },
    )
    # a user's token with the passport scope, minted through the device flow
    cli = live_auth.settings.cli_client_id
    async with live_auth.http.post(
        live_auth.issuer + "/device_authorization", data={"client_id": cli, "scope": "ga4gh_passport_v1"}
    ) as r:
        grant = await r.json()
    service = live_auth.app[keys.service]
    user = await service.store.get_user(username)
    assert user is not None and await service.device_decide(
        grant["user_code"], user, approved=True, chosen=["ga4gh_passport_v1"]
    )
    async with live_auth.http.post(
        live_auth.issuer + "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": grant["device_code"],
            "client_id": cli,
        },
    ) as r:
        token = (await r.json())["access_token"]
    status, body = await _json(live_auth, "GET", "/passport", token)
    assert status == 200
    async with live_auth.http.get(live_auth.issuer + "/.well-known/jwks.json") as r:
        jwks = await r.json()
    verifier = PassportVerifier([TrustedIssuer(issuer=live_auth.issuer, jwks=jwks)])
    visas = verifier.verify_passport(body["passport"], subject=username)
    assert visas.rejected == () and visas.datasets(prefix="https://seqhub.example/beacon/datasets/") == {"d1"}
    assert isinstance(visas.accepted[0], ControlledAccessGrants)
    # the access token itself carries the visas (embedded passport), as the beacon reads them
    embedded = jwt_claims(token)["ga4gh_passport_v1"]
    assert verifier.verify_visas(embedded, subject=username).datasets(
        prefix="https://seqhub.example/beacon/datasets/"
    ) == {"d1"}
    status, _ = await _json(live_auth, "GET", "/passport", await _client_token(live_auth, "repository:read"))
    assert status == 403


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the test verifies the visas inside)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_key_rotation_keeps_the_previous_key_published(live_auth: LiveAuth) -> None:
    old_token = await _client_token(live_auth, "repository:read")
    async with live_auth.http.get(live_auth.issuer + "/.well-known/jwks.json") as r:
        before = {k["kid"] for k in (await r.json())["keys"]}
    _, rotated = await _json(live_auth, "POST", "/admin/keys/rotate", live_auth.admin_token)
    async with live_auth.http.get(live_auth.issuer + "/.well-known/jwks.json") as r:
        after = {k["kid"] for k in (await r.json())["keys"]}
    assert after == before | {rotated["kid"]}
    status, _ = await _json(live_auth, "GET", "/admin/users", old_token)
    assert status == 403  # still a valid token (not 401): its key is still published


async def test_metadata_document(live_auth: LiveAuth) -> None:
    async with live_auth.http.get(live_auth.issuer + "/.well-known/oauth-authorization-server") as r:
        meta = await r.json()
    assert meta["issuer"] == live_auth.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "urn:ietf:params:oauth:grant-type:device_code" in meta["grant_types_supported"]
    async with live_auth.http.get(meta["jwks_uri"]) as r:
        assert r.status == 200 and all("d" not in k for k in (await r.json())["keys"])


async def test_expired_records_are_purged(live_auth: LiveAuth) -> None:
    async with live_auth.http.post(
        live_auth.issuer + "/device_authorization", data={"client_id": live_auth.settings.cli_client_id}
    ) as r:
        assert r.status == 200
    store = live_auth.app[keys.service].store
    assert await store.db.device_grants.count_documents({}) == 1
    assert (await live_auth.purge_expired(time.time()))["device_grants"] == 0
    far = time.time() + live_auth.settings.device_code_ttl + 3600
    assert (await live_auth.purge_expired(far))["device_grants"] == 1


async def _user_token(live: LiveAuth, username: str, scope: str) -> str:
    """A user's access token through the device grant (approved server-side for brevity)."""
    cli = live.settings.cli_client_id
    async with live.http.post(live.issuer + "/device_authorization", data={"client_id": cli, "scope": scope}) as r:
        grant = await r.json()
    service = live.app[keys.service]
    user = await service.store.get_user(username)
    assert user is not None
    assert await service.device_decide(grant["user_code"], user, approved=True, chosen=scope.split())
    async with live.http.post(
        live.issuer + "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": grant["device_code"],
            "client_id": cli,
        },
    ) as r:
        return str((await r.json())["access_token"])


async def test_users_manage_their_own_personal_access_tokens(live_auth: LiveAuth) -> None:
    alice, _ = await live_auth.create_user()
    bob, _ = await live_auth.create_user()
    token = await _user_token(live_auth, alice, "repository:read")
    status, created = await _json(live_auth, "POST", "/me/tokens", token, {"name": "cli", "scope": "repository:read"})
    assert status == 201 and created["token"].startswith("shp_") and created["username"] == alice
    status, problem = await _json(live_auth, "POST", "/me/tokens", token, {"name": "x", "scope": "repository:write"})
    assert status == 403 and "repository:write" in problem["detail"]  # no escalation beyond the token
    status, listed = await _json(live_auth, "GET", "/me/tokens", token)
    assert [t["token_id"] for t in listed] == [created["token_id"]]
    bob_token = await _user_token(live_auth, bob, "repository:read")
    status, _ = await _json(live_auth, "DELETE", f"/me/tokens/{created['token_id']}", bob_token)
    assert status == 404  # not bob's
    status, _ = await _json(live_auth, "DELETE", f"/me/tokens/{created['token_id']}", token)
    assert status == 204
    status, _ = await _json(
        live_auth,
        "POST",
        "/me/tokens",
        await _client_token(live_auth, "repository:read"),
        {"name": "svc", "scope": "repository:read"},
    )
    assert status == 403  # a client, not a person


async def test_openapi_documents_every_route(live_auth: LiveAuth) -> None:
    from services.auth import api

    async with live_auth.http.get(live_auth.issuer + "/openapi.json") as r:
        assert r.status == 200
        documented = set((await r.json())["paths"])
    served = {route.path for route in api.routes if isinstance(route, web.RouteDef)}
    assert served - documented <= {"/jwks", "/signed-in"}, served - documented


async def test_cookies_are_secure_when_the_issuer_is_https(common_settings: CommonSettings) -> None:
    """Behind a TLS-terminating proxy: the public issuer is https, so cookies carry the Secure flag."""
    port = platform.free_port()
    common = common_settings.model_copy(update={"auth_issuer": "https://auth.example.org/auth", "auth_jwks": None})
    settings = AuthSettings(
        common=common, bootstrap_admin_username="root", bootstrap_admin_password="root password 123"
    )  # type: ignore[arg-type]
    root = web.Application()
    root.add_subapp("/auth", create_app(settings))
    runner = await start_site(root, port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/auth/login") as r:
                csrf_cookie = r.cookies["seqhub_login_csrf"]
                assert csrf_cookie["secure"] and csrf_cookie["httponly"] and csrf_cookie["samesite"] == "Strict"
                (form,) = forms(await r.text())
            async with http.post(
                f"http://127.0.0.1:{port}/auth/login",
                data={**dict(form.fields), "username": "root", "password": "root password 123"},
                headers={"Cookie": f"seqhub_login_csrf={csrf_cookie.value}"},
                allow_redirects=False,
            ) as r:
                assert r.status == 303
                session = r.cookies["seqhub_session"]
                assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    finally:
        await runner.cleanup()
