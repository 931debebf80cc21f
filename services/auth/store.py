"""MongoDB store of the auth service (database `seqhub_auth`): the only auth module that imports pymongo.

Every state transition that must happen once (consume a code, rotate a refresh token, decide or consume a
device grant) is a single conditional `find_one_and_update`, so concurrent requests cannot both win.
Expiring records carry an `expires` datetime with a TTL index; `purge_expired` does the same deletion on
demand (tests, and servers whose TTL monitor runs late).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.auth.models import (
    AuthorizationCode,
    Client,
    DeviceGrant,
    PersonalAccessToken,
    RefreshToken,
    User,
    VisaGrant,
)
from services.auth.signing import SigningKey

Doc = dict[str, Any]
Session = AsyncClientSession | None

_TTL = {"expireAfterSeconds": 0}
INDEXES: dict[str, list[IndexModel]] = {
    # codes/device grants/refresh tokens/sessions/revocations: the TTL monitor deletes them after `expires`
    "codes": [IndexModel([("expires", ASCENDING)], name="codes_ttl", **_TTL)],
    "device_grants": [
        IndexModel([("expires", ASCENDING)], name="device_ttl", **_TTL),
        # the /device page looks a grant up by the code the person typed
        IndexModel([("user_code", ASCENDING)], name="device_user_code", unique=True),
    ],
    "refresh_tokens": [
        IndexModel([("expires", ASCENDING)], name="refresh_ttl", **_TTL),
        # reuse detection and revocation act on a whole family
        IndexModel([("family_id", ASCENDING)], name="refresh_family"),
    ],
    "sessions": [IndexModel([("expires", ASCENDING)], name="sessions_ttl", **_TTL)],
    "revoked_tokens": [IndexModel([("expires", ASCENDING)], name="revoked_ttl", **_TTL)],
    "personal_tokens": [
        # HTTP Basic / introspection look a token up by its digest
        IndexModel([("token_digest", ASCENDING)], name="pat_digest", unique=True),
        # listing a user's tokens
        IndexModel([("username", ASCENDING)], name="pat_user"),
    ],
}
_EXPIRING = ("codes", "device_grants", "refresh_tokens", "sessions", "revoked_tokens")


class DuplicateRecord(Exception):
    """A record with the same key exists."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _strip(doc: Mapping[str, Any] | None) -> Doc | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("_id", "expires")}


