"""Visa JWTs (GA4GH Passport 1.2) the auth service asserts for its users, signed with the key ring.

Used by `/passport` and embedded in access tokens that carry the `ga4gh_passport_v1` scope, so a resource
service (the beacon) can evaluate them with `libs.common.passports` without calling back. Pure logic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from libs.common.passports import VISA_CLAIM
from services.auth.models import VisaGrant
from services.auth.signing import KeyRing


def visa_jwt(ring: KeyRing, *, issuer: str, username: str, visa: VisaGrant, now: int) -> str:
    body: dict[str, Any] = {"type": visa.type, "asserted": visa.asserted, "value": visa.value, "source": visa.source}
    if visa.by:
        body["by"] = visa.by
    claims = {
        "iss": issuer,
        "sub": username,
        "iat": now,
        "exp": visa.expires_at,
        "jti": uuid.uuid4().hex,
        VISA_CLAIM: body,
    }
    return ring.sign(claims, typ="JWT")


def current_visas(ring: KeyRing, *, issuer: str, username: str, visas: Iterable[VisaGrant], now: int) -> list[str]:
    """Signed visas for every grant not yet expired."""
    return [visa_jwt(ring, issuer=issuer, username=username, visa=v, now=now) for v in visas if v.expires_at > now]
