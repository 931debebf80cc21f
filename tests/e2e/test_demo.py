"""`make demo` (`python -m services.demo`) with small sizes: it starts the embedded platform, walks the flow, prints
the final Beacon and RNAget answers, exits 0 and leaves nothing running; against an unreachable platform it fails
with a message, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import platform
from services.demo import SLICED_GENE

pytestmark = pytest.mark.e2e


def test_demo_shows_beacon_and_rnaget_answers(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "200"}
    env.pop("SEQHUB_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "services.demo", "--clusters", "200", "--samples", "2", "--cycles-per-second", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in ("auth", "upload", "demultiplex", "register", "submit", "beacon", "rnaget"):
        assert f" {step} " in out, step
    assert "1:55516887 G>A: exists=True; 1:55516887 G>T: exists=False" in out
    assert "variantCount=3 callCount=10 frequency=0.3" in out
    assert any(
        line.split()[:4] == [SLICED_GENE, "PCSK9", "12.5", "0.75"]
        for line in (raw.strip("│ ") for raw in out.splitlines())
    ), out[-2000:]
    assert "2 samples, 2 experiments, 2 runs" in out
    assert list(tmp_path.glob("seqhub-demo-*")) == []  # the temporary platform folder is removed


def test_demo_against_an_unreachable_platform_fails_cleanly(tmp_path: Path) -> None:
    port = platform.free_port()
    result = subprocess.run(
        [sys.executable, "-m", "services.demo", "--url", f"http://127.0.0.1:{port}", "--timeout", "2"],
        env={**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "demo failed" in result.stdout and f"127.0.0.1:{port}/auth/token" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
