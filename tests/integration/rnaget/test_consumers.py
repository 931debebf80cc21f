"""Fed by events: AnalysisPublished with an expression matrix -> imported -> ExpressionIndexed (outbox);
AnalysisWithdrawn -> gone. Through the real bus (embedded here, RabbitMQ in the second test)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from libs.common import keys as common_keys
from libs.common.config import CommonSettings
from libs.common.events import (
    AccessLevel,
    AnalysisKind,
    AnalysisPublished,
    AnalysisPublishedData,
    AnalysisWithdrawn,
    AnalysisWithdrawnData,
    FileRef,
)
from services.rnaget.app import create_app
from services.rnaget.settings import RnagetSettings

TSV = b"# from the repository\ngene\tname\tS1\tS2\nG1\tA\t1.5\tNaN\nG2\tB\t0.25\t7\n"


async def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the consumer"
        await asyncio.sleep(0.1)


async def _publish_and_withdraw(client: TestClient[Any, Any]) -> None:
    app = client.server.app
    stored = await app[common_keys.files].put_bytes("analyses/ERZ1/matrix.tsv", TSV)
    published = AnalysisPublished(
        data=AnalysisPublishedData(
            analysis_accession="ERZ1",
            study_accession="ERP9",
            kind=AnalysisKind.EXPRESSION,
            title="liver TPM",
            access_level=AccessLevel.PUBLIC,
            matrix_format="tsv",
            units="TPM",
            files=[FileRef(path="matrix.tsv", uri=stored.uri, size=stored.size, sha256=stored.sha256)],
        )
    )
    await app[common_keys.bus].publish(published)

    async def ticket() -> Any:
        r = await client.get("/expressions/ERZ1/ticket", params={"format": "tsv"})
        return await r.json(content_type=None) if r.status == 200 else None

    found = await _until(ticket)
    assert found["units"] == "TPM" and found["studyID"] == "ERP9"
    body = await (await client.get("/expressions/ERZ1/bytes", params={"format": "tsv"})).text()
    assert body.endswith("G1\tA\t1.5\tNaN\nG2\tB\t0.25\t7.0\n")
    study = await (await client.get("/studies/ERP9")).json(content_type=None)
    assert study["id"] == "ERP9"

    outbox = app[common_keys.mongo_db]["outbox"]
    event = await _until(lambda: outbox.find_one({"type": "ExpressionIndexed"}))
    assert '"expression_id":"ERZ1"' in event["body"] and '"features":2' in event["body"]

    # a redelivered event is harmless (inbox) and a withdrawal removes the matrix
    await app[common_keys.bus].publish(
        AnalysisWithdrawn(
            data=AnalysisWithdrawnData(analysis_accession="ERZ1", kind=AnalysisKind.EXPRESSION, reason="deleted")
        )
    )

    async def gone() -> bool:
        return (await client.get("/expressions/ERZ1/ticket")).status == 404

    await _until(gone)


async def test_published_expression_is_indexed_and_withdrawn(
    aiohttp_client: Any, common_settings: CommonSettings
) -> None:
    client = await aiohttp_client(create_app(RnagetSettings(common=common_settings)))
    await _publish_and_withdraw(client)


@pytest.mark.timeout(120)
async def test_same_flow_over_rabbitmq(aiohttp_client: Any, amqp_settings: CommonSettings) -> None:
    client = await aiohttp_client(create_app(RnagetSettings(common=amqp_settings)))
    await _publish_and_withdraw(client)
