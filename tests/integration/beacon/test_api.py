"""The beacon HTTP API on the real MongoDB-wire server with the chrMT datasets: info, service-info, GET and
POST queries, include modes, counts, CORS; every body validated against the served contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

HIT = {
    "referenceName": "MT",
    "start": "9",
    "referenceBases": "T",
    "alternateBases": "C",
    "assemblyId": "GRCh37",
}
MISS = {**HIT, "alternateBases": "G"}
Validate = Callable[[str, Any], None]


async def test_info_lists_datasets_with_access_level_and_hides_counts_of_protected_ones(
    beacon: TestClient[Any, Any], validate_schema: Validate
) -> None:
    resp = await beacon.get("/")
    assert resp.status == 200
    body = await resp.json()
    validate_schema("Beacon", body)
    by_id = {d["id"]: d for d in body["datasets"]}
    assert set(by_id) == {"mt-public", "mt-registered", "mt-controlled"}
    assert by_id["mt-public"]["variantCount"] == 4242
    assert by_id["mt-public"]["callCount"] == 3892
    assert by_id["mt-public"]["sampleCount"] == 2534
    assert by_id["mt-controlled"]["info"]["accessType"] == "CONTROLLED"
    assert "variantCount" not in by_id["mt-controlled"]
    assert body["info"]["bracketBounds"] == "inclusive"


async def test_service_info_is_a_beacon_and_smaller_than_info(beacon: TestClient[Any, Any]) -> None:
    info = await (await beacon.get("/service-info")).read()
    full = await (await beacon.get("/")).read()
    resp = await beacon.get("/service-info")
    body = await resp.json()
    assert body["type"]["artifact"] == "beacon" and body["type"]["group"] == "org.ga4gh"
    assert len(info) < len(full)


async def test_known_allele_is_found_at_zero_based_start_with_haploid_frequency(
    beacon: TestClient[Any, Any], validate_schema: Validate
) -> None:
    resp = await beacon.get("/query", params={**HIT, "includeDatasetResponses": "ALL"})
    assert resp.status == 200
    body = await resp.json()
    validate_schema("BeaconAlleleResponse", body)
    assert body["exists"] is True
    assert "error" not in body
    (entry,) = body["datasetAlleleResponses"]  # anonymous: only the public dataset is queried
    assert entry["datasetId"] == "mt-public"
    assert entry["variantCount"] == 3 and entry["callCount"] == 2534 and entry["sampleCount"] == 3
    assert abs(entry["frequency"] - 3 / 2534) < 1e-9
    assert entry["info"]["matchedAlleles"][0]["end"] == 10


async def test_miss_and_the_one_based_position_are_not_found(beacon: TestClient[Any, Any]) -> None:
    for params in (MISS, {**HIT, "start": "10"}):
        body = await (await beacon.get("/query", params=params)).json()
        assert body["exists"] is False
        assert body["datasetAlleleResponses"] == []


async def test_include_dataset_responses_hit_miss_none(beacon: TestClient[Any, Any]) -> None:
    ids = "mt-public"
    for params, expected in (
        ({**HIT, "includeDatasetResponses": "HIT"}, [True]),
        ({**HIT, "includeDatasetResponses": "MISS"}, []),
        ({**MISS, "includeDatasetResponses": "MISS"}, [False]),
        ({**MISS, "includeDatasetResponses": "HIT"}, []),
        ({**HIT, "includeDatasetResponses": "NONE"}, []),
        (HIT, []),
    ):
        body = await (await beacon.get("/query", params={**params, "datasetIds": ids})).json()
        assert [d["exists"] for d in body["datasetAlleleResponses"]] == expected, params


async def test_dataset_ids_repeated_or_comma_separated_and_post_json_or_form_agree(
    beacon: TestClient[Any, Any], token_minter: Any, validate_schema: Validate
) -> None:
    auth = token_minter.bearer("alice", "beacon:registered")
    base = {**HIT, "includeDatasetResponses": "ALL"}
    repeated = [*base.items(), ("datasetIds", "mt-public"), ("datasetIds", "mt-registered")]
    answers = [
        await (await beacon.get("/query", params=repeated, headers=auth)).json(),
        await (
            await beacon.get("/query", params={**base, "datasetIds": "mt-public,mt-registered"}, headers=auth)
        ).json(),
        await (await beacon.post("/query", data=repeated, headers=auth)).json(),
        await (
            await beacon.post(
                "/query",
                json={**base, "start": 9, "datasetIds": ["mt-public", "mt-registered"]},
                headers=auth,
            )
        ).json(),
    ]
    for body in answers:
        validate_schema("BeaconAlleleResponse", body)
        assert [d["datasetId"] for d in body["datasetAlleleResponses"]] == ["mt-public", "mt-registered"]
        assert all(d["exists"] and d["variantCount"] == 3 for d in body["datasetAlleleResponses"])
        assert body["alleleRequest"]["start"] == 9


async def test_wildcard_reports_every_matched_allele_in_one_dataset_entry(
    beacon: TestClient[Any, Any],
) -> None:
    params = {
        **HIT,
        "start": "63",
        "referenceBases": "CT",
        "alternateBases": "NN",
        "includeDatasetResponses": "HIT",
    }
    body = await (await beacon.get("/query", params=params)).json()
    (entry,) = body["datasetAlleleResponses"]
    assert entry["info"]["matchedAlleleCount"] == 3
    assert {a["alternateBases"] for a in entry["info"]["matchedAlleles"]} == {"TT", "AT", "TC"}
    assert entry["variantCount"] == 120 and entry["callCount"] == 2534


async def test_cors_headers_and_preflight(beacon: TestClient[Any, Any]) -> None:
    resp = await beacon.get("/query", params=HIT, headers={"Origin": "https://example.org"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    pre = await beacon.options(
        "/query", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    )
    assert pre.status == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]


async def test_wide_bracket_query_off_the_event_loop_gives_the_same_answer(
    beacon: TestClient[Any, Any], monkeypatch: Any
) -> None:
    from services.beacon import service

    params = {**HIT, "includeDatasetResponses": "ALL", "referenceBases": "N", "alternateBases": "N"}
    params.pop("start")
    params.update(startMin="0", startMax="16569", endMin="0", endMax="17000")
    inline = await (await beacon.get("/query", params=params)).json()
    monkeypatch.setattr(service, "INLINE_ROWS", 10)
    threaded = await (await beacon.get("/query", params=params)).json()
    assert inline == threaded
    (entry,) = inline["datasetAlleleResponses"]
    assert entry["info"]["matchedAlleleCount"] == 4242
