"""The 1.0.0 multi routes (/expressions/ticket, /expressions/bytes) when the filters match several matrices:
one merged file (samples side by side, features united, NaN where a matrix has no value), checked cell by
cell on the real service and database; the cases that cannot be one file are clear 400s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import loompy
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from services.rnaget.app import create_app
from services.rnaget.settings import RnagetSettings

from .conftest import matrix_tsv, parse_tsv

GENES_1 = [f"ENSG{i:011d}" for i in range(0, 40)]
GENES_2 = [f"ENSG{i:011d}" for i in range(70, 20, -1)]  # shares 21..39 with E1, in another order
SAMPLES_1 = [f"A{j} - primary tumour" for j in range(6)]
SAMPLES_2 = [f"B{j}" for j in range(4)]


def _values(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.gamma(1.0, 10.0, size=shape).astype(np.float32)
    values[rng.random(shape) < 0.05] = np.nan
    return values


def _tsv(genes: list[str], samples: list[str], values: np.ndarray) -> bytes:
    return matrix_tsv(genes, [g.lower() for g in genes], samples, values)


VALUES_1, VALUES_2 = _values((40, 6), 1), _values((50, 4), 2)


@pytest.fixture
async def client(
    aiohttp_client: Any, common_settings: CommonSettings, token_minter: TokenMinter
) -> TestClient[Any, Any]:
    c: TestClient[Any, Any] = await aiohttp_client(create_app(RnagetSettings(common=common_settings)))
    admin = token_minter.bearer("op", "rnaget:admin")
    uploads = [
        ("E1", GENES_1, SAMPLES_1, VALUES_1, {"studyID": "ST1", "version": "1.0", "units": "TPM"}),
        ("E2", GENES_2, SAMPLES_2, VALUES_2, {"studyID": "ST1", "version": "1.0", "units": "TPM"}),
        ("E3", GENES_1, SAMPLES_2, _values((40, 4), 3), {"studyID": "ST2", "version": "1.0", "units": "FPKM"}),
        ("E4", GENES_1, SAMPLES_1, _values((40, 6), 4), {"studyID": "ST1", "version": "2.0", "units": "TPM"}),
    ]
    for matrix_id, genes, samples, values, meta in uploads:
        r = await c.put(
            f"/admin/expressions/{matrix_id}", data=_tsv(genes, samples, values), headers=admin,
            params={"format": "tsv", **meta},
        )
        assert r.status == 201, await r.text()
    return c


def _expected(genes: list[str]) -> np.ndarray:
    v1, v2 = VALUES_1, VALUES_2
    out = np.full((len(genes), 10), np.nan, np.float32)
    for i, gene in enumerate(genes):
        if gene in GENES_1:
            out[i, :6] = v1[GENES_1.index(gene)]
        if gene in GENES_2:
            out[i, 6:] = v2[GENES_2.index(gene)]
    return out


async def test_bytes_over_two_matrices_is_one_merged_matrix(client: TestClient[Any, Any], tmp_path: Path) -> None:
    wanted = [GENES_1[3], GENES_1[30], GENES_2[0], "ENSG99999999999"]  # only E1, both, only E2, neither
    query = {"studyID": "ST1", "version": "1.0", "featureIDList": ",".join(wanted)}
    genes = [GENES_1[3], GENES_1[30], GENES_2[0]]  # E1's order, then E2's new features

    r = await client.get("/expressions/bytes", params={**query, "format": "tsv"})
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/tab-separated-values")
    assert r.headers["X-Matrix-Shape"] == "3x10" and "ST1-merged.tsv" in r.headers["Content-Disposition"]
    text = await r.text()
    assert "# seqhub RNAget expression merged from E1, E2" in text
    header, got_genes, values = parse_tsv(text)
    assert header == SAMPLES_1 + SAMPLES_2 and got_genes == genes
    assert np.array_equal(values, _expected(genes), equal_nan=True)

    r = await client.post("/expressions/bytes", json={**query, "format": "loom"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/vnd.loom"
    (tmp_path / "m.loom").write_bytes(await r.read())
    with loompy.connect(str(tmp_path / "m.loom"), mode="r") as ds:
        assert np.array_equal(ds[:, :], _expected(genes), equal_nan=True)
        assert list(ds.ca.Sample) == SAMPLES_1 + SAMPLES_2 and list(ds.ra.GeneID) == genes


async def test_ticket_over_two_matrices_points_at_the_merged_bytes(client: TestClient[Any, Any]) -> None:
    query = {"studyID": "ST1", "version": "1.0", "sampleIDList": f"{SAMPLES_1[2]},{SAMPLES_2[1]}", "format": "tsv"}
    r = await client.get("/expressions/ticket", params=query)
    assert r.status == 200, await r.text()
    ticket = await r.json(content_type=None)
    assert "id" not in ticket
    assert ticket["units"] == "TPM" and ticket["studyID"] == "ST1" and ticket["version"] == "1.0"
    assert ticket["fileType"] == "tsv" and "/expressions/bytes?" in ticket["url"]
    r = await client.get(ticket["url"].split(str(client.make_url("")), 1)[-1])
    assert r.status == 200, await r.text()
    header, genes, values = parse_tsv(await r.text())
    assert header == [SAMPLES_1[2], SAMPLES_2[1]]
    assert genes == GENES_1 + [g for g in GENES_2 if g not in GENES_1]
    assert np.array_equal(values, _expected(genes)[:, [2, 7]], equal_nan=True)
    # one matching matrix: the ticket is that matrix's own, as before
    one = await (await client.get("/expressions/ticket", params={**query, "studyID": "ST2"})).json(content_type=None)
    assert one["id"] == "E3" and "/expressions/E3/bytes?" in one["url"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "different units (FPKM: E3; TPM: E1, E2, E4)"),
        ({"units": "TPM"}, "'A0 - primary tumour' is in both E1 and E4"),
        ({"studyID": "nope"}, "no expression matrix matches"),
    ],
)
async def test_matches_that_cannot_be_one_file_are_refused(
    client: TestClient[Any, Any], query: dict[str, str], message: str
) -> None:
    for route in ("/expressions/bytes", "/expressions/ticket"):
        r = await client.get(route, params={**query, "format": "tsv"})
        body = await r.json(content_type=None)
        assert r.status == (404 if "no expression" in message else 400) and message in body["message"], body


async def test_no_more_matrices_are_merged_than_the_server_keeps_open(
    aiohttp_client: Any, common_settings: CommonSettings, token_minter: TokenMinter
) -> None:
    c: TestClient[Any, Any] = await aiohttp_client(create_app(RnagetSettings(common=common_settings, open_files=1)))
    admin = token_minter.bearer("op", "rnaget:admin")
    for matrix_id, samples in (("F1", SAMPLES_1), ("F2", SAMPLES_2)):
        data = _tsv(GENES_1[:3], samples, VALUES_1[:3, : len(samples)])
        params = {"format": "tsv", "units": "TPM"}
        r = await c.put(f"/admin/expressions/{matrix_id}", data=data, headers=admin, params=params)
        assert r.status == 201, await r.text()
    r = await c.get("/expressions/bytes", params={"format": "loom"})
    body = await r.json(content_type=None)
    assert r.status == 400 and "2 expression matrices match (F1, F2, …); at most 1 are merged" in body["message"]
