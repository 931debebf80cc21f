"""Start-up provisioning: the public CLI client, and optionally an admin client and an admin user.

Idempotent: existing records are left as they are (an operator may have changed them), except that a
configured bootstrap admin client's secret is (re)set so the deployment's secret always works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.common.errors import Conflict
from services.auth.accounts import ADMIN_USER_SCOPES, Accounts
from services.auth.models import DEFAULT_USER_SCOPES, CreateClient, CreateUser
from services.auth.oauth import DEVICE_GRANT

if TYPE_CHECKING:
    from services.auth.settings import AuthSettings


async def bootstrap(accounts: Accounts, settings: AuthSettings) -> None:
    cli = CreateClient(
        client_id=settings.cli_client_id,
        name="seqhub command line",
        public=True,
        grant_types=[DEVICE_GRANT, "refresh_token"],
        scopes=[*ADMIN_USER_SCOPES],
    )
    try:
        await accounts.create_client(cli)
    except Conflict:
        pass
    if settings.bootstrap_client_id and settings.bootstrap_client_secret:
        admin_client = CreateClient(
            client_id=settings.bootstrap_client_id,
            name="seqhub administration",
            grant_types=["client_credentials"],
            scopes=["admin", *DEFAULT_USER_SCOPES],
            can_introspect=True,
        )
        await accounts.create_client(
            admin_client, replace=True, secret=settings.bootstrap_client_secret.get_secret_value()
        )
    if settings.bootstrap_admin_username and settings.bootstrap_admin_password:
        user = CreateUser(
            username=settings.bootstrap_admin_username,
            password=settings.bootstrap_admin_password.get_secret_value(),
        )
        try:
            await accounts.create_user(user, admin=True)
        except Conflict:
            pass
