"""Rehearses the image's build stage without a Docker engine (slow: downloads every runtime wheel).

The build context is assembled from .dockerignore's allow-list, the exact `pip install` command of the
Dockerfile runs into a fresh venv, and the result is checked the way the runtime stage uses it: every
service imports from site-packages (not from a source tree), test-only packages are absent.
Run: .venv/bin/pytest -m slow tests/unit/deploy/test_image_build.py
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from .tooling import REPO, SERVICES, run

pytestmark = pytest.mark.slow


def _pip_install_args() -> list[str]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    match = re.search(r"/opt/seqhub/bin/pip install ([^&\n]+)", text)
    assert match, "the build stage's pip install line was not found"
    return match.group(1).split()


def _context(dest: Path) -> None:
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip()]
    allowed = [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", ".ruff_cache")
    for item in allowed:
        src = REPO / item
        target = dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=ignore)
        else:
            shutil.copy2(src, target)


def test_build_stage_installs_and_every_service_imports_from_site_packages(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if "slow" not in (request.config.getoption("markexpr") or "").replace("not slow", ""):
        pytest.skip("slow (~1 min, downloads every runtime wheel): run with -m slow")
    context = tmp_path / "context"
    _context(context)
    assert not (context / "tests").exists()
    venv = tmp_path / "venv"
    proc = run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    pip = venv / "bin" / "pip"
    proc = run([str(pip), "install", "-q", *_pip_install_args()], cwd=context, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    python = str(venv / "bin" / "python")
    modules = ", ".join(f"services.{s}.app" for s in SERVICES)
    code = (
        f"import importlib, sys; mods = [importlib.import_module(m) for m in '{modules}'.split(', ')]; "
        "import services; assert 'site-packages' in services.__file__, services.__file__; print('ok')"
    )
    proc = run([python, "-c", code], cwd=tmp_path, timeout=120)  # cwd without sources: site-packages only
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]

    proc = run([str(pip), "list", "--format=freeze"], timeout=60)
    installed = {line.split("==")[0].lower() for line in proc.stdout.splitlines()}
    assert {"aiohttp", "pymongo", "aio-pika", "seqhub"} <= installed
    assert not installed & {"secantusdb", "pytest", "hypothesis", "mypy", "ruff"}, "test tools in the image"
