"""Helpers for the deployment validation tests: locating the offline tools, rendering kustomize
overlays, validating objects, and linting Prometheus exposition text with promtool.

`promtool_check_metrics(text)` is meant for reuse: once the services run (e2e), feed it each
service's live `/<prefix>/metrics` body.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
OBSERVABILITY = DEPLOY / "observability"
RULES = OBSERVABILITY / "prometheus" / "seqhub-rules.yaml"
RULES_TEST = OBSERVABILITY / "prometheus" / "seqhub-rules.test.yaml"
DASHBOARD = OBSERVABILITY / "grafana" / "seqhub-overview.json"
CRDS = DEPLOY / "crds"
SERVICES = ("auth", "ingest", "repository", "beacon", "rnaget")
SCALED = ("beacon", "rnaget", "repository")
INSTALL_HINT = "install the ops tools: bash deploy/tools/install-ops-tools.sh"
# Kubernetes versions the manifests must be valid for (oldest supported ... newest we target).
K8S_VERSIONS = ("1.30.0", "1.33.0")


def tool(name: str) -> str:
    """Path of an ops tool: the repo's .venv-tools first (checkov, hadolint), then PATH.

    A missing tool fails the test (it does not skip): a CI that silently skips validation proves nothing.
    """
    local = REPO / ".venv-tools" / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; {INSTALL_HINT}", pytrace=False)
    return found


def run(
    cmd: list[str],
    *,
    timeout: float = 120,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        input=stdin,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


@functools.cache
def _rendered(path: str) -> str:
    """The overlay as JSON text (cached per session: the manifests do not change under a run).

    `kubectl kustomize` when kubectl is installed (it is the reference); otherwise deploy/tools/render.py,
    which test_render.py proves equivalent on our kustomizations wherever kubectl exists.
    """
    if shutil.which("kubectl"):
        proc = run(["kubectl", "kustomize", path], timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    else:
        docs = load_renderer().build(Path(path))
    return json.dumps(docs)


def render(path: Path) -> list[dict[str, Any]]:
    """Rendered objects of a kustomization directory (a fresh copy: callers may mutate it)."""
    docs: list[dict[str, Any]] = json.loads(_rendered(str(path)))
    return docs


def load_renderer() -> Any:
    spec = importlib.util.spec_from_file_location("seqhub_render", DEPLOY / "tools" / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@dataclass(frozen=True)
class PromtoolResult:
    returncode: int
    output: str

    @property
    def clean(self) -> bool:
        return self.returncode == 0


def promtool_check_metrics(exposition: str) -> PromtoolResult:
    """Lint a Prometheus text exposition (e.g. a service's live /metrics body) with `promtool check metrics`.

    promtool exits 0 when clean, 3 for lint problems (e.g. a counter without `_total`), 1 when the text
    does not parse. Use: `assert promtool_check_metrics(body).clean, result.output`.
    """
    proc = run([tool("promtool"), "check", "metrics"], stdin=exposition, timeout=30)
    return PromtoolResult(proc.returncode, (proc.stdout + proc.stderr).strip())


def node_modules() -> Path:
    """The npm packages installed by the ops tools script (prometheus-operator models)."""
    path = REPO / ".venv-tools" / "node" / "node_modules"
    if not (path / "@kubernetes-models" / "prometheus-operator" / "package.json").is_file():
        pytest.fail(f"@kubernetes-models/prometheus-operator is not installed; {INSTALL_HINT}", pytrace=False)
    return path


def validate_monitoring_crs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate ServiceMonitor / PrometheusRule objects with the prometheus-operator's own API models."""
    proc = run(
        [tool("node"), str(DEPLOY / "tools" / "validate-monitoring-crs.mjs"), str(node_modules())],
        stdin=json.dumps(docs),
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"validate-monitoring-crs.mjs failed: {proc.stderr}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results
