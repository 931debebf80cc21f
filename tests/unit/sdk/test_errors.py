"""CLI errors reach stderr as one unmangled line: scripts grep them and users copy paths out of them."""

from __future__ import annotations

import pytest

from libs.sdk.commands._support import print_error


def test_a_long_message_is_not_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    path = "/tmp/" + "/".join(["a-rather-long-folder-name"] * 8) + "/nope.vcf"
    print_error(f"{path}: no such file")
    assert capsys.readouterr().err == f"error: {path}: no such file\n"


def test_brackets_in_a_message_are_printed_not_interpreted(capsys: pytest.CaptureFixture[str]) -> None:
    print_error("sample [red] in lane [1] of /runs/[x]: bad index")
    assert capsys.readouterr().err == "error: sample [red] in lane [1] of /runs/[x]: bad index\n"
