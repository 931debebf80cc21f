"""GA4GH Passport and Visa verification (Passport 1.2, AAI profile) for seqhub's resource services.

seqhub acts as a Passport Clearinghouse: it trusts a configured list of visa issuers, each with its own JWKS,
and for each visa checks the signature (asymmetric algorithms only), `iss` against the allow-list, `exp`,
`iat`, `sub` linkage to the passport holder, and the `ga4gh_visa_v1` object. Keys are looked up by the
visa's `iss` in the allow-list — a `jku` header is never fetched, so a visa cannot bring its own key. Visas
with `conditions` are rejected (we cannot evaluate them, and granting on an unevaluated condition would be
wrong). Unknown visa types are accepted as plain `Visa` objects and simply grant nothing.

Typed results: `ResearcherStatus`, `AcceptedTermsAndPolicies`, `ControlledAccessGrants`; `PassportVisas`
answers the two questions a Beacon/RNAget asks: which controlled datasets (`datasets()`) and whether the
holder is a bona fide researcher (`bona_fide`). Pure logic apart from `load_issuer_keys`, which takes a
fetch function: no aiohttp or pymongo import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
REGISTERED_ACCESS_POLICY = "https://doi.org/10.1038/s41431-018-0219-y"
"""The bona fide researcher / registered access terms (Dyke et al. 2018), the usual value of both
ResearcherStatus and AcceptedTermsAndPolicies visas for registered access."""
PASSPORT_CLAIM = "ga4gh_passport_v1"
VISA_CLAIM = "ga4gh_visa_v1"


class VisaType(StrEnum):
    RESEARCHER_STATUS = "ResearcherStatus"
    ACCEPTED_TERMS_AND_POLICIES = "AcceptedTermsAndPolicies"
    CONTROLLED_ACCESS_GRANTS = "ControlledAccessGrants"
    AFFILIATION_AND_ROLE = "AffiliationAndRole"
    LINKED_IDENTITIES = "LinkedIdentities"


class VisaRejected(Exception):
    """A visa (or passport) failed verification; the message says why, without echoing the token."""


class Visa(BaseModel):
    """A verified visa: the `ga4gh_visa_v1` object plus the JWT claims that bind it."""

    model_config = ConfigDict(frozen=True)
    type: str
    value: str
    source: str
    asserted: int
    by: str | None = None
    issuer: str
    subject: str
    expires_at: int
    jti: str | None = None


class ResearcherStatus(Visa):
    """The holder is a bona fide researcher per `value` (e.g. the registered-access DOI)."""


class AcceptedTermsAndPolicies(Visa):
    """The holder accepted the terms named by `value`."""


class ControlledAccessGrants(Visa):
    """The holder was granted access to the dataset identified by `value` (a URL or an identifier)."""

    def dataset_id(self, prefix: str | None = None) -> str:
        """The dataset id: `value` with `prefix` (e.g. `https://host/beacon/datasets/`) removed if present."""
        if prefix and self.value.startswith(prefix):
            return self.value[len(prefix) :]
        return self.value


_TYPED: dict[str, type[Visa]] = {
    VisaType.RESEARCHER_STATUS: ResearcherStatus,
    VisaType.ACCEPTED_TERMS_AND_POLICIES: AcceptedTermsAndPolicies,
    VisaType.CONTROLLED_ACCESS_GRANTS: ControlledAccessGrants,
}


class _VisaObject(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    asserted: int = Field(ge=0)
    value: str = Field(min_length=1)
    source: str = Field(min_length=1)
    by: str | None = None
    conditions: Any = None


class TrustedIssuer(BaseModel):
    """An issuer we accept visas from, and where its keys are (inline `jwks`, or `jwks_url` to load)."""

    model_config = ConfigDict(frozen=True)
    issuer: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None


@dataclass(frozen=True)
class PassportVisas:
    """The outcome of verifying a passport: accepted visas, and a reason per rejected one."""

    accepted: tuple[Visa, ...] = ()
    rejected: tuple[str, ...] = field(default_factory=tuple)

    def of_type(self, visa_type: type[Visa]) -> list[Visa]:
        return [v for v in self.accepted if isinstance(v, visa_type)]

    def datasets(self, prefix: str | None = None) -> frozenset[str]:
        """Dataset ids granted by ControlledAccessGrants visas."""
        return frozenset(v.dataset_id(prefix) for v in self.accepted if isinstance(v, ControlledAccessGrants))

    def is_bona_fide(self, policy: str = REGISTERED_ACCESS_POLICY) -> bool:
        """Registered access: a ResearcherStatus and an AcceptedTermsAndPolicies visa for `policy`."""
        status = any(isinstance(v, ResearcherStatus) and v.value == policy for v in self.accepted)
        terms = any(isinstance(v, AcceptedTermsAndPolicies) and v.value == policy for v in self.accepted)
        return status and terms

    @property
    def bona_fide(self) -> bool:
        return self.is_bona_fide()


class PassportVerifier:
    """Verifies visas and passports against an allow-list of issuers and their public keys.

    Args:
        issuers: the trusted issuers, each with its `jwks` loaded (see `load_issuer_keys`).
        leeway: seconds of clock skew tolerated on `exp`/`iat`.
        clock: returns the current Unix time (tests pass a fixed clock).
    """

    def __init__(
        self, issuers: Iterable[TrustedIssuer], *, leeway: int = 30, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys: dict[str, KeySet] = {}
        for issuer in issuers:
            if issuer.jwks is None:
                raise ValueError(f"trusted issuer {issuer.issuer} has no keys loaded")
            self._keys[issuer.issuer] = KeySet.import_key_set(issuer.jwks)  # type: ignore[arg-type]
        self._leeway = leeway
        self._clock = clock

    @property
    def issuers(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify_visa(self, token: str, *, subject: str | None = None) -> Visa:
        """Verify one visa JWT.

        Args:
            token: the compact JWS.
            subject: the passport holder; the visa's `sub` must equal it when given.

        Returns:
            A typed visa (`Visa` for types seqhub does not interpret).

        Raises:
            VisaRejected: signature, issuer, expiry, subject or visa object invalid.
        """
        claims = self._verified_claims(token)
        visa_sub = claims.get("sub")
        if not isinstance(visa_sub, str) or not visa_sub:
            raise VisaRejected("visa has no subject")
        if subject is not None and visa_sub != subject:
            raise VisaRejected("visa subject does not match the passport holder")
        try:
            obj = _VisaObject.model_validate(claims.get(VISA_CLAIM))
        except ValidationError as exc:
            raise VisaRejected(f"malformed {VISA_CLAIM} object: {exc.error_count()} error(s)") from None
        if obj.conditions:
            raise VisaRejected("visa conditions are not supported")
        if obj.asserted > self._clock() + self._leeway:
            raise VisaRejected("visa asserted in the future")
        cls = _TYPED.get(obj.type, Visa)
        return cls(
            type=obj.type,
            value=obj.value,
            source=obj.source,
            asserted=obj.asserted,
            by=obj.by,
            issuer=str(claims["iss"]),
            subject=visa_sub,
            expires_at=int(claims["exp"]),
            jti=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
        )

    def verify_visas(self, tokens: Sequence[str], *, subject: str | None = None) -> PassportVisas:
        """Verify each visa; bad ones are listed in `rejected` (by position) instead of failing the lot."""
        accepted: list[Visa] = []
        rejected: list[str] = []
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                rejected.append(f"visa {i}: not a string")
                continue
            try:
                accepted.append(self.verify_visa(token, subject=subject))
            except VisaRejected as exc:
                rejected.append(f"visa {i}: {exc}")
        return PassportVisas(tuple(accepted), tuple(rejected))

    def verify_passport(self, token: str, *, subject: str | None = None) -> PassportVisas:
        """Verify a passport JWT (signed by a trusted broker) and the visas in its `ga4gh_passport_v1` claim.

        Raises:
            VisaRejected: the passport token itself is invalid.
        """
        claims = self._verified_claims(token)
        holder = claims.get("sub")
        if not isinstance(holder, str) or not holder:
            raise VisaRejected("passport has no subject")
        if subject is not None and holder != subject:
            raise VisaRejected("passport subject does not match the token subject")
        visas = claims.get(PASSPORT_CLAIM)
        if not isinstance(visas, list):
            raise VisaRejected(f"passport has no {PASSPORT_CLAIM} list")
        return self.verify_visas(visas, subject=holder)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        issuer = _unverified_issuer(token)
        keys = self._keys.get(issuer)
        if keys is None:
            raise VisaRejected("issuer is not trusted")
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ASYMMETRIC_ALGORITHMS))
            registry = jwt.JWTClaimsRegistry(
                now=int(self._clock()),
                leeway=self._leeway,
                iss={"essential": True, "value": issuer},
                exp={"essential": True},
                iat={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise VisaRejected(f"invalid signature or claims ({type(exc).__name__})") from None
        return dict(decoded.claims)


def _unverified_issuer(token: str) -> str:
    """Read `iss` before verification, only to choose the key set (the signature check follows)."""
    try:
        obj = jws.extract_compact(token.encode("ascii"))
        payload = json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeError):
        raise VisaRejected("not a compact JWS") from None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(iss, str):
        raise VisaRejected("token has no issuer")
    return iss


async def load_issuer_keys(
    issuers: Iterable[TrustedIssuer], fetch_json: Callable[[str], Awaitable[Mapping[str, Any]]]
) -> list[TrustedIssuer]:
    """Fill in `jwks` for issuers configured with only a `jwks_url` (call at startup, and to refresh).

    Args:
        issuers: configured trusted issuers.
        fetch_json: e.g. an aiohttp GET returning the decoded JSON body.
    """
    loaded: list[TrustedIssuer] = []
    for issuer in issuers:
        if issuer.jwks is None and issuer.jwks_url:
            jwks = dict(await fetch_json(issuer.jwks_url))
            issuer = issuer.model_copy(update={"jwks": jwks})
        loaded.append(issuer)
    return loaded
