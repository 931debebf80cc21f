"""Signing keys: JWKS content, kid, and rotation that keeps the previous key published."""

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

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


def _pem(key: Any, *, private: bool = True) -> bytes:
    if not private:
        return bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def test_a_pinned_pem_key_signs_tokens_that_its_public_key_verifies() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pinned = SigningKey.from_pem(_pem(private), now=7)
    token = KeyRing([pinned], clock=Clock(8)).sign({"sub": "alice"})
    public = ECKey.import_key(_pem(private, private=False))
    assert pinned.kid == public.thumbprint()
    assert jwt.decode(token, public, algorithms=["ES256"]).claims == {"sub": "alice"}


def test_sec1_ec_private_key_pem_is_accepted() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    sec1 = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert SigningKey.from_pem(sec1, now=0).kid == SigningKey.from_pem(_pem(private), now=0).kid


@pytest.mark.parametrize(
    ("pem", "reason"),
    [
        (b"not a key at all", "not a PEM-encoded EC private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "curve P-384; ES256 needs P-256"),
        (_pem(ec.generate_private_key(ec.SECP256R1()), private=False), "public key"),
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "not a PEM-encoded EC private key"),
    ],
)
def test_unusable_pem_is_refused_with_the_reason(pem: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        SigningKey.from_pem(pem, now=0)
    assert b"PRIVATE" not in str(info.value).encode()  # no key material in the message


def test_rotation_can_bring_in_a_given_key() -> None:
    old = SigningKey.generate(now=0)
    pinned = SigningKey.from_pem(_pem(ec.generate_private_key(ec.SECP256R1())), now=0)
    new, updated = KeyRing.rotation([old], now=100, prepublish_seconds=60, keep_seconds=600, incoming=pinned)
    assert new.kid == pinned.kid and new.activates_at == 160
    assert updated[0].retire_after == 760
