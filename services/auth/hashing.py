"""Secrets of the auth service: argon2 password hashes, opaque tokens and their stored digests.

Passwords (low entropy) are hashed with argon2id. Opaque tokens we generate (client secrets, refresh
tokens, personal access tokens, device codes) carry 256 bits of randomness, so a SHA-256 digest is enough to
store them and lets lookups go through an index; comparisons are constant-time. Pure logic, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

REFRESH_PREFIX = "shr_"
PAT_PREFIX = "shp_"
CLIENT_SECRET_PREFIX = "shs_"  # noqa: S105 - a token prefix, not a secret

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("seqhub-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash (unknown user) still spend the same time, then fail."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(prefix: str = "") -> str:
    """A fresh opaque token: `prefix` + 43 URL-safe characters (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """The stored form of an opaque token (SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented token with a stored digest."""
    return hmac.compare_digest(digest(token), stored_digest)


def new_user_code() -> str:
    """An RFC 8628 user code: 8 characters from an alphabet without vowels or look-alikes, as XXXX-XXXX."""
    alphabet = "BCDFGHJKLMNPQRSTVWXZ"
    raw = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_user_code(code: str) -> str:
    """What a person typed → the stored form (case and separators ignored)."""
    raw = "".join(c for c in code.upper() if c.isalpha())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else raw