class AuthStore:
    """Users, clients, grants and tokens of the auth service."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db

    # ---- users -----------------------------------------------------------------------------------------

    async def create_user(self, user: User) -> None:
        try:
            await self.db.users.insert_one({"_id": user.username, **user.model_dump()})
        except DuplicateKeyError:
            raise DuplicateRecord(user.username) from None

    async def get_user(self, username: str) -> User | None:
        doc = _strip(await self.db.users.find_one({"_id": username}))
        return User.model_validate(doc) if doc else None

    async def get_users(self, usernames: set[str]) -> dict[str, User]:
        found = self.db.users.find({"_id": {"$in": sorted(usernames)}})
        return {u.username: u for u in [User.model_validate(_strip(d)) async for d in found]}

    async def list_users(self, limit: int = 1000) -> list[User]:
        cursor = self.db.users.find({}).sort("_id", ASCENDING).limit(limit)
        return [User.model_validate(_strip(d)) async for d in cursor]

    async def set_user_disabled(self, username: str, disabled: bool) -> bool:
        result = await self.db.users.update_one({"_id": username}, {"$set": {"disabled": disabled}})
        return result.matched_count == 1

    async def record_login_failure(self, username: str, *, now: float, limit: int, lock_seconds: float) -> None:
        """Count a failed login; the `limit`-th consecutive failure locks the account for `lock_seconds`."""
        await self.db.users.update_one(
            {"_id": username},
            [
                {"$set": {"failed_logins": {"$add": [{"$ifNull": ["$failed_logins", 0]}, 1]}}},
                {
                    "$set": {
                        "locked_until": {
                            "$cond": [
                                {"$gte": ["$failed_logins", limit]},
                                now + lock_seconds,
                                "$locked_until",
                            ]
                        },
                        "failed_logins": {"$cond": [{"$gte": ["$failed_logins", limit]}, 0, "$failed_logins"]},
                    }
                },
            ],
        )

    async def reset_login_failures(self, username: str) -> None:
        await self.db.users.update_one({"_id": username}, {"$set": {"failed_logins": 0}})

    async def add_visa(self, username: str, visa: VisaGrant) -> bool:
        result = await self.db.users.update_one({"_id": username}, {"$push": {"visas": visa.model_dump()}})
        return result.matched_count == 1

    # ---- clients ---------------------------------------------------------------------------------------

    async def create_client(self, client: Client, *, replace: bool = False) -> None:
        doc = {"_id": client.client_id, **client.model_dump()}
        if replace:
            await self.db.clients.replace_one({"_id": client.client_id}, doc, upsert=True)
            return
        try:
            await self.db.clients.insert_one(doc)
        except DuplicateKeyError:
            raise DuplicateRecord(client.client_id) from None

    async def get_clients(self, client_ids: set[str]) -> dict[str, Client]:
        found = self.db.clients.find({"_id": {"$in": sorted(client_ids)}})
        return {c.client_id: c for c in [Client.model_validate(_strip(d)) async for d in found]}

    async def list_clients(self, limit: int = 1000) -> list[Client]:
        cursor = self.db.clients.find({}).sort("_id", ASCENDING).limit(limit)
        return [Client.model_validate(_strip(d)) async for d in cursor]

    async def set_client_disabled(self, client_id: str, disabled: bool) -> bool:
        result = await self.db.clients.update_one({"_id": client_id}, {"$set": {"disabled": disabled}})
        return result.matched_count == 1

    # ---- authorization codes ---------------------------------------------------------------------------

    async def insert_code(self, code: AuthorizationCode) -> None:
        await self.db.codes.insert_one(
            {"_id": code.code_digest, "expires": _dt(code.expires_at + 600), **code.model_dump()}
        )

    async def get_code(self, digest: str) -> AuthorizationCode | None:
        doc = _strip(await self.db.codes.find_one({"_id": digest}))
        return AuthorizationCode.model_validate(doc) if doc else None

    async def consume_code(self, digest: str, *, now: float, jti: str | None, exp: float | None) -> bool:
        """Mark a code used (once). Kept until expiry so a second use is recognised as reuse."""
        doc = await self.db.codes.find_one_and_update(
            {"_id": digest, "used_at": None},
            {"$set": {"used_at": now, "issued_jti": jti, "issued_exp": exp}},
        )
        return doc is not None

    # ---- device grants ---------------------------------------------------------------------------------

    async def insert_device(self, grant: DeviceGrant) -> None:
        await self.db.device_grants.insert_one(
            {"_id": grant.device_code_digest, "expires": _dt(grant.expires_at + 600), **grant.model_dump()}
        )

    async def poll_device(self, digest: str, *, now: float) -> tuple[DeviceGrant | None, float | None]:
        """Record a token-endpoint poll; returns the grant and the time of the previous poll."""
        doc = await self.db.device_grants.find_one_and_update(
            {"_id": digest}, {"$set": {"last_poll_at": now}}, return_document=ReturnDocument.BEFORE
        )
        if doc is None:
            return None, None
        grant = DeviceGrant.model_validate(_strip(doc))
        return grant.model_copy(update={"last_poll_at": now}), grant.last_poll_at

    async def get_device_by_user_code(self, user_code: str) -> DeviceGrant | None:
        doc = _strip(await self.db.device_grants.find_one({"user_code": user_code}))
        return DeviceGrant.model_validate(doc) if doc else None

    async def decide_device(self, user_code: str, *, username: str, approved: bool, scope: str, now: float) -> bool:
        doc = await self.db.device_grants.find_one_and_update(
            {"user_code": user_code, "status": "pending", "expires_at": {"$gt": now}},
            {"$set": {"status": "approved" if approved else "denied", "username": username, "scope": scope}},
        )
        return doc is not None

    async def consume_device(self, digest: str) -> bool:
        doc = await self.db.device_grants.find_one_and_update(
            {"_id": digest, "status": "approved"}, {"$set": {"status": "consumed"}}
        )
        return doc is not None

    # ---- refresh tokens --------------------------------------------------------------------------------

    async def insert_refresh(self, token: RefreshToken, *, access_jti: str | None, access_exp: float | None) -> None:
        await self.db.refresh_tokens.insert_one(
            {
                "_id": token.token_digest,
                "expires": _dt(token.expires_at),
                "access_jti": access_jti,
                "access_exp": access_exp,
                **token.model_dump(),
            }
        )

    async def get_refresh(self, digest: str) -> RefreshToken | None:
        doc = _strip(await self.db.refresh_tokens.find_one({"_id": digest}))
        return RefreshToken.model_validate(doc) if doc else None

    async def rotate_refresh(self, digest: str, *, now: float) -> bool:
        doc = await self.db.refresh_tokens.find_one_and_update(
            {"_id": digest, "rotated_at": None, "revoked_at": None}, {"$set": {"rotated_at": now}}
        )
        return doc is not None

    async def revoke_family(self, family_id: str, *, now: float, session: Session = None) -> list[tuple[str, float]]:
        """Revoke every refresh token of a family; returns (jti, exp) of access tokens issued with them."""
        await self.db.refresh_tokens.update_many(
            {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": now}}, session=session
        )
        cursor = self.db.refresh_tokens.find({"family_id": family_id, "access_jti": {"$ne": None}}, session=session)
        return [(d["access_jti"], float(d["access_exp"])) async for d in cursor if d["access_exp"] > now]

    # ---- consents --------------------------------------------------------------------------------------

    async def get_consent(self, username: str, client_id: str) -> frozenset[str]:
        doc = await self.db.consents.find_one({"_id": f"{username}\x1f{client_id}"})
        return frozenset(doc["scopes"]) if doc else frozenset()

    async def add_consent(self, username: str, client_id: str, granted: Iterable[str], *, now: float) -> None:
        await self.db.consents.update_one(
            {"_id": f"{username}\x1f{client_id}"},
            {
                "$addToSet": {"scopes": {"$each": sorted(granted)}},
                "$set": {"username": username, "client_id": client_id, "updated_at": now},
            },
            upsert=True,
        )

    async def list_consents(self, username: str) -> list[tuple[str, list[str]]]:
        cursor = self.db.consents.find({"username": username}).sort("client_id", ASCENDING)
        return [(d["client_id"], sorted(d["scopes"])) async for d in cursor]

    async def revoke_consent(self, username: str, client_id: str) -> bool:
        result = await self.db.consents.delete_one({"_id": f"{username}\x1f{client_id}"})
        return result.deleted_count == 1

    # ---- personal access tokens ------------------------------------------------------------------------

    async def insert_pat(self, pat: PersonalAccessToken) -> None:
        await self.db.personal_tokens.insert_one({"_id": pat.token_id, **pat.model_dump()})

    async def find_pat(self, digest: str) -> PersonalAccessToken | None:
        doc = _strip(await self.db.personal_tokens.find_one({"token_digest": digest}))
        return PersonalAccessToken.model_validate(doc) if doc else None

    async def list_pats(self, username: str) -> list[PersonalAccessToken]:
        cursor = self.db.personal_tokens.find({"username": username}).sort("created_at", ASCENDING)
        return [PersonalAccessToken.model_validate(_strip(d)) async for d in cursor]

    async def revoke_pat(self, token_id: str, *, now: float) -> PersonalAccessToken | None:
        doc = await self.db.personal_tokens.find_one_and_update(
            {"_id": token_id, "revoked_at": None},
            {"$set": {"revoked_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return PersonalAccessToken.model_validate(_strip(doc)) if doc else None

    # ---- browser sessions ------------------------------------------------------------------------------

    async def create_session(self, digest: str, *, username: str, csrf: str, now: float, ttl: float) -> None:
        await self.db.sessions.insert_one(
            {
                "_id": digest,
                "username": username,
                "csrf": csrf,
                "created_at": now,
                "expires_at": now + ttl,
                "expires": _dt(now + ttl),
            }
        )

    async def get_session(self, digest: str, *, now: float) -> Doc | None:
        return await self.db.sessions.find_one({"_id": digest, "expires_at": {"$gt": now}})

    async def delete_session(self, digest: str) -> None:
        await self.db.sessions.delete_one({"_id": digest})

    # ---- signing keys ----------------------------------------------------------------------------------

    async def load_keys(self) -> list[SigningKey]:
        return [SigningKey.from_record(d) async for d in self.db.signing_keys.find({"jwk": {"$exists": True}})]

    async def save_keys(self, keys: list[SigningKey]) -> None:
        for key in keys:
            await self.db.signing_keys.replace_one({"_id": key.kid}, key.to_record(), upsert=True)

    async def insert_first_key(self, key: SigningKey) -> None:
        """Store the very first key unless another process stored one meanwhile."""
        await self.db.signing_keys.update_one({"_id": "__first__"}, {"$setOnInsert": {"kid": key.kid}}, upsert=True)
        marker = await self.db.signing_keys.find_one({"_id": "__first__"})
        if marker is not None and marker["kid"] == key.kid:
            await self.db.signing_keys.replace_one({"_id": key.kid}, key.to_record(), upsert=True)

    # ---- revoked access tokens -------------------------------------------------------------------------

    async def add_revoked(self, jti: str, *, exp: float, now: float, session: Session = None) -> None:
        await self.db.revoked_tokens.update_one(
            {"_id": jti},
            {"$set": {"revoked_at": now, "expires": _dt(exp + 60)}},
            upsert=True,
            session=session,
        )

    async def is_revoked(self, jti: str) -> bool:
        return await self.db.revoked_tokens.find_one({"_id": jti}) is not None

    # ---- housekeeping ----------------------------------------------------------------------------------

    async def purge_expired(self, *, now: float) -> dict[str, int]:
        """Delete what the TTL indexes would delete by `now` (the TTL monitor runs about once a minute)."""
        counts = {}
        for name in _EXPIRING:
            result = await self.db[name].delete_many({"expires": {"$lte": _dt(now)}})
            counts[name] = result.deleted_count
        return counts
