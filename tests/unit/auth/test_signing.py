"""Signing keys: JWKS content, kid, and rotation that keeps the previous key published."""

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from services.auth.signing import KeyRing, NoSigningKey, SigningKey


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_header_carries_kid_alg_typ_and_verifies_with_public_jwks() -> None:
    ring = KeyRing([SigningKey.generate(now=0)], clock=Clock(10))
    token = ring.sign({"sub": "alice"})
    jwks = ring.jwks()
    assert all("d" not in k for k in jwks["keys"])  # never the private part
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])  # type: ignore[arg-type]
    assert decoded.header == {"alg": "ES256", "kid": ring.active().kid, "typ": "at+jwt"}
    assert decoded.claims == {"sub": "alice"}


def test_rotation_prepublishes_new_key_then_signs_with_it_and_keeps_old_until_retired() -> None:
    clock = Clock(100)
    old = SigningKey.generate(now=0)
    new, updated = KeyRing.rotation([old], now=100, prepublish_seconds=300, keep_seconds=900)
    ring = KeyRing([new, *updated], clock=clock)
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old.kid, new.kid}
    assert ring.active().kid == old.kid  # new key is published but not used yet
    clock.now = 400
    assert ring.active().kid == new.kid
    old_token = KeyRing([old], clock=Clock(50)).sign({"sub": "a"})
    assert ring.verify(old_token)[1] == {"sub": "a"}  # tokens of the previous key still verify
    clock.now = 400 + 900
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]
    with pytest.raises(ValueError, match="not signed by this server"):
        ring.verify(old_token)


def test_stored_record_round_trips() -> None:
    key = SigningKey.generate(now=5)
    assert SigningKey.from_record(key.to_record()) == key


def test_empty_ring_cannot_sign() -> None:
    with pytest.raises(NoSigningKey):
        KeyRing([]).sign({})


def test_verify_rejects_tokens_from_other_keys() -> None:
    ring = KeyRing([SigningKey.generate(now=0)])
    stranger = KeyRing([SigningKey.generate(now=0)]).sign({"sub": "x"})
    with pytest.raises(ValueError):
        ring.verify(stranger)
