"""checkov's Kubernetes policies (offline, --skip-download) on the rendered overlays.

The whole default policy set runs, minus three checks skipped deliberately (SKIPPED, reasons in
docs/operations.md); CHECKS are the ones the deployment is built around and must have run and passed."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tooling import K8S, OVERLAYS, render, tool

SKIPPED = {
    "CKV_K8S_15": "imagePullPolicy Always: release tags are immutable",
    "CKV_K8S_35": "secrets as files: pymongo/aio-pika take URLs; values come from secretKeyRef",
    "CKV_K8S_43": "image digests: set by the release pipeline (kustomize images[].digest)",
}
CHECKS = {
    "CKV_K8S_8": "liveness probe",
    "CKV_K8S_9": "readiness probe",
    "CKV_K8S_10": "CPU requests",
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
    "CKV_K8S_14": "image tag not latest/blank",
    "CKV_K8S_16": "no privileged containers",
    "CKV_K8S_17": "no hostPID",
    "CKV_K8S_18": "no hostIPC",
    "CKV_K8S_19": "no hostNetwork",
    "CKV_K8S_20": "no privilege escalation",
    "CKV_K8S_21": "not in the default namespace",
    "CKV_K8S_22": "read-only root filesystem",
    "CKV_K8S_23": "no root containers",
    "CKV_K8S_25": "no added capabilities",
    "CKV_K8S_28": "NET_RAW dropped",
    "CKV_K8S_29": "pod securityContext",
    "CKV_K8S_30": "container securityContext",
    "CKV_K8S_31": "seccomp RuntimeDefault",
    "CKV_K8S_37": "capabilities minimised",
    "CKV_K8S_38": "service-account token only where needed",
    "CKV_K8S_40": "high UID",
}


def _broken(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of one Deployment with the classic mistakes: no probes, no limits, root, writable root FS."""
    deployment = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    deployment["metadata"]["name"] = "broken"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for key in ("livenessProbe", "readinessProbe"):
        del container[key]
    del container["resources"]["limits"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"]["runAsNonRoot"] = False
    container["securityContext"]["runAsUser"] = 0
    container["securityContext"]["allowPrivilegeEscalation"] = True
    return [deployment]


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, list[str]]]]:
    """One checkov run (start-up dominates) over both overlays and a deliberately broken Deployment;
    passed/failed check ids per input file."""
    out = tmp_path_factory.mktemp("checkov")
    inputs = {name: render(K8S / "overlays" / name) for name in OVERLAYS}
    inputs["broken"] = _broken(inputs["prod"])
    for name, docs in inputs.items():
        (out / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    proc = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(out),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
            "--skip-check",
            ",".join(SKIPPED),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.stdout.strip(), f"checkov printed nothing: {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    # exit status 1 because the broken input fails: the gate works as a CI step too
    assert proc.returncode == 1, proc.stderr[-2000:]
    reports: dict[str, dict[str, list[str]]] = {name: {"passed": [], "failed": []} for name in inputs}
    for outcome in ("passed", "failed"):
        for result in report["results"][f"{outcome}_checks"]:
            name = Path(result["file_path"]).stem
            reports[name][outcome].append(f"{result['check_id']} {result['resource']}")
    yield reports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_selected_checkov_checks(
    checkov_reports: dict[str, dict[str, list[str]]], overlay: str
) -> None:
    report = checkov_reports[overlay]
    assert report["failed"] == []
    # the checks we rely on actually ran (a renamed check would otherwise pass silently), among many
    passed = {entry.split()[0] for entry in report["passed"]}
    assert set(CHECKS) <= passed
    assert len(passed) > 60
    assert not passed & set(SKIPPED)


def test_checkov_flags_a_deployment_without_probes_limits_or_hardening(
    checkov_reports: dict[str, dict[str, list[str]]],
) -> None:
    failed = {entry.split()[0] for entry in checkov_reports["broken"]["failed"]}
    assert {
        "CKV_K8S_8",
        "CKV_K8S_9",
        "CKV_K8S_11",
        "CKV_K8S_13",
        "CKV_K8S_20",
        "CKV_K8S_22",
        "CKV_K8S_23",
    } <= failed
