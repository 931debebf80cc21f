"""Both GA4GH RNAget compliance suites against the running service: 0 failed and 0 skipped.

The suites live in their own venvs (they cannot share one: different pins, and loompy pulls numba):
`.venv-rnaget-0.1.1` (draft routes) and `.venv-rnaget-1.0.0` (released routes), created on first use
with `python3 -m venv` + `pip install ga4gh-rnaget-compliance==<v>` (or by `make rnaget-compliance-venvs`).
The suite's exit code is always 0, so the gate is its results.json.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.testing import TokenMinter

from .conftest import load_compliance_dataset

REPO = Path(__file__).resolve().parents[3]


def suite_venv(version: str) -> Path:
    venv = REPO / f".venv-rnaget-{version}"
    cli = venv / "bin" / "rnaget-compliance"
    if not cli.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"ga4gh-rnaget-compliance=={version}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return cli


async def run_suite(version: str, base_url: str, workdir: Path, token: str | None = None) -> list[dict[str, Any]]:
    cli = await asyncio.to_thread(suite_venv, version)
    server: dict[str, Any] = {"server_name": "seqhub-rnaget", "base_url": base_url}
    if token:
        server["token"] = token
    config = workdir / "servers.yaml"
    config.write_text(yaml.safe_dump({"servers": [server]}))
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "report",
        "-c",
        str(config),
        "-o",
        str(workdir / "out"),
        "--no-tar",
        "-f",
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    results = workdir / "out" / "results.json"
    assert results.exists(), output.decode(errors="replace")[-3000:]
    return list(json.loads(results.read_text()))


def failures(results: list[dict[str, Any]]) -> str:
    """A readable list of the failed cases, for the assertion message."""
    lines = []
    for server in results:
        for objects in server.get("test_results", {}).values():
            for tests in objects.values():
                for test in tests:
                    for part in ("api_component", "content_component"):
                        component = test["message"].get(part) or {}
                        for case in component.get("cases", []):
                            if case.get("status") != 1:
                                lines.append(f"{test['name']}: {case['name']}: {case.get('error_message')}")
    return "\n".join(lines[:40])


def assert_all_passed(results: list[dict[str, Any]]) -> None:
    assert results, "results.json lists no server"
    for server in results:
        summary = {
            k: server[k] for k in ("total_tests", "total_tests_passed", "total_tests_failed", "total_tests_skipped")
        }
        assert server["total_tests"] > 0, summary
        assert server["total_tests_failed"] == 0 and server["total_tests_skipped"] == 0, (summary, failures(results))


@pytest.mark.timeout(600)
async def test_released_1_0_0_suite_passes_with_tokens(
    server_factory: Any, token_minter: TokenMinter, tmp_path: Path
) -> None:
    # every data route demands rnaget:read: tickets must carry the header their download needs
    async with server_factory(require_token=True) as server:
        await load_compliance_dataset(server)
        token = token_minter.mint("compliance", "rnaget:read")
        results = await run_suite("1.0.0", server.base, tmp_path, token=token)
    assert_all_passed(results)


@pytest.mark.timeout(600)
async def test_draft_0_1_1_suite_passes(server_factory: Any, tmp_path: Path) -> None:
    async with server_factory() as server:
        await load_compliance_dataset(server)
        results = await run_suite("0.1.1", server.base, tmp_path)
    assert_all_passed(results)


@pytest.mark.timeout(600)
async def test_gate_fails_when_the_server_is_not_compliant(server_factory: Any, tmp_path: Path) -> None:
    # negative control: tokens required but the suite has none -> failures (and skipped children) reported
    async with server_factory(require_token=True) as server:
        await load_compliance_dataset(server)
        results = await run_suite("1.0.0", server.base, tmp_path)
    assert results[0]["total_tests_failed"] > 0
    with pytest.raises(AssertionError):
        assert_all_passed(results)
