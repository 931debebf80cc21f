"""The RNAget HTTP API end to end on the real database: uploads, slices checked cell by cell through
TSV and loom, POST == GET, the protocol's media types and status codes, access control."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import loompy
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from services.rnaget import keys
from services.rnaget.app import create_app
from services.rnaget.models import MEDIA_TYPE
from services.rnaget.settings import RnagetSettings

from .conftest import matrix_tsv, parse_tsv

N_FEATURES, N_SAMPLES = 300, 40
SAMPLES = [f"S{j} - primary tumour" for j in range(N_SAMPLES)]
GENES = [f"ENSG{i:011d}" for i in range(N_FEATURES)]
NAMES = [f"GENE{i}" for i in range(N_FEATURES)]


@pytest.fixture
def matrix() -> np.ndarray:
    rng = np.random.default_rng(11)
    values = rng.gamma(1.0, 10.0, size=(N_FEATURES, N_SAMPLES)).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def _tsv(values: np.ndarray) -> bytes:
    n = len(values)  # the first n features
    return matrix_tsv(GENES[:n], NAMES[:n], SAMPLES, values, comment="test matrix")


@pytest.fixture
async def client(
    aiohttp_client: Any, common_settings: CommonSettings, token_minter: TokenMinter, matrix: np.ndarray
) -> TestClient[Any, Any]:
    settings = RnagetSettings(common=common_settings, max_slice_cells=5000)
    c: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    admin = token_minter.bearer("op", "rnaget:admin")
    r = await c.put("/admin/projects/P1", json={"name": "Project one", "version": "1.0"}, headers=admin)
    assert r.status == 200, await r.text()
    r = await c.put(
        "/admin/studies/ST1", json={"name": "Study one", "parentProjectID": "P1", "version": "1.0"}, headers=admin
    )
    assert r.status == 200, await r.text()
    r = await c.put(
        "/admin/expressions/E1",
        data=_tsv(matrix),
        headers=admin,
        params={"format": "tsv", "units": "TPM", "studyID": "ST1", "version": "1.0"},
    )
    assert r.status == 201, await r.text()
    return c


@pytest.mark.parametrize("seed", range(4))
async def test_random_slices_through_tsv_and_loom_match_the_source(
    client: TestClient[Any, Any], matrix: np.ndarray, tmp_path: Path, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(N_FEATURES, int(rng.integers(1, 60)), replace=False))
    cols = np.sort(rng.choice(N_SAMPLES, int(rng.integers(1, N_SAMPLES)), replace=False))
    query = {"featureIDList": ",".join(GENES[r] for r in rows), "sampleIDList": ",".join(SAMPLES[c] for c in cols)}
    expected = matrix[np.ix_(rows, cols)]

    r = await client.get("/expressions/E1/bytes", params={**query, "format": "tsv"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/tab-separated-values")
    header, genes, values = parse_tsv(await r.text())
    assert header == [SAMPLES[c] for c in cols] and genes == [GENES[i] for i in rows]
    assert np.array_equal(values, expected, equal_nan=True)

    r = await client.get("/expressions/E1/bytes", params={**query, "format": "loom"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/vnd.loom"
    (tmp_path / "s.loom").write_bytes(await r.read())
    with loompy.connect(str(tmp_path / "s.loom"), mode="r") as ds:
        assert np.array_equal(ds[:, :], expected, equal_nan=True)
        assert list(ds.ca.Sample) == [SAMPLES[c] for c in cols]
    tmp_dir = client.server.app[keys.settings].data_dir() / "tmp"
    assert list(tmp_dir.glob("*.loom")) == []  # the streamed temp file is gone


async def test_thresholds_through_the_api(client: TestClient[Any, Any], matrix: np.ndarray) -> None:
    thresholds = [{"threshold": 8.0, "featureName": NAMES[5]}, {"threshold": 3.5, "featureID": GENES[9]}]
    r = await client.get(
        "/expressions/E1/bytes",
        params={
            "format": "tsv",
            "featureIDList": ",".join(GENES[:20]),
            "minExpression": json.dumps(thresholds[:1]),
            "maxExpression": json.dumps(thresholds[1:]),
            "feature_min_value": "30",
        },
    )
    assert r.status == 200, await r.text()
    header, genes, values = parse_tsv(await r.text())
    keep_cols = np.flatnonzero((matrix[5] >= 8.0) & (matrix[9] <= 3.5))
    sub = matrix[:20][:, keep_cols]
    keep_rows = np.flatnonzero((sub >= 30.0).any(axis=1))
    assert header == [SAMPLES[c] for c in keep_cols]
    assert genes == [GENES[i] for i in keep_rows]
    assert np.array_equal(values, sub[keep_rows], equal_nan=True)


async def test_post_search_agrees_with_get(client: TestClient[Any, Any]) -> None:
    query = {"format": "tsv", "studyID": "ST1", "featureIDList": f"{GENES[1]},{GENES[2]}", "sampleIDList": SAMPLES[3]}
    got = await (await client.get("/expressions/search", params=query)).json(content_type=None)
    posted = await (
        await client.post(
            "/expressions/search", json={**query, "featureIDList": [GENES[1], GENES[2]], "sampleIDList": [SAMPLES[3]]}
        )
    ).json(content_type=None)
    assert got == posted and len(got) == 1 and got[0]["fileType"] == "tsv"
    via_get = await (await client.get(got[0]["url"].split(str(client.make_url("")), 1)[-1])).text()
    assert via_get.count("\n") > 2
    ticket = await (await client.post("/expressions/ticket", json=query)).json(content_type=None)
    assert ticket["url"] == got[0]["url"] and ticket["units"] == "TPM" and ticket["studyID"] == "ST1"
    projects = await (await client.post("/projects/search", json={"version": "1.0"})).json(content_type=None)
    assert projects == await (await client.get("/projects", params={"version": "1.0"})).json(content_type=None)


async def test_json_media_type_and_degrade(client: TestClient[Any, Any]) -> None:
    r = await client.get("/projects/P1")
    assert r.headers["Content-Type"] == f"{MEDIA_TYPE}; charset=us-ascii"
    r = await client.get("/projects/P1", headers={"Accept": "application/json"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    r = await client.get("/projects/P1", headers={"Accept": "text/html"})
    assert r.status == 406 and "message" in await r.json(content_type=None)
    small = {"featureIDList": GENES[0]}
    r = await client.get("/expressions/E1/bytes", params=small, headers={"Accept": "text/tab-separated-values"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/tab-separated-values")
    r = await client.get("/expressions/E1/bytes", params={**small, "format": "loom"}, headers={"Accept": "text/csv"})
    assert r.status == 406


@pytest.mark.parametrize(
    ("path", "query", "status", "fragment"),
    [
        ("/expressions/E1/bytes", {"featureIDList": ","}, 400, "featureIDList has an empty item"),
        ("/expressions/E1/bytes", {"minExpression": "[{"}, 400, "minExpression must be a JSON array"),
        ("/expressions/E1/bytes", {"minExpression": '[{"threshold": "x"}]'}, 400, "threshold must be a finite"),
        ("/expressions/E1/bytes", {"feature_min_value": "nan"}, 400, "feature_min_value must be a finite"),
        ("/expressions/E1/bytes", {"format": "csv"}, 406, "format 'csv' is not supported"),
        ("/expressions/E1/bytes", {"colour": "red"}, 400, "unsupported parameter(s): colour"),
        ("/expressions/NOPE/bytes", {}, 404, "expression 'NOPE' not found"),
        ("/expressions/ticket", {}, 400, "format is required"),
        ("/expressions/ticket", {"format": "tsv", "studyID": "none"}, 404, "no expression matrix matches"),
        ("/expressions/E1/bytes", {"format": "tsv"}, 400, "above this server's limit of 5000"),
        ("/projects/none", {}, 404, "project 'none' not found"),
        ("/expressions/filters", {"type": "both"}, 400, "type must be 'feature' or 'sample'"),
    ],
)
async def test_bad_input_gets_a_clear_error(
    client: TestClient[Any, Any], path: str, query: dict[str, str], status: int, fragment: str
) -> None:
    r = await client.get(path, params=query)
    body = await r.json(content_type=None)
    assert r.status == status, body
    assert fragment in body["message"]
    assert r.headers["Content-Type"].startswith(MEDIA_TYPE)


async def test_malformed_post_body_is_a_400(client: TestClient[Any, Any]) -> None:
    r = await client.post("/expressions/search", data=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "JSON object" in (await r.json(content_type=None))["message"]


async def test_filters_advertise_real_values(client: TestClient[Any, Any]) -> None:
    filters = await (await client.get("/expressions/filters", params={"type": "sample"})).json(content_type=None)
    by_name = {f["filter"]: f for f in filters}
    assert by_name["studyID"]["values"] == ["ST1"] and by_name["projectID"]["values"] == ["P1"]
    feature = await (await client.get("/expressions/filters", params={"type": "feature"})).json(content_type=None)
    assert {f["filter"] for f in feature} >= {"featureIDList", "minExpression", "feature_min_value"}


async def test_unknown_ids_in_lists_slice_to_nothing(client: TestClient[Any, Any]) -> None:
    r = await client.get("/expressions/E1/bytes", params={"format": "tsv", "featureIDList": "NOPE"})
    assert r.status == 200
    assert [ln for ln in (await r.text()).split("\n") if ln and not ln.startswith("#")][1:] == []


async def test_controlled_matrices_need_the_read_scope(
    client: TestClient[Any, Any], token_minter: TokenMinter, matrix: np.ndarray
) -> None:
    admin = token_minter.bearer("op", "rnaget:admin")
    r = await client.put(
        "/admin/expressions/E2",
        data=_tsv(matrix[:5]),
        headers=admin,
        params={"format": "tsv", "units": "TPM", "studyID": "ST1", "access_level": "CONTROLLED"},
    )
    assert r.status == 201
    assert (await client.get("/expressions/E2/ticket")).status == 401
    assert (await client.get("/expressions/E2/ticket", headers=token_minter.bearer("u", "other"))).status == 403
    reader = token_minter.bearer("u", "rnaget:read")
    ticket = await (await client.get("/expressions/E2/ticket", headers=reader)).json(content_type=None)
    assert ticket["headers"] == reader  # the download needs the same token; the ticket carries it
    assert (
        await client.get("/expressions/E2/bytes", params={"format": "tsv"}, headers=ticket["headers"])
    ).status == 200
    anonymous = await (await client.get("/expressions/search", params={"format": "tsv"})).json(content_type=None)
    assert [o["id"] for o in anonymous] == ["E1"]
    assert (await client.get("/projects/P1", headers={"Authorization": "Bearer garbage"})).status == 401


async def test_admin_routes_need_the_admin_scope(client: TestClient[Any, Any], token_minter: TokenMinter) -> None:
    r = await client.put("/admin/projects/P9", json={}, headers=token_minter.bearer("u", "rnaget:read"))
    assert r.status == 403
    r = await client.put(
        "/admin/expressions/BAD",
        data=b"id\tname\ts1\ng1\tA\tx\n",
        headers=token_minter.bearer("op", "rnaget:admin"),
        params={"format": "tsv", "units": "TPM"},
    )
    assert r.status == 400 and "line 2" in (await r.json(content_type=None))["message"]
    r = await client.delete("/admin/expressions/E1", headers=token_minter.bearer("op", "rnaget:admin"))
    assert r.status == 204
    assert (await client.get("/expressions/E1/ticket")).status == 404


async def test_gzipped_tsv_import(client: TestClient[Any, Any], token_minter: TokenMinter, matrix: np.ndarray) -> None:
    import gzip

    data = gzip.compress(_tsv(matrix[:7]))
    r = await client.put(
        "/admin/expressions/EZ",
        data=data,
        headers=token_minter.bearer("op", "rnaget:admin"),
        params={"format": "tsv", "units": "FPKM"},
    )
    assert r.status == 201 and (await r.json(content_type=None))["rows"] == 7


async def test_continuous_range_rules(client: TestClient[Any, Any], token_minter: TokenMinter) -> None:
    data = io.BytesIO(b"track\tchr1:0\tchr1:1\tchr1:2\tchr2:5\nt1\t1\t2\t3\t4\nt2\t5\t6\t7\t8\n")
    r = await client.put(
        "/admin/continuous/C1",
        data=data.getvalue(),
        headers=token_minter.bearer("op", "rnaget:admin"),
        params={"format": "tsv", "units": "count"},
    )
    assert r.status == 201, await r.text()
    cases = [
        ({"start": "1"}, 400),
        ({"chr": "chr1", "start": "2", "end": "1"}, 501),
        ({"chr": "chr1", "start": "1", "end": "1"}, 404),
        ({"chr": "chr1", "start": "-1"}, 400),
        ({"chr": "chr1", "start": "x"}, 400),
    ]
    for query, status in cases:
        assert (await client.get("/continuous/C1/bytes", params=query)).status == status, query
    r = await client.get("/continuous/C1", params={"chr": "chr1", "start": "1", "end": "3", "format": "tsv"})
    lines = (await r.text()).split("\n")
    assert lines[:2] == ["#labels\ttracks", "#range\tchr1:1-3"]
    data = [ln for ln in lines if ln and not ln.startswith("#")]
    assert data == ["tracks\tchr1:1\tchr1:2", "t1\t2.0\t3.0", "t2\t6.0\t7.0"]


async def test_service_info(client: TestClient[Any, Any]) -> None:
    info = await (await client.get("/service-info")).json(content_type=None)
    assert info["type"]["artifact"] == "rnaget" and info["supported"]["continuous"] is True
