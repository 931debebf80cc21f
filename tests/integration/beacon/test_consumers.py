"""Fed by events on the real bus path: AnalysisPublished → indexed dataset + VariantsIndexed in the outbox;
AnalysisWithdrawn → gone from answers; a withdrawal or re-index during a query storm never shows a
half-indexed or withdrawn dataset."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from libs.common import keys as common_keys
from libs.common.events import (
    AccessLevel,
    AnalysisKind,
    AnalysisPublished,
    AnalysisPublishedData,
    AnalysisWithdrawn,
    AnalysisWithdrawnData,
    FileRef,
)
from libs.common.testing import TokenMinter

from .conftest import CHRMT

HIT = {
    "referenceName": "MT",
    "start": "9",
    "referenceBases": "T",
    "alternateBases": "C",
    "assemblyId": "GRCh38",
    "includeDatasetResponses": "ALL",
}


async def _eventually(probe: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_published_analysis_is_indexed_announced_and_withdrawn(beacon: TestClient[Any, Any]) -> None:
    app = beacon.app
    assert app is not None
    stored = await app[common_keys.files].put_bytes("analyses/AN1/calls.vcf.gz", CHRMT.read_bytes())
    published = AnalysisPublished(
        correlation_id="req-123",
        data=AnalysisPublishedData(
            analysis_accession="AN1",
            kind=AnalysisKind.VARIANTS,
            access_level=AccessLevel.PUBLIC,
            dataset_id="an1-calls",
            assembly="GRCh38",
            title="AN1 calls",
            files=[FileRef(path="calls.vcf.gz", uri=stored.uri, size=stored.size, sha256=stored.sha256)],
        ),
    )
    await app[common_keys.bus].publish(published)

    async def indexed() -> Any:
        body = await (await beacon.get("/query", params={**HIT, "datasetIds": "an1-calls"})).json()
        return body if body.get("exists") else None

    body = await _eventually(indexed)
    assert body["datasetAlleleResponses"][0]["variantCount"] == 3
    announced = await app[common_keys.mongo_db]["outbox"].find_one({"type": "VariantsIndexed"})
    assert announced is not None and '"dataset_id":"an1-calls"' in announced["body"].replace(" ", "")
    assert '"correlation_id":"req-123"' in announced["body"].replace(" ", "")

    await app[common_keys.bus].publish(
        AnalysisWithdrawn(
            data=AnalysisWithdrawnData(
                analysis_accession="AN1", kind=AnalysisKind.VARIANTS, dataset_id="an1-calls", reason="deleted"
            )
        )
    )

    async def gone() -> bool:
        resp = await beacon.get("/query", params={**HIT, "datasetIds": "an1-calls"})
        return resp.status == 400

    await _eventually(gone)
    # A redelivered publication of the withdrawn analysis does not bring it back.
    await app[common_keys.bus].publish(published.model_copy(update={"id": "redelivered-1"}))
    await asyncio.sleep(1.0)
    assert (await beacon.get("/query", params={**HIT, "datasetIds": "an1-calls"})).status == 400


async def test_withdrawal_and_reindex_during_queries_never_show_partial_answers(
    beacon: TestClient[Any, Any], token_minter: TokenMinter
) -> None:
    admin = token_minter.bearer("ops", "admin")
    params = {**HIT, "assemblyId": "GRCh37", "datasetIds": "mt-public"}
    seen: list[tuple[int, Any]] = []
    stop = asyncio.Event()

    async def storm() -> None:
        while not stop.is_set():
            resp = await beacon.get("/query", params=params)
            seen.append((resp.status, await resp.json()))

    workers = [asyncio.create_task(storm()) for _ in range(4)]
    await asyncio.sleep(0.3)
    reload = await beacon.put(
        "/datasets/mt-public",
        params={"assembly": "GRCh37", "access": "PUBLIC"},
        data=CHRMT.read_bytes(),
        headers=admin,
    )
    assert reload.status == 201
    await asyncio.sleep(0.3)
    assert (await beacon.delete("/datasets/mt-public", headers=admin)).status == 204
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*workers)

    assert len(seen) > 20
    statuses = [status for status, _ in seen]
    assert set(statuses) <= {200, 400}
    first_gone = statuses.index(400)
    assert all(s == 400 for s in statuses[first_gone:]), "a withdrawn dataset came back"
    for status, body in seen:
        if status == 200:
            (entry,) = body["datasetAlleleResponses"]
            assert entry["exists"] and entry["variantCount"] == 3 and entry["callCount"] == 2534
        else:
            assert "mt-public" in body["error"]["errorMessage"]


async def test_operator_load_rejects_bad_input_clearly(beacon: TestClient[Any, Any], token_minter: TokenMinter) -> None:
    admin = token_minter.bearer("ops", "admin")
    garbage = await beacon.put("/datasets/junk", params={"assembly": "GRCh38"}, data=b"not a vcf\n", headers=admin)
    assert garbage.status == 400 and "VCF" in (await garbage.json())["error"]["errorMessage"]
    no_assembly = await beacon.put("/datasets/junk", data=CHRMT.read_bytes(), headers=admin)
    assert no_assembly.status == 400 and "assembly" in (await no_assembly.json())["error"]["errorMessage"]
    bad_access = await beacon.put(
        "/datasets/junk", params={"assembly": "GRCh38", "access": "SECRET"}, data=b"", headers=admin
    )
    assert bad_access.status == 400
    anonymous = await beacon.put("/datasets/junk", params={"assembly": "GRCh38"}, data=CHRMT.read_bytes())
    assert anonymous.status == 401
    info = await (await beacon.get("/")).json()
    assert "junk" not in {d["id"] for d in info["datasets"]}
