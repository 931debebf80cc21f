"""The CLI commands: exit codes, messages without tracebacks, the whole path simulate -> demux."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libs.sdk.commands import demux as demux_cmd
from libs.sdk.commands import simulate as simulate_cmd

ROOT = Path(__file__).resolve().parents[3]


def test_simulate_then_demux(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert (
        simulate_cmd.main(
            [
                str(run),
                "--format",
                "bcl.gz",
                "--clusters",
                "300",
                "--reads",
                "12,8,12",
                "--samples",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(run)
    out = tmp_path / "fq"
    assert (
        demux_cmd.main(
            [
                str(run),
                "--out",
                str(out),
                "--threads",
                "1",
                "--no-lane-splitting",
                "--create-fastq-for-index-reads",
                "--compression-level",
                "1",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.glob("*.fastq.gz"))
    assert names == [
        "Sample1_S1_I1_001.fastq.gz",
        "Sample1_S1_R1_001.fastq.gz",
        "Sample1_S1_R2_001.fastq.gz",
        "Sample2_S2_I1_001.fastq.gz",
        "Sample2_S2_R1_001.fastq.gz",
        "Sample2_S2_R2_001.fastq.gz",
        "Undetermined_S0_I1_001.fastq.gz",
        "Undetermined_S0_R1_001.fastq.gz",
        "Undetermined_S0_R2_001.fastq.gz",
    ]
    assert "Sample1" in capsys.readouterr().err


def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run/RunInfo.xml").write_text("<RunInfo><Run")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "libs.sdk.commands.demux",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == 2
    assert "RunInfo.xml: not well-formed XML" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--barcode-mismatches", "3"], "expected 0, 1 or 2"),
        (["--threads", "0"], "must be >= 1"),
        (["--compression-level", "12"], "must be 0-9"),
    ],
)
def test_option_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as e:
        demux_cmd.main([str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_rejects_bad_reads(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        simulate_cmd.main([str(tmp_path / "r"), "--reads", "151,x"])
    assert "invalid read length" in capsys.readouterr().err
