"""schemathesis (4.x CLI) against the served offline v1.1.0 contract, on a real server on 127.0.0.1 with the
chrMT datasets loaded: no 5xx, no response that violates the schema, schema-violating requests rejected.

``positive_data_acceptance`` is excluded: requests that are schema-valid can still break the spec's
prose rules (e.g. ``start`` with ``startMin``, or an assemblyId no dataset has), which are 400 by design.
Bounded (few examples per operation) so it stays in the default suite.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from libs.common.config import CommonSettings
from services.beacon.app import OPENAPI, create_app
from services.beacon.index import BuildResult

from .conftest import beacon_settings, install_chrmt

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.skipif(not SCHEMATHESIS.exists() and shutil.which("schemathesis") is None, reason="schemathesis")
async def test_schemathesis_finds_no_server_error_or_schema_violation(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    common_settings: CommonSettings,
    chrmt_versions: tuple[Path, dict[str, BuildResult]],
    tmp_path: Path,
) -> None:
    server = await aiohttp_server(create_app(beacon_settings(common_settings)), host="127.0.0.1")
    await install_chrmt(server.app, chrmt_versions)
    report = tmp_path / "junit.xml"
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        str(OPENAPI),
        "--url",
        str(server.make_url("")).rstrip("/"),
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "25",
        "--seed",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
