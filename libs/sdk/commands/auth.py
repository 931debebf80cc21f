"""`seqhub login` / `seqhub logout` and `seqhub admin create-user|create-client|create-token`.

Login uses the device flow (works on headless boxes: open the printed link anywhere); the tokens are cached
per user (`libs.sdk.credentials`). Admin commands call the auth service's admin API with an `admin` token:
the logged-in user's, or a service client's from `SEQHUB_CLIENT_ID` / `SEQHUB_CLIENT_SECRET`. Secrets and
personal access tokens are printed once, on stdout, and never logged. Exit status: 0 ok, 1 refused by the
server, 2 bad input or not logged in.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

import aiohttp

from libs.sdk import credentials

DEVICE_GRANT = credentials.DEVICE_GRANT


def _url_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")


def register(subparsers: Any) -> None:
    """Add `login` and `logout` to the top-level `seqhub` parser."""
    login = subparsers.add_parser(
        "login",
        help="sign in with the device flow and cache the token",
        description="Sign in: open the printed link, approve, and the CLI is signed in.",
    )
    _url_argument(login)
    login.add_argument(
        "--scope", default=credentials.DEFAULT_SCOPE, help="scopes to ask for (space-separated)"
    )
    login.set_defaults(func=run_login)
    logout = subparsers.add_parser("logout", help="revoke and forget the cached login")
    _url_argument(logout)
    logout.set_defaults(func=run_logout)


def register_admin(admin_subparsers: Any) -> None:
    """Add `create-user`, `create-client` and `create-token` under the `seqhub admin` group."""
    user = admin_subparsers.add_parser("create-user", help="create a user (password from a prompt or stdin)")
    _url_argument(user)
    user.add_argument("username")
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user.add_argument("--display-name", default="")
    user.add_argument("--email", default="")
    user.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        help="a scope (pattern) the user may grant; repeat; default: the standard user scopes",
    )
    user.set_defaults(func=run_create_user)

    client = admin_subparsers.add_parser(
        "create-client", help="register an OAuth2 client (secret printed once)"
    )
    _url_argument(client)
    client.add_argument("client_id")
    client.add_argument("--name", required=True)
    client.add_argument("--public", action="store_true", help="no secret (CLI/native/browser apps; PKCE)")
    client.add_argument(
        "--grant",
        action="append",
        dest="grants",
        required=True,
        choices=["authorization_code", "refresh_token", "client_credentials", DEVICE_GRANT],
    )
    client.add_argument("--scope", action="append", dest="scopes", required=True)
    client.add_argument("--redirect-uri", action="append", dest="redirect_uris", default=[])
    client.add_argument("--introspect", action="store_true", help="may call the introspection endpoint")
    client.set_defaults(func=run_create_client)

    token = admin_subparsers.add_parser("create-token", help="create a personal access token (printed once)")
    _url_argument(token)
    token.add_argument("username")
    token.add_argument("--name", required=True, help="what the token is for, e.g. 'laptop'")
    token.add_argument("--scope", required=True, help="space-separated scopes")
    token.add_argument("--days", type=int, default=90, help="lifetime in days (1-3650)")
    token.set_defaults(func=run_create_token)


# ---- login / logout ----------------------------------------------------------------------------------------


def _show_code(grant: dict[str, Any]) -> None:
    print(f"To sign in, open {grant['verification_uri_complete']}", file=sys.stderr)
    print(f"or go to {grant['verification_uri']} and enter the code {grant['user_code']}", file=sys.stderr)


def run_login(args: argparse.Namespace) -> int:
    try:
        creds = asyncio.run(credentials.device_login(args.url, scope=args.scope, prompt=_show_code))
    except credentials.LoginError as exc:
        print(f"seqhub login: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"Signed in to {credentials.platform_url(args.url)} (scopes: {creds.scope})", file=sys.stderr)
    return 0


def run_logout(args: argparse.Namespace) -> int:
    try:
        existed, revoked = asyncio.run(credentials.logout(args.url))
    except credentials.LoginError as exc:
        print(f"seqhub logout: {exc}", file=sys.stderr)
        return 2
    if not existed:
        print("not logged in", file=sys.stderr)
    elif not revoked:
        print(
            "signed out locally (the server could not be told; the token expires by itself)", file=sys.stderr
        )
    else:
        print("signed out", file=sys.stderr)
    return 0


# ---- admin -------------------------------------------------------------------------------------------------


async def _admin_call(url: str | None, method: str, path: str, body: Any) -> tuple[int, Any]:
    token = await credentials.get_access_token(url, scope="admin")
    async with aiohttp.ClientSession() as http:
        try:
            async with http.request(
                method,
                credentials.auth_url(url) + path,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise credentials.LoginError(f"cannot reach the auth service: {exc}") from None


def _admin(url: str | None, method: str, path: str, body: Any, command: str) -> dict[str, Any] | None:
    try:
        status, answer = asyncio.run(_admin_call(url, method, path, body))
    except credentials.LoginError as exc:
        print(f"seqhub admin {command}: {exc}", file=sys.stderr)
        return None
    if status >= 300:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        print(f"seqhub admin {command}: refused ({status}): {detail}", file=sys.stderr)
        return None
    return answer if isinstance(answer, dict) else {}


def run_create_user(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if password != getpass.getpass("Repeat: "):
            print("seqhub admin create-user: the passwords differ", file=sys.stderr)
            return 2
    body = {
        "username": args.username,
        "password": password,
        "display_name": args.display_name,
        "email": args.email,
        **({"scopes": args.scopes} if args.scopes else {}),
    }
    answer = _admin(args.url, "POST", "/admin/users", body, "create-user")
    if answer is None:
        return 1
    print(json.dumps(answer, indent=1))
    return 0


def run_create_client(args: argparse.Namespace) -> int:
    body = {
        "client_id": args.client_id,
        "name": args.name,
        "public": args.public,
        "grant_types": args.grants,
        "scopes": args.scopes,
        "redirect_uris": args.redirect_uris,
        "can_introspect": args.introspect,
    }
    answer = _admin(args.url, "POST", "/admin/clients", body, "create-client")
    if answer is None:
        return 1
    print(json.dumps(answer, indent=1))
    if answer.get("client_secret"):
        print("Store the client_secret now: it is not shown again.", file=sys.stderr)
    return 0


def run_create_token(args: argparse.Namespace) -> int:
    body = {"name": args.name, "scope": args.scope, "expires_in_days": args.days}
    answer = _admin(args.url, "POST", f"/admin/users/{args.username}/tokens", body, "create-token")
    if answer is None:
        return 1
    print(json.dumps(answer, indent=1))
    print(
        "Store the token now: it is not shown again. Use it as the password for HTTP Basic.", file=sys.stderr
    )
    return 0
