"""`seqhub beacon load|withdraw` against a real beacon on 127.0.0.1 (the platform's /beacon prefix)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from libs.sdk.commands import beacon as beacon_cli
from services.beacon.app import PREFIX, create_app

from .conftest import CHRMT, beacon_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="seqhub")
    beacon_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_load_then_query_then_withdraw(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    common_settings: CommonSettings,
    token_minter: TokenMinter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = web.Application()
    root.add_subapp(PREFIX, create_app(beacon_settings(common_settings)))
    server = await aiohttp_server(root, host="127.0.0.1")
    url = str(server.make_url("")).rstrip("/")
    token = token_minter.mint("ops", "admin")
    common = ["--url", url, "--token", token]

    args = _parse(
        [
            "beacon",
            "load",
            str(CHRMT),
            "--dataset",
            "cli-mt",
            "--assembly",
            "GRCh37",
            "--access",
            "registered",
            *common,
        ]
    )
    assert await asyncio.to_thread(args.func, args) == 0
    assert '"variantCount": 4242' in capsys.readouterr().out

    query = {
        "referenceName": "MT",
        "start": "9",
        "referenceBases": "T",
        "alternateBases": "C",
        "assemblyId": "GRCh37",
        "datasetIds": "cli-mt",
    }
    async with aiohttp.ClientSession() as http:
        anon = await http.get(f"{url}/beacon/query", params=query)
        assert anon.status == 401
        ok = await http.get(
            f"{url}/beacon/query",
            params=query,
            headers={"Authorization": f"Bearer {token_minter.mint('r', 'beacon:registered')}"},
        )
        assert ok.status == 200 and (await ok.json())["exists"] is True

        args = _parse(["beacon", "withdraw", "cli-mt", *common])
        assert await asyncio.to_thread(args.func, args) == 0
        gone = await http.get(f"{url}/beacon/query", params=query)
        assert gone.status == 400


async def test_load_reports_bad_input_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = _parse(
        [
            "beacon",
            "load",
            str(tmp_path / "nope.vcf"),
            "--dataset",
            "x",
            "--assembly",
            "GRCh38",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ]
    )
    assert missing.func(missing) == 2
    bad_id = _parse(
        [
            "beacon",
            "load",
            str(CHRMT),
            "--dataset",
            "../x",
            "--assembly",
            "GRCh38",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ]
    )
    assert bad_id.func(bad_id) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "--dataset" in err
