"""The spec's request rules one by one: each bad request is a 400 Beacon error object naming the parameter,
valid against the served contract, never a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

BASE = {
    "referenceName": "MT",
    "start": "9",
    "referenceBases": "T",
    "alternateBases": "C",
    "assemblyId": "GRCh37",
}
BRACKETS = {"startMin": "0", "startMax": "100", "endMin": "0", "endMax": "200"}


def _without(*names: str, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in BASE.items() if k not in names}, **extra}


BAD: list[tuple[str, dict[str, str], str]] = [
    ("missing referenceName", _without("referenceName"), "referenceName"),
    ("missing referenceBases", _without("referenceBases"), "referenceBases"),
    ("missing assemblyId", _without("assemblyId"), "assemblyId"),
    ("chr prefix", _without(referenceName="chr1"), "referenceName"),
    ("unknown chromosome", _without(referenceName="23"), "referenceName"),
    ("lower-case bases", _without(referenceBases="t"), "referenceBases"),
    ("non-ACGTN alternate", _without(alternateBases="<DEL>"), "alternateBases"),
    ("neither alternateBases nor variantType", _without("alternateBases"), "alternateBases or variantType"),
    ("unknown variantType", _without("alternateBases", variantType="SNV"), "variantType"),
    ("negative start", _without(start="-1"), "start"),
    ("non-integer start", _without(start="nine"), "start"),
    ("end before start", _without(end="5"), "end"),
    ("end without start", _without("start", end="10"), "end requires start"),
    ("no coordinates", _without("start"), "start"),
    ("start with brackets", _without(startMin="1"), "startMin"),
    ("incomplete brackets", _without("start", startMin="0", startMax="10", endMin="0"), "endMax"),
    ("startMin > startMax", _without("start", **{**BRACKETS, "startMin": "200"}), "startMin"),
    ("endMin > endMax", _without("start", **{**BRACKETS, "endMin": "300"}), "endMin"),
    ("mateName without BND", _without(mateName="2"), "mateName"),
    ("bad includeDatasetResponses", _without(includeDatasetResponses="SOME"), "includeDatasetResponses"),
    ("unknown parameter", _without(includeDatsetResponses="ALL"), "includeDatsetResponses"),
    ("assembly mismatch", _without(assemblyId="GRCh38"), "assemblyId"),
    ("unknown dataset", _without(datasetIds="nope"), "datasetIds"),
    (
        "assembly mismatch of a named dataset",
        _without(assemblyId="GRCh38", datasetIds="mt-public"),
        "assemblyId",
    ),
]


@pytest.mark.parametrize(("params", "named"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_bad_get_request_is_400_naming_the_parameter(
    beacon: TestClient[Any, Any],
    validate_schema: Callable[[str, Any], None],
    params: dict[str, str],
    named: str,
) -> None:
    resp = await beacon.get("/query", params=params)
    assert resp.status == 400
    body = await resp.json()
    validate_schema("BeaconAlleleResponse", body)
    assert body["error"]["errorCode"] == 400
    assert named in body["error"]["errorMessage"]
    assert "exists" not in body and body["datasetAlleleResponses"] == []


async def test_repeated_single_valued_parameter_is_rejected(beacon: TestClient[Any, Any]) -> None:
    resp = await beacon.get("/query", params=[*BASE.items(), ("start", "10")])
    assert resp.status == 400
    assert "start" in (await resp.json())["error"]["errorMessage"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**BASE, "start": "9"}, "ok"),
        ({**BASE, "start": 9.5}, "start"),
        ({**BASE, "start": True}, "start"),
        ({**BASE, "start": 9, "datasetIds": "mt-public"}, "ok"),
        ({**BASE, "start": 9, "datasetIds": [1]}, "datasetIds"),
        ({**BASE, "start": 9, "referenceName": 1}, "referenceName"),
        ([BASE], "body"),
    ],
)
async def test_post_json_types(beacon: TestClient[Any, Any], body: Any, named: str) -> None:
    resp = await beacon.post("/query", json=body)
    if named == "ok":
        assert resp.status == 200
        assert (await resp.json())["exists"] is True
    else:
        assert resp.status == 400
        assert named in (await resp.json())["error"]["errorMessage"]


async def test_post_without_body_or_with_broken_json_or_other_media_type(
    beacon: TestClient[Any, Any],
) -> None:
    empty = await beacon.post("/query", data=b"", headers={"Content-Type": "application/json"})
    broken = await beacon.post("/query", data=b"{", headers={"Content-Type": "application/json"})
    text = await beacon.post("/query", data=b"x", headers={"Content-Type": "text/plain"})
    assert (empty.status, broken.status, text.status) == (400, 400, 415)


async def test_bnd_end_before_start_and_mate_name_with_brackets_are_accepted(
    beacon: TestClient[Any, Any],
) -> None:
    bnd = _without("alternateBases", referenceBases="N", variantType="BND", end="3", mateName="MT")
    assert (await beacon.get("/query", params=bnd)).status == 200
    bracket = _without(
        "start",
        "alternateBases",
        referenceBases="N",
        variantType="BND",
        mateName="2",
        startMin="0",
        startMax="100",
    )
    resp = await beacon.get("/query", params=bracket)
    assert resp.status == 200 and (await resp.json())["exists"] is False  # chrMT has no breakends
