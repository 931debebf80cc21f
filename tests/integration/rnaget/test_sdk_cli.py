"""`seqhub rnaget import FILE --study ID --units TPM` against the running service (real HTTP)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from libs.common.testing import TokenMinter
from libs.sdk import cli
from libs.sdk.commands.rnaget import guess


def test_guess_id_and_format_from_the_file_name() -> None:
    assert guess(Path("/x/liver.tpm.tsv.gz")) == ("liver.tpm", "tsv")
    assert guess(Path("a.loom")) == ("a", "loom")
    assert guess(Path("a.csv")) == ("a", None)


async def test_import_then_remove(
    server_factory: Any, token_minter: TokenMinter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "liver.tsv"
    src.write_text("gene\tname\tS1\tS2\nG1\tA\t1\t2\nG2\tB\t3\tNaN\n")
    token = token_minter.mint("op", "rnaget:admin")
    async with server_factory() as server:
        url = server.base.removesuffix("/rnaget/")
        code = await asyncio.to_thread(
            cli.main, ["rnaget", "import", str(src), "--study", "ST7", "--units", "TPM", "--url", url, "--token", token]
        )
        assert code == 0
        record = json.loads(capsys.readouterr().out)
        assert (record["id"], record["rows"], record["cols"], record["studyID"]) == ("liver", 2, 2, "ST7")
        async with server.session.get(f"{server.base}expressions/liver/bytes", params={"format": "tsv"}) as r:
            assert (await r.text()).endswith("G2\tB\t3.0\tNaN\n")

        bad = tmp_path / "bad.tsv"
        bad.write_text("gene\tname\tS1\nG1\tA\tx\n")
        code = await asyncio.to_thread(
            cli.main, ["rnaget", "import", str(bad), "--study", "ST7", "--units", "TPM", "--url", url, "--token", token]
        )
        assert code == 1 and "could not convert string 'x'" in capsys.readouterr().err.replace("\n", "")

        code = await asyncio.to_thread(cli.main, ["rnaget", "remove", "liver", "--url", url, "--token", token])
        assert code == 0
        async with server.session.get(f"{server.base}expressions/liver/ticket") as r:
            assert r.status == 404
