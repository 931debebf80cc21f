"""`seqhub repo` against the running repository: submit real ENA XML, get it back, list, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from libs.common.testing import TokenMinter
from libs.sdk.cli import main
from libs.sdk.commands.repo import UsageError, split_sra_document
from tests.shared import SHARED

from .conftest import Client

EXAMPLES = (SHARED / "specs/sra-examples")


@pytest.fixture
def seqhub(client: Client, token_minter: TokenMinter) -> Callable[..., Awaitable[int]]:
    """Run `seqhub ARGS` against the test server as alice (repository:write); returns the exit code."""
    url = str(client.make_url("")).rstrip("/")
    token = token_minter.mint("alice", "repository:write")

    async def run(*argv: str) -> int:
        return await asyncio.to_thread(main, [*argv, "--url", url, "--token", token])

    return run


async def test_submit_get_list_delete(
    seqhub: Callable[..., Awaitable[int]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert await seqhub("repo", "submit", str(EXAMPLES / "SRS001433.xml")) == 0
    accession = capsys.readouterr().out.split("\t")[0]
    assert accession == "SHS000001"
    assert await seqhub("repo", "get", "sample", accession, "--xml") == 0
    assert "<PRIMARY_ID>SRS001433</PRIMARY_ID>" in capsys.readouterr().out
    assert await seqhub("repo", "list", "sample") == 0
    assert "NA18758" in capsys.readouterr().out

    bad = tmp_path / "bad.xml"
    bad.write_bytes((EXAMPLES / "SRS001433.xml").read_bytes().replace(b"<TAXON_ID>9606", b"<TAXON_ID>human"))
    assert await seqhub("repo", "submit", str(bad)) == 1
    assert "/SAMPLE_SET/SAMPLE/SAMPLE_NAME/TAXON_ID" in capsys.readouterr().err

    assert await seqhub("repo", "delete", "sample", accession) == 0
    assert await seqhub("repo", "get", "sample", accession) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_split_refuses_entities_and_unknown_roots() -> None:
    kind, documents = split_sra_document(b"<SAMPLE_SET><SAMPLE alias='a'/><SAMPLE alias='b'/></SAMPLE_SET>")
    assert kind == "sample" and len(documents) == 2
    with pytest.raises(UsageError, match="DTD"):
        split_sra_document(b'<!DOCTYPE x [<!ENTITY e "x">]><SAMPLE_SET>&e;</SAMPLE_SET>')
    with pytest.raises(UsageError, match="unsupported root"):
        split_sra_document(b"<PROJECT_SET/>")


async def test_submit_sends_a_set_whole(
    seqhub: Callable[..., Awaitable[int]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def sample(alias: str, taxon: str = "9606") -> str:
        return f'<SAMPLE alias="{alias}"><SAMPLE_NAME><TAXON_ID>{taxon}</TAXON_ID></SAMPLE_NAME></SAMPLE>'

    bad = tmp_path / "bad-set.xml"
    bad.write_text(f"<SAMPLE_SET>{sample('c-1')}{sample('c-2', 'human')}</SAMPLE_SET>")
    assert await seqhub("repo", "submit", str(bad)) == 1
    err = capsys.readouterr().err
    assert "/SAMPLE_SET/SAMPLE[2]/SAMPLE_NAME/TAXON_ID" in err and "SAMPLE[1]" not in err
    good = tmp_path / "set.xml"
    good.write_text(f"<SAMPLE_SET>{sample('c-1')}{sample('c-2')}</SAMPLE_SET>")
    assert await seqhub("repo", "submit", str(good)) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["SHS000001", "c-1"], ["SHS000002", "c-2"]]
    assert lines[0].split("\t")[2].endswith("/repository/samples/SHS000001")
