"""`seqhub login` (device flow), the token cache with refresh rotation, `seqhub logout`, and the admin
commands — against the live auth service."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from libs.sdk import credentials
from libs.sdk.commands import auth as auth_commands
from tests.integration.auth.browser import FormBrowser
from tests.integration.auth.conftest import ADMIN_CLIENT, ADMIN_SECRET, LiveAuth


@pytest.fixture
def cli_env(live_auth: LiveAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEQHUB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SEQHUB_URL", live_auth.base)
    for name in ("SEQHUB_TOKEN", "SEQHUB_CLIENT_ID", "SEQHUB_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "config" / "credentials.json"


async def _login(live: LiveAuth, username: str, password: str) -> credentials.Credentials:
    approvals: list[asyncio.Task[Any]] = []

    def approve(grant: dict[str, Any]) -> None:
        browser = FormBrowser(live.issuer)
        page = browser.submit(
            browser.open(grant["verification_uri_complete"]), {"username": username, "password": password}
        )
        browser.submit(page, {}, button=("decision", "approve"))

    def prompt(grant: dict[str, Any]) -> None:
        approvals.append(asyncio.get_running_loop().create_task(asyncio.to_thread(approve, grant)))

    creds = await credentials.device_login(scope="repository:read offline_access", prompt=prompt)
    await asyncio.gather(*approvals)
    return creds


async def test_login_caches_refreshes_with_rotation_and_logout_revokes(live_auth: LiveAuth, cli_env: Path) -> None:
    username, password = await live_auth.create_user()
    creds = await _login(live_auth, username, password)
    assert creds.refresh_token and creds.scope == "offline_access repository:read"
    assert stat.S_IMODE(cli_env.stat().st_mode) == 0o600
    assert await credentials.get_access_token() == creds.access_token  # cached, still fresh

    cached = credentials.load()
    assert cached is not None
    cached.expires_at = time.time() - 1
    credentials.save(None, cached)
    fresh = await credentials.get_access_token()
    rotated = credentials.load()
    assert rotated is not None and fresh != creds.access_token and rotated.refresh_token != creds.refresh_token

    assert await credentials.logout() == (True, True)
    assert credentials.load() is None
    async with live_auth.http.post(
        live_auth.issuer + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": rotated.refresh_token or "",
            "client_id": rotated.client_id,
        },
    ) as r:
        assert (r.status, (await r.json())["error"]) == (400, "invalid_grant")
    with pytest.raises(credentials.LoginError, match="seqhub login"):
        await credentials.get_access_token()


def _run(func: Any, argv: list[str], register: Any, stdin: str = "") -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out, err, old = io.StringIO(), io.StringIO(), (sys.stdin, sys.stdout, sys.stderr)
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = args.func(args)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


async def test_admin_commands_with_service_client_credentials(
    live_auth: LiveAuth, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQHUB_CLIENT_ID", ADMIN_CLIENT)
    monkeypatch.setenv("SEQHUB_CLIENT_SECRET", ADMIN_SECRET)
    reg = auth_commands.register_admin
    code, out, _ = await asyncio.to_thread(
        _run, None, ["create-user", "carol", "--password-stdin"], reg, "a long password\n"
    )
    assert code == 0 and json.loads(out)["username"] == "carol" and "password" not in out
    code, out, err = await asyncio.to_thread(
        _run, None, ["create-token", "carol", "--name", "laptop", "--scope", "repository:read"], reg
    )
    assert code == 0 and json.loads(out)["token"].startswith("shp_") and "not shown again" in err
    code, out, _ = await asyncio.to_thread(
        _run,
        None,
        [
            "create-client",
            "lims",
            "--name",
            "LIMS",
            "--grant",
            "client_credentials",
            "--scope",
            "ingest:upload",
        ],
        reg,
    )
    assert code == 0 and json.loads(out)["client_secret"].startswith("shs_")
    code, _, err = await asyncio.to_thread(
        _run, None, ["create-user", "Bad Name", "--password-stdin"], reg, "a long password\n"
    )
    assert code == 1 and "username" in err  # the server's 400 names the field


async def test_not_logged_in_is_a_clear_cli_error(live_auth: LiveAuth, cli_env: Path) -> None:
    code, _, err = await asyncio.to_thread(
        _run, None, ["create-token", "x", "--name", "n", "--scope", "admin"], auth_commands.register_admin
    )
    assert code == 1 and "seqhub login" in err
    code, _, err = await asyncio.to_thread(_run, None, ["logout"], auth_commands.register)
    assert code == 0 and "not logged in" in err
