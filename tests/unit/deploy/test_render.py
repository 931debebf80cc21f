"""deploy/tools/render.py (the fallback when kubectl is missing) renders our kustomizations exactly like
`kubectl kustomize`, and refuses kustomize features it does not implement instead of ignoring them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from .tooling import K8S, OBSERVABILITY, OVERLAYS, load_renderer, run


def _key(doc: dict[str, object]) -> tuple[str, str]:
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    return str(doc["kind"]), str(meta["name"])


@pytest.mark.parametrize(
    "path", [K8S / "base", OBSERVABILITY, *(K8S / "overlays" / o for o in OVERLAYS)], ids=lambda p: p.name
)
def test_renderer_matches_kubectl_kustomize(path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: no reference to compare the fallback renderer with")
    proc = run(["kubectl", "kustomize", str(path)], timeout=60)
    assert proc.returncode == 0, proc.stderr
    reference = {_key(d): d for d in yaml.safe_load_all(proc.stdout) if d}
    ours = {_key(d): d for d in load_renderer().build(path)}
    assert sorted(ours) == sorted(reference)
    for key, doc in reference.items():
        assert ours[key] == doc, key


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    renderer = load_renderer()
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {}\n")
    (tmp_path / "kustomization.yaml").write_text("resources:\n- cm.yaml\nnamePrefix: x-\n")
    with pytest.raises(renderer.RenderError, match="namePrefix"):
        renderer.build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources:\n- cm.yaml\npatches:\n- path: p.yaml\n")
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata: {a: b}\n")
    with pytest.raises(renderer.RenderError, match="matched no object"):
        renderer.build(tmp_path)


def test_renderer_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    renderer = load_renderer()
    assert renderer.main(["render.py", str(tmp_path)]) == 1  # no kustomization.yaml
