"""Account administration use cases: users, clients, personal access tokens, visas, passports, key rotation.

Secrets are returned exactly once (client secrets, personal access tokens) and stored as digests. Imports
neither aiohttp nor pymongo.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from libs.common import scopes
from libs.common.errors import BadRequest, Conflict, Forbidden, NotFound
from libs.common.events import TokenRevoked, TokenRevokedData
from libs.common.passports import PASSPORT_CLAIM
from services.auth import hashing
from services.auth.models import (
    DEFAULT_USER_SCOPES,
    Client,
    CreateClient,
    CreateToken,
    CreateUser,
    GrantVisa,
    PersonalAccessToken,
    User,
    VisaGrant,
)
from services.auth.service import EventSink, KeyHolder
from services.auth.signing import KeyRing, SigningKey
from services.auth.store import AuthStore, DuplicateRecord
from services.auth.visas import current_visas

ADMIN_USER_SCOPES = (*DEFAULT_USER_SCOPES, "admin", "beacon:dataset:*")
PASSPORT_TTL = 3600


class Accounts:
    """Users, clients, tokens and visas, for the admin API and the CLI."""

    def __init__(self, store: AuthStore, keys: KeyHolder, events: EventSink, *, issuer: str) -> None:
        self.store = store
        self.keys = keys
        self.events = events
        self.issuer = issuer

    # ---- users -----------------------------------------------------------------------------------------

    async def create_user(self, body: CreateUser, *, admin: bool = False) -> User:
        password_hash = await asyncio.to_thread(hashing.hash_password, body.password)
        user = User(
            username=body.username,
            password_hash=password_hash,
            display_name=body.display_name,
            email=body.email,
            scopes=body.scopes
            if body.scopes is not None
            else list(ADMIN_USER_SCOPES if admin else DEFAULT_USER_SCOPES),
            created_at=time.time(),
        )
        try:
            await self.store.create_user(user)
        except DuplicateRecord:
            raise Conflict(f"user {body.username!r} already exists") from None
        return user

    async def list_users(self) -> list[User]:
        return await self.store.list_users()

    async def set_user_disabled(self, username: str, disabled: bool) -> None:
        if not await self.store.set_user_disabled(username, disabled):
            raise NotFound(f"no user {username!r}")
        if disabled:  # a disabled user's access tokens stop working everywhere at once
            await self._publish_revocation(TokenRevokedData(subject=username, reason="user disabled"))

    # ---- clients ---------------------------------------------------------------------------------------

    async def create_client(
        self, body: CreateClient, *, replace: bool = False, secret: str | None = None
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and its secret (None for public clients) — shown only now."""
        if body.public and "client_credentials" in body.grant_types:
            raise BadRequest("grant_types: a public client cannot use client_credentials")
        if "authorization_code" in body.grant_types and not body.redirect_uris:
            raise BadRequest("redirect_uris: required for the authorization_code grant")
        if body.public and body.can_introspect:
            raise BadRequest("can_introspect: only confidential clients may introspect")
        secret = None if body.public else (secret or hashing.new_token(hashing.CLIENT_SECRET_PREFIX))
        client = Client(
            client_id=body.client_id,
            name=body.name,
            secret_digest=hashing.digest(secret) if secret else None,
            redirect_uris=body.redirect_uris,
            grant_types=body.grant_types,
            scopes=body.scopes,
            can_introspect=body.can_introspect,
            created_at=time.time(),
        )
        try:
            await self.store.create_client(client, replace=replace)
        except DuplicateRecord:
            raise Conflict(f"client {body.client_id!r} already exists") from None
        return client, secret

    async def list_clients(self) -> list[Client]:
        return await self.store.list_clients()

    async def set_client_disabled(self, client_id: str, disabled: bool) -> None:
        if not await self.store.set_client_disabled(client_id, disabled):
            raise NotFound(f"no client {client_id!r}")
        if disabled:
            await self._publish_revocation(TokenRevokedData(client_id=client_id, reason="client disabled"))

    # ---- personal access tokens ------------------------------------------------------------------------

    async def create_token(self, username: str, body: CreateToken) -> tuple[PersonalAccessToken, str]:
        """A personal access token for HTTP Basic; returns the record and the token (shown only now)."""
        user = await self.store.get_user(username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        requested = scopes.split_scopes(body.scope)
        if scopes.allowed_subset(requested, user.scopes) != set(requested):
            raise BadRequest(
                f"scope: user {username!r} may not hold: "
                + " ".join(sorted(set(requested) - scopes.allowed_subset(requested, user.scopes)))
            )
        token = hashing.new_token(hashing.PAT_PREFIX)
        now = time.time()
        pat = PersonalAccessToken(
            token_id=uuid.uuid4().hex,
            token_digest=hashing.digest(token),
            username=username,
            name=body.name,
            scope=body.scope,
            created_at=now,
            expires_at=now + body.expires_in_days * 86400 if body.expires_in_days else None,
        )
        await self.store.insert_pat(pat)
        return pat, token

    async def list_tokens(self, username: str) -> list[PersonalAccessToken]:
        return await self.store.list_pats(username)

    async def create_own_token(
        self, username: str, token_scope: str, body: CreateToken
    ) -> tuple[PersonalAccessToken, str]:
        """A user's own token: never more than the scopes of the access token asking for it."""
        if await self.store.get_user(username) is None:
            raise Forbidden("only a signed-in user (not a client) can create personal access tokens")
        extra = set(scopes.split_scopes(body.scope)) - set(scopes.split_scopes(token_scope))
        if extra:
            raise Forbidden(f"scope: your current token does not hold {' '.join(sorted(extra))}")
        return await self.create_token(username, body)

    async def revoke_token(self, token_id: str, *, owner: str | None = None) -> None:
        """Revoke a personal access token (only the owner's, when `owner` is given)."""
        if owner is not None and token_id not in {p.token_id for p in await self.store.list_pats(owner)}:
            raise NotFound(f"no active personal access token {token_id!r}")
        pat = await self.store.revoke_pat(token_id, now=time.time())
        if pat is None:
            raise NotFound(f"no active personal access token {token_id!r}")
        await self._publish_revocation(TokenRevokedData(jti=pat.token_id, reason="personal access token revoked"))

    # ---- visas and passports (GA4GH Passport 1.2) ------------------------------------------------------

    async def grant_visa(self, username: str, body: GrantVisa) -> VisaGrant:
        now = int(time.time())
        visa = VisaGrant(
            type=body.type,
            value=body.value,
            source=body.source,
            by=body.by,
            asserted=now,
            expires_at=now + body.valid_days * 86400,
        )
        if not await self.store.add_visa(username, visa):
            raise NotFound(f"no user {username!r}")
        return visa

    async def passport(self, username: str) -> dict[str, Any]:
        """The user's current visas as signed visa JWTs, wrapped in a signed passport token."""
        user = await self.store.get_user(username)
        if user is None or user.disabled:
            raise NotFound(f"no active user {username!r}")
        now = int(time.time())
        ring = self.keys.ring
        visas = current_visas(ring, issuer=self.issuer, username=username, visas=user.visas, now=now)
        passport = ring.sign(
            {
                "iss": self.issuer,
                "sub": username,
                "iat": now,
                "exp": now + PASSPORT_TTL,
                "jti": uuid.uuid4().hex,
                PASSPORT_CLAIM: visas,
            },
            typ="JWT",
        )
        return {"passport": passport, PASSPORT_CLAIM: visas}

    # ---- signing keys ----------------------------------------------------------------------------------

    async def load_keys(self, *, create_first: bool = True) -> None:
        """Load the key ring; the first process to start on an empty database creates the first key."""
        keys = await self.store.load_keys()
        if not keys and create_first:
            await self.store.insert_first_key(SigningKey.generate(now=time.time()))
            keys = await self.store.load_keys()
        self.keys.ring = KeyRing(keys)

    async def import_pinned_key(self, pinned: SigningKey, *, prepublish_seconds: float, keep_seconds: float) -> bool:
        """Make an operator's pinned key (SEQHUB_AUTH_SIGNING_KEY_FILE) the signing key, once.

        On an empty database it signs at once; otherwise it is rotated in like `rotate_keys` (published first,
        the older keys kept until their tokens expire). Idempotent across restarts and replicas: a key whose
        `kid` is already stored is left as it is. Returns whether the key was new.
        """
        await self.load_keys(create_first=False)
        if pinned.kid in {k.kid for k in self.keys.ring.keys}:
            return False
        if not self.keys.ring.keys:
            await self.store.insert_first_key(pinned)  # read at start: created and active now
            await self.load_keys()
        else:
            await self.rotate_keys(prepublish_seconds=prepublish_seconds, keep_seconds=keep_seconds, incoming=pinned)
        return True

    async def rotate_keys(
        self, *, prepublish_seconds: float, keep_seconds: float, incoming: SigningKey | None = None
    ) -> str:
        new, updated = KeyRing.rotation(
            self.keys.ring.keys,
            now=time.time(),
            prepublish_seconds=prepublish_seconds,
            keep_seconds=keep_seconds,
            incoming=incoming,
        )
        await self.store.save_keys([*updated, new])
        self.keys.ring = KeyRing([*updated, new])
        return new.kid

    async def _publish_revocation(self, data: TokenRevokedData) -> None:
        async with self.events.transaction() as session:
            await self.events.add(TokenRevoked(data=data), session=session)
