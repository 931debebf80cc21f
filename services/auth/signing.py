"""Signing keys of the auth service: ES256 keys with a `kid`, rotation, and the published JWKS.

A `KeyRing` is an immutable view over the stored keys. The key that signs is the newest one already
active; a rotated-in key is published (in JWKS) `prepublish_seconds` before it starts signing, so resource
services that cached the JWKS learn it in time, and a rotated-out key stays published until every token it
signed has expired (`retire_after`). Pure logic over joserfc: no aiohttp or pymongo.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

ALGORITHM = "ES256"
CURVE = "P-256"


class NoSigningKey(RuntimeError):
    """No active key: the ring is empty or every key is still waiting for its activation time."""


@dataclass(frozen=True)
class SigningKey:
    """One stored key. `private_jwk` holds the private part; only `public_jwk()` ever leaves the service."""

    kid: str
    private_jwk: Mapping[str, Any]
    created_at: float
    activates_at: float
    retire_after: float | None = None
    """Unix time after which the key is no longer published (set when a successor takes over)."""

    @classmethod
    def generate(cls, *, now: float, activates_at: float | None = None) -> SigningKey:
        key = ECKey.generate_key(CURVE, parameters={"alg": ALGORITHM, "use": "sig"}, private=True)
        kid = key.thumbprint()
        jwk = key.as_dict(private=True)
        jwk["kid"] = kid
        start = now if activates_at is None else activates_at
        return cls(kid=kid, private_jwk=jwk, created_at=now, activates_at=start)

    @classmethod
    def from_pem(cls, pem: bytes, *, now: float, activates_at: float | None = None) -> SigningKey:
        """A pinned key from a PEM file (PKCS#8 or SEC 1 "EC PRIVATE KEY"): it must be a P-256 private key.

        Raises:
            ValueError: what is wrong with the key, never any of its bytes.
        """
        try:
            key = ECKey.import_key(pem, parameters={"alg": ALGORITHM, "use": "sig"})
        except (JoseError, ValueError, TypeError):
            raise ValueError("not a PEM-encoded EC private key") from None
        if key.curve_name != CURVE:
            raise ValueError(f"the key is on curve {key.curve_name}; ES256 needs {CURVE}")
        if not key.is_private:
            raise ValueError("the PEM holds a public key; the private key is needed to sign")
        kid = key.thumbprint()
        jwk = key.as_dict(private=True)
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        start = now if activates_at is None else activates_at
        return cls(kid=kid, private_jwk=jwk, created_at=now, activates_at=start)

    def key(self) -> ECKey:
        return ECKey.import_key(dict(self.private_jwk))

    def public_jwk(self) -> dict[str, Any]:
        public = self.key().as_dict(private=False)
        public.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return public

    def to_record(self) -> dict[str, Any]:
        return {
            "_id": self.kid,
            "jwk": dict(self.private_jwk),
            "created_at": self.created_at,
            "activates_at": self.activates_at,
            "retire_after": self.retire_after,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SigningKey:
        return cls(
            kid=str(record["_id"]),
            private_jwk=dict(record["jwk"]),
            created_at=float(record["created_at"]),
            activates_at=float(record["activates_at"]),
            retire_after=None if record.get("retire_after") is None else float(record["retire_after"]),
        )


class KeyRing:
    """The keys in use at one moment: the active signer plus every key still published."""

    def __init__(self, keys: Iterable[SigningKey], *, clock: Any = time.time) -> None:
        self._keys = sorted(keys, key=lambda k: (k.activates_at, k.created_at))
        self._clock = clock
        self._imported = {k.kid: k.key() for k in self._keys}

    @property
    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    def active(self) -> SigningKey:
        now = self._clock()
        candidates = [k for k in self._keys if k.activates_at <= now and not self._retired(k, now)]
        if not candidates:
            raise NoSigningKey("no active signing key")
        return candidates[-1]

    def published(self) -> list[SigningKey]:
        now = self._clock()
        return [k for k in self._keys if not self._retired(k, now)]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS (RFC 7517) resource services verify against."""
        return {"keys": [k.public_jwk() for k in self.published()]}

    def sign(self, claims: Mapping[str, Any], *, typ: str = "at+jwt") -> str:
        """Sign `claims` with the active key; the header carries `alg`, `kid` and `typ`."""
        key = self.active()
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": typ}
        return jwt.encode(header, dict(claims), self._imported[key.kid], algorithms=[ALGORITHM])

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check a token's signature against the published keys (no claim checks). Returns (header, claims).

        Raises:
            ValueError: malformed token, unknown `kid`, other algorithm, or bad signature.
        """
        keyset = KeySet([self._imported[k.kid] for k in self.published()])
        try:
            decoded = jwt.decode(token, keyset, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError(f"token not signed by this server ({type(exc).__name__})") from None
        return dict(decoded.header), dict(decoded.claims)

    @staticmethod
    def rotation(
        current: Iterable[SigningKey],
        *,
        now: float,
        prepublish_seconds: float,
        keep_seconds: float,
        incoming: SigningKey | None = None,
    ) -> tuple[SigningKey, list[SigningKey]]:
        """Plan a rotation: a new key (generated, or `incoming` — a pinned one) active after
        `prepublish_seconds`; older keys retire `keep_seconds` after it starts signing (set it to at least
        the longest token lifetime).

        Returns:
            The new key and the older keys with their `retire_after` set (to store).
        """
        if incoming is None:
            new = SigningKey.generate(now=now, activates_at=now + prepublish_seconds)
        else:
            new = SigningKey(incoming.kid, incoming.private_jwk, now, now + prepublish_seconds)
        retire = new.activates_at + keep_seconds
        updated = [
            k if k.retire_after is not None and k.retire_after <= retire else _with_retire(k, retire) for k in current
        ]
        return new, updated

    def _retired(self, key: SigningKey, now: float) -> bool:
        return key.retire_after is not None and key.retire_after <= now


def _with_retire(key: SigningKey, retire_after: float) -> SigningKey:
    return SigningKey(key.kid, key.private_jwk, key.created_at, key.activates_at, retire_after)
