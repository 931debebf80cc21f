"""RNAget integration harness: the real service on a free 127.0.0.1 port, loaded through its admin API.

`rnaget_server(...)` starts `create_app(RnagetSettings(...))` with an aiohttp AppRunner in the test's
event loop (real MongoDB-wire server from the lead's `common_settings`), so subprocesses such as the
GA4GH compliance suites can reach it over HTTP while the test awaits them.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from services.rnaget.app import PREFIX, create_app
from services.rnaget.settings import RnagetSettings
from tests.shared import SHARED

DATA = (SHARED / "data/rnaget-compliance")
PROJECT_ID = "9c0eba51095d3939437e220db196e27b"
STUDY_ID = "f3ba0b59bed0fa2f1030e7cb508324d1"
EXPRESSION_ID = "ac3e9279efd02f1c98de4ed3d335b98e"
CONTINUOUS_ID = "5e22e009f41fc53cbea094a41de8798f"


@dataclass
class Server:
    base: str
    admin: dict[str, str]
    reader: dict[str, str]
    settings: RnagetSettings
    session: aiohttp.ClientSession

    async def put_file(self, kind: str, matrix_id: str, path: Path, **query: str) -> dict[str, Any]:
        url = f"{self.base}admin/{kind}/{matrix_id}"
        async with self.session.put(url, params=query, data=path.read_bytes(), headers=self.admin) as r:
            body = await r.json(content_type=None)
            assert r.status == 201, body
            return dict(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def run_server(common: CommonSettings, minter: TokenMinter, **overrides: Any) -> AsyncIterator[Server]:
    port = free_port()
    settings = RnagetSettings(common=common, **overrides)
    root = web.Application()
    root.add_subapp(PREFIX, create_app(settings))
    runner = web.AppRunner(root)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Server(
                f"http://127.0.0.1:{port}{PREFIX}/",
                minter.bearer("operator", "rnaget:admin"),
                minter.bearer("reader", "rnaget:read"),
                settings,
                session,
            )
    finally:
        await runner.cleanup()


async def load_compliance_dataset(server: Server) -> None:
    """The suites' fixed objects, loaded the way an operator would (admin API, real HTTP)."""
    for what, name in (("projects", "project.json"), ("studies", "study.json")):
        doc = json.loads((DATA / name).read_text())
        async with server.session.put(f"{server.base}admin/{what}/{doc['id']}", json=doc, headers=server.admin) as r:
            assert r.status == 200, await r.text()
    common = {"studyID": STUDY_ID, "projectID": PROJECT_ID, "version": "1.0", "format": "loom"}
    await server.put_file("expressions", EXPRESSION_ID, DATA / "expression.loom", units="TPM", **common)
    await server.put_file("continuous", CONTINUOUS_ID, DATA / "continuous.loom", units="count", **common)


@pytest.fixture
def server_factory(common_settings: CommonSettings, token_minter: TokenMinter) -> Callable[..., Any]:
    def factory(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Server]:
        return run_server(common_settings, token_minter, **overrides)

    return factory


def matrix_tsv(genes: list[str], names: list[str], samples: list[str], values: np.ndarray, comment: str = "") -> bytes:
    """An expression matrix as the TSV the admin import takes (NaN written as NaN)."""
    lines = [f"# {comment}"] if comment else []
    lines.append("\t".join(["gene_id", "gene_name", *samples]))
    for gene, name, row in zip(genes, names, values, strict=True):
        lines.append("\t".join([gene, name, *(repr(float(v)) if v == v else "NaN" for v in row)]))
    return ("\n".join(lines) + "\n").encode()


def parse_tsv(text: str) -> tuple[list[str], list[str], np.ndarray]:
    """A downloaded TSV: (sample ids, feature ids, values)."""
    lines = [ln for ln in text.split("\n") if ln and not ln.startswith("#")]
    header = lines[0].split("\t")[2:]
    genes = [ln.split("\t")[0] for ln in lines[1:]]
    values = np.array([[float(x) for x in ln.split("\t")[2:]] for ln in lines[1:]], dtype=np.float32)
    return header, genes, values.reshape(len(genes), len(header))
