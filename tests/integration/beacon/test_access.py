"""The access matrix: public, registered and controlled datasets; scopes, verified passport visas, forged
and expired credentials; mixed requests answer only for allowed datasets and reveal nothing else."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey

from libs.common.config import CommonSettings
from libs.common.passports import REGISTERED_ACCESS_POLICY, TrustedIssuer
from libs.common.testing import TokenMinter
from services.beacon.app import create_app
from services.beacon.index import BuildResult

from .conftest import beacon_settings, install_chrmt

HIT = {
    "referenceName": "MT",
    "start": "9",
    "referenceBases": "T",
    "alternateBases": "C",
    "assemblyId": "GRCh37",
    "includeDatasetResponses": "ALL",
}
VISA_ISSUER = "https://visas.example.org/"


class VisaIssuer:
    def __init__(self, issuer: str = VISA_ISSUER) -> None:
        self.issuer = issuer
        self.key = ECKey.generate_key("P-256", parameters={"kid": uuid.uuid4().hex[:8], "alg": "ES256"})

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def visa(self, subject: str, kind: str, value: str, *, expires_in: int = 600) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "ga4gh_visa_v1": {
                "type": kind,
                "value": value,
                "source": "https://dac.example.org",
                "asserted": now - 60,
                "by": "dac",
            },
        }
        return jwt.encode({"alg": "ES256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)


@pytest.fixture(scope="module")
def visa_issuer() -> VisaIssuer:
    return VisaIssuer()


@pytest.fixture
async def guarded(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    common_settings: CommonSettings,
    chrmt_versions: tuple[Path, dict[str, BuildResult]],
    visa_issuer: VisaIssuer,
) -> TestClient[Any, Any]:
    trusted = [TrustedIssuer(issuer=visa_issuer.issuer, jwks=visa_issuer.jwks)]
    client = await aiohttp_client(create_app(beacon_settings(common_settings, trusted_visa_issuers=trusted)))
    await install_chrmt(client.app, chrmt_versions)
    return client


async def _ask(client: TestClient[Any, Any], datasets: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = await client.get("/query", params={**HIT, "datasetIds": datasets}, headers=headers or {})
    return resp.status, await resp.json()


def _ids(body: Any) -> list[str]:
    return [d["datasetId"] for d in body["datasetAlleleResponses"]]


async def test_protected_datasets_without_token_are_401_with_a_bearer_challenge(
    guarded: TestClient[Any, Any],
) -> None:
    for datasets in ("mt-registered", "mt-controlled", "mt-registered,mt-controlled"):
        resp = await guarded.get("/query", params={**HIT, "datasetIds": datasets})
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["error"]["errorCode"] == 401


async def test_token_without_rights_is_403_and_scopes_grant_their_tier(
    guarded: TestClient[Any, Any], token_minter: TokenMinter
) -> None:
    nobody = token_minter.bearer("bob", "")
    registered = token_minter.bearer("carol", "beacon:registered")
    granted = token_minter.bearer("dave", "beacon:dataset:mt-controlled")
    assert (await _ask(guarded, "mt-registered", nobody))[0] == 403
    assert (await _ask(guarded, "mt-controlled", nobody))[0] == 403
    assert (await _ask(guarded, "mt-controlled", registered))[0] == 403
    status, body = await _ask(guarded, "mt-registered", registered)
    assert status == 200 and _ids(body) == ["mt-registered"] and body["exists"]
    status, body = await _ask(guarded, "mt-controlled", granted)
    assert status == 200 and _ids(body) == ["mt-controlled"] and body["exists"]


async def test_mixed_request_answers_only_for_allowed_datasets(guarded: TestClient[Any, Any]) -> None:
    status, body = await _ask(guarded, "mt-public,mt-registered,mt-controlled")
    assert status == 200 and _ids(body) == ["mt-public"]
    # Without datasetIds an anonymous caller gets the public datasets only, HIT or MISS alike.
    resp = await guarded.get("/query", params={**HIT, "alternateBases": "G"})
    body = await resp.json()
    assert resp.status == 200 and _ids(body) == ["mt-public"] and body["exists"] is False


async def test_controlled_dataset_leaks_nothing_to_a_caller_without_rights(
    guarded: TestClient[Any, Any], token_minter: TokenMinter
) -> None:
    registered = token_minter.bearer("carol", "beacon:registered")
    hit = await guarded.get("/query", params={**HIT}, headers=registered)
    miss = await guarded.get("/query", params={**HIT, "alternateBases": "G"}, headers=registered)
    for resp in (hit, miss):
        body = await resp.json()
        assert "mt-controlled" not in _ids(body)
        assert "mt-controlled" not in str(body)
    info = await (await guarded.get("/", headers=registered)).json()
    controlled = next(d for d in info["datasets"] if d["id"] == "mt-controlled")
    assert not {"variantCount", "callCount", "sampleCount"} & set(controlled)


async def test_forged_and_expired_access_tokens_are_401(
    guarded: TestClient[Any, Any], token_minter: TokenMinter
) -> None:
    forger = TokenMinter(issuer=token_minter.issuer, audience=token_minter.audience, kid=token_minter.kid)
    forged = forger.bearer("mallory", "admin beacon:dataset:mt-controlled")
    stale = token_minter.mint("dave", "beacon:dataset:mt-controlled", expires_in=-600)
    expired = {"Authorization": f"Bearer {stale}"}
    for headers in (forged, expired):
        assert (await _ask(guarded, "mt-public", headers))[0] == 401


async def test_verified_visas_grant_registered_and_controlled_access(
    guarded: TestClient[Any, Any], token_minter: TokenMinter, visa_issuer: VisaIssuer
) -> None:
    bona_fide = [
        visa_issuer.visa("erin", "ResearcherStatus", REGISTERED_ACCESS_POLICY),
        visa_issuer.visa("erin", "AcceptedTermsAndPolicies", REGISTERED_ACCESS_POLICY),
    ]
    headers = token_minter.bearer("erin", "", ga4gh_passport_v1=bona_fide)
    status, body = await _ask(guarded, "mt-registered", headers)
    assert status == 200 and _ids(body) == ["mt-registered"]
    assert (await _ask(guarded, "mt-controlled", headers))[0] == 403

    grant = [visa_issuer.visa("erin", "ControlledAccessGrants", "http://127.0.0.1:8080/beacon/datasets/mt-controlled")]
    headers = token_minter.bearer("erin", "", ga4gh_passport_v1=grant)
    status, body = await _ask(guarded, "mt-controlled", headers)
    assert status == 200 and _ids(body) == ["mt-controlled"]


async def test_forged_expired_or_foreign_visas_grant_nothing(
    guarded: TestClient[Any, Any], token_minter: TokenMinter, visa_issuer: VisaIssuer
) -> None:
    impostor = VisaIssuer(issuer=visa_issuer.issuer)  # same iss, different key: signature fails
    value = "mt-controlled"
    bad = {
        "forged": impostor.visa("erin", "ControlledAccessGrants", value),
        "expired": visa_issuer.visa("erin", "ControlledAccessGrants", value, expires_in=-600),
        "someone else's": visa_issuer.visa("frank", "ControlledAccessGrants", value),
        "untrusted issuer": VisaIssuer("https://evil.example.org/").visa("erin", "ControlledAccessGrants", value),
    }
    for name, visa in bad.items():
        headers = token_minter.bearer("erin", "", ga4gh_passport_v1=[visa])
        assert (await _ask(guarded, "mt-controlled", headers))[0] == 403, name


async def test_query_budget_limits_each_caller_separately(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    common_settings: CommonSettings,
    chrmt_versions: tuple[Path, dict[str, BuildResult]],
    token_minter: TokenMinter,
    validate_schema: Callable[[str, Any], None],
) -> None:
    client = await aiohttp_client(create_app(beacon_settings(common_settings, query_budget=3)))
    await install_chrmt(client.app, chrmt_versions)
    params = {**HIT, "datasetIds": "mt-public"}
    statuses = [(await client.get("/query", params=params)).status for _ in range(3)]
    limited = await client.get("/query", params=params)
    assert statuses == [200, 200, 200] and limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    body = await limited.json()
    validate_schema("BeaconAlleleResponse", body)
    assert "budget" in body["error"]["errorMessage"]
    other = token_minter.bearer("someone-else", "")
    assert (await client.get("/query", params=params, headers=other)).status == 200
