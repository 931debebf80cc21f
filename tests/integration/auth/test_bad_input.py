"""Malformed requests never cause a 500 (bad headers, bodies, parameters on every endpoint)."""

from __future__ import annotations

import base64

from tests.integration.auth.conftest import LiveAuth

BAD_BASIC = "Basic " + base64.b64encode(b"\xff\xfe:\x80secret").decode()


async def test_garbage_never_causes_a_server_error(live_auth: LiveAuth) -> None:
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("POST", "/token", {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": BAD_BASIC}}),
        (
            "POST",
            "/token",
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": "Basic !!!not-base64"}},
        ),
        ("POST", "/token", {"data": b"\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", "/token", {"data": {"grant_type": "authorization_code", "code": "x" * 10_000, "client_id": "nope"}}),
        (
            "POST",
            "/token",
            {
                "data": {
                    "grant_type": "refresh_token",
                    "refresh_token": "shr_unknown",
                    "client_id": live_auth.settings.cli_client_id,
                }
            },
        ),
        (
            "POST",
            "/token",
            {
                "data": {
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "device_code": "",
                    "client_id": live_auth.settings.cli_client_id,
                }
            },
        ),
        ("POST", "/token", {"data": {"grant_type": ["client_credentials", "password"]}}),
        ("POST", "/device_authorization", {"data": {"client_id": "nope"}}),
        (
            "POST",
            "/device_authorization",
            {"data": {"client_id": live_auth.settings.cli_client_id, "scope": "project:../../etc:read"}},
        ),
        ("POST", "/introspect", {"data": {"token": "x"}, "headers": {"Authorization": BAD_BASIC}}),
        ("POST", "/revoke", {"data": {"token": "a.b.c", "client_id": live_auth.settings.cli_client_id}}),
        ("POST", "/revoke", {"json": {"token": "x"}}),
        ("GET", "/authorize?response_type=code&response_type=token&client_id=x", {}),
        ("GET", "/authorize?client_id=%ff%fe", {}),
        ("POST", "/authorize", {"data": {"decision": "approve"}}),
        ("POST", "/login", {"json": {"username": "x"}}),
        ("POST", "/login", {"data": {"username": "x" * 5000, "password": "y"}}),
        ("GET", "/device?user_code=%00%ff", {}),
        ("POST", "/device", {"data": {"user_code": "ABCD-EFGH", "decision": "approve"}}),
        ("GET", "/passport", {"headers": {"Authorization": "Bearer not.a.jwt"}}),
        ("GET", "/admin/users", {"headers": {"Authorization": "Bearer " + "a" * 20_000}}),
        (
            "POST",
            "/admin/users",
            {
                "data": b"{not json",
                "headers": {"Authorization": f"Bearer {live_auth.admin_token}", "Content-Type": "application/json"},
            },
        ),
        (
            "POST",
            "/admin/users",
            {"json": ["a", "list"], "headers": {"Authorization": f"Bearer {live_auth.admin_token}"}},
        ),
        (
            "POST",
            "/admin/clients",
            {"json": {"client_id": "x" * 500}, "headers": {"Authorization": f"Bearer {live_auth.admin_token}"}},
        ),
        ("DELETE", "/admin/tokens/does-not-exist", {"headers": {"Authorization": f"Bearer {live_auth.admin_token}"}}),
        (
            "POST",
            "/admin/users/nobody/visas",
            {
                "json": {"type": "ControlledAccessGrants", "value": "d", "source": "s"},
                "headers": {"Authorization": f"Bearer {live_auth.admin_token}"},
            },
        ),
    ]
    failures = []
    for i, (method, path, kwargs) in enumerate(cases):
        url = live_auth.issuer + path
        async with live_auth.http.request(method, url, allow_redirects=False, **kwargs) as r:  # type: ignore[arg-type]
            text = await r.text()
            if r.status >= 500 or "Traceback" in text:
                failures.append((i, method, path, r.status, text[:120]))
    assert not failures, "\n".join(map(str, failures))


async def test_undecodable_client_credentials_and_bodies_get_rfc_errors(live_auth: LiveAuth) -> None:
    async with live_auth.http.post(
        live_auth.issuer + "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": BAD_BASIC}
    ) as r:
        assert (r.status, (await r.json())["error"]) == (401, "invalid_client")
    async with live_auth.http.post(
        live_auth.issuer + "/token", data=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    ) as r:
        assert (r.status, (await r.json())["error"]) == (400, "invalid_request")
