"""Visa and passport verification: signature, issuer allow-list, expiry, subject linkage, types."""

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from libs.common.passports import (
    REGISTERED_ACCESS_POLICY,
    AcceptedTermsAndPolicies,
    ControlledAccessGrants,
    PassportVerifier,
    ResearcherStatus,
    TrustedIssuer,
    Visa,
    VisaRejected,
)

ISS = "https://broker.example.org/"
NOW = 1_800_000_000


def _key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"}, private=True)


def _visa(
    key: Any,
    *,
    iss: str = ISS,
    sub: str = "alice",
    vtype: str = "ControlledAccessGrants",
    value: str = "https://seqhub.example/beacon/datasets/d1",
    exp: int = NOW + 3600,
    alg: str = "ES256",
    **extra: Any,
) -> str:
    visa: dict[str, Any] = {
        "type": vtype,
        "asserted": NOW - 10,
        "value": value,
        "source": "https://dac.example",
    }
    visa.update(extra)
    claims = {"iss": iss, "sub": sub, "iat": NOW - 5, "exp": exp, "jti": "v1", "ga4gh_visa_v1": visa}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


@pytest.fixture
def key() -> ECKey:
    return _key("broker-1")


@pytest.fixture
def verifier(key: ECKey) -> PassportVerifier:
    jwks = {"keys": [key.as_dict(private=False)]}
    return PassportVerifier([TrustedIssuer(issuer=ISS, jwks=jwks)], clock=lambda: NOW)


def test_controlled_access_grant_yields_its_dataset(verifier: PassportVerifier, key: ECKey) -> None:
    visas = verifier.verify_visas([_visa(key)], subject="alice")
    assert visas.rejected == ()
    (grant,) = visas.accepted
    assert isinstance(grant, ControlledAccessGrants)
    assert visas.datasets(prefix="https://seqhub.example/beacon/datasets/") == {"d1"}


def test_bona_fide_needs_both_status_and_terms(verifier: PassportVerifier, key: ECKey) -> None:
    status = _visa(key, vtype="ResearcherStatus", value=REGISTERED_ACCESS_POLICY)
    terms = _visa(key, vtype="AcceptedTermsAndPolicies", value=REGISTERED_ACCESS_POLICY)
    assert not verifier.verify_visas([status]).bona_fide
    both = verifier.verify_visas([status, terms])
    assert both.bona_fide
    assert {type(v) for v in both.accepted} == {ResearcherStatus, AcceptedTermsAndPolicies}


def test_unknown_visa_type_is_kept_but_grants_nothing(verifier: PassportVerifier, key: ECKey) -> None:
    visas = verifier.verify_visas([_visa(key, vtype="SomethingNew")])
    assert [type(v) for v in visas.accepted] == [Visa]
    assert visas.datasets() == frozenset() and not visas.bona_fide


def test_expired_visa_is_rejected(verifier: PassportVerifier, key: ECKey) -> None:
    visas = verifier.verify_visas([_visa(key, exp=NOW - 3600)])
    assert visas.accepted == () and "visa 0" in visas.rejected[0]


def test_untrusted_issuer_is_rejected(verifier: PassportVerifier, key: ECKey) -> None:
    with pytest.raises(VisaRejected, match="not trusted"):
        verifier.verify_visa(_visa(key, iss="https://evil.example/"))


def test_visa_signed_by_another_key_is_rejected(verifier: PassportVerifier) -> None:
    with pytest.raises(VisaRejected, match="signature"):
        verifier.verify_visa(_visa(_key("broker-1")))


def test_tampered_visa_is_rejected(verifier: PassportVerifier, key: ECKey) -> None:
    header, payload, sig = _visa(key).split(".")
    other = _visa(key, value="https://seqhub.example/beacon/datasets/d2").split(".")[1]
    with pytest.raises(VisaRejected):
        verifier.verify_visa(f"{header}.{other}.{sig}")
    assert payload != other


def test_symmetric_and_unsigned_visas_are_rejected(verifier: PassportVerifier, key: ECKey) -> None:
    secret = OctKey.import_key(b"k" * 32)
    hs = jwt.encode({"alg": "HS256"}, {"iss": ISS, "sub": "alice", "iat": NOW, "exp": NOW + 60}, secret)
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    unsigned = header + "." + _visa(key).split(".")[1] + "."
    for token in (hs, unsigned, "not-a-jwt"):
        with pytest.raises(VisaRejected):
            verifier.verify_visa(token)


def test_subject_must_match_the_holder(verifier: PassportVerifier, key: ECKey) -> None:
    with pytest.raises(VisaRejected, match="subject"):
        verifier.verify_visa(_visa(key, sub="mallory"), subject="alice")


def test_visa_with_conditions_is_not_granted(verifier: PassportVerifier, key: ECKey) -> None:
    token = _visa(key, conditions=[[{"type": "AffiliationAndRole", "value": "const:faculty@x"}]])
    with pytest.raises(VisaRejected, match="conditions"):
        verifier.verify_visa(token)


def test_passport_verifies_each_visa_and_keeps_good_ones(verifier: PassportVerifier, key: ECKey) -> None:
    good = _visa(key)
    expired = _visa(key, exp=NOW - 100, value="d9")
    passport = jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {"iss": ISS, "sub": "alice", "iat": NOW, "exp": NOW + 600, "ga4gh_passport_v1": [good, expired]},
        key,
    )
    result = verifier.verify_passport(passport, subject="alice")
    assert result.datasets() == {"https://seqhub.example/beacon/datasets/d1"}
    assert len(result.rejected) == 1 and result.rejected[0].startswith("visa 1")


def test_rsa_issuer_keys_are_supported() -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "r1"}, private=True)
    verifier = PassportVerifier(
        [TrustedIssuer(issuer=ISS, jwks={"keys": [rsa.as_dict(private=False)]})], clock=lambda: NOW
    )
    assert verifier.verify_visa(_visa(rsa, alg="RS256")).type == "ControlledAccessGrants"


def test_issuer_without_keys_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no keys"):
        PassportVerifier([TrustedIssuer(issuer=ISS, jwks_url="https://x/jwks")])


def test_real_clock_is_the_default(key: ECKey) -> None:
    verifier = PassportVerifier([TrustedIssuer(issuer=ISS, jwks={"keys": [key.as_dict(private=False)]})])
    with pytest.raises(VisaRejected):
        verifier.verify_visa(_visa(key, exp=int(time.time()) - 3600))
