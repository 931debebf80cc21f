"""`seqhub runs list|show` against a real ingest service on 127.0.0.1: what a user sees of their runs."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from libs.common.testing import TokenMinter
from libs.sdk.commands import runs as runs_cli


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="seqhub")
    runs_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def _seqhub(argv: list[str]) -> int:
    args = _parse(argv)
    return int(await asyncio.to_thread(args.func, args))


async def test_list_and_show_a_registered_run(
    client: TestClient,  # type: ignore[type-arg]
    register: Any,
    token_minter: TokenMinter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await register(instrument="NB551234")
    common = [
        "--url",
        str(client.make_url("")).rstrip("/"),
        "--token",
        token_minter.mint("instrument-1", "ingest:upload"),
    ]

    assert await _seqhub(["runs", "list", "--json", "--instrument", "NB551234", *common]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in page["items"]] == [run["id"]] and page["total"] == 1

    assert await _seqhub(["runs", "list", "--status", "uploading", *common]) == 0
    captured = capsys.readouterr()
    assert run["id"] in captured.out and "NB551234" in captured.out and "1 of 1 runs" in captured.err

    assert await _seqhub(["runs", "show", run["id"], "--json", *common]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == run["id"] and shown["status"] == "uploading" and shown["files_expected"] > 0

    assert await _seqhub(["runs", "show", "no-such-run", *common]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "HTTP 404" in err and "Traceback" not in err
