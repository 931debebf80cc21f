"""The kustomize overlays render offline and every object is valid: built-in kinds against the
Kubernetes OpenAPI schemas bundled in kubernetes-validate (strict: unknown fields are errors), custom
resources against deploy/crds (strict structural schemas of the operator CRDs)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate import SchemaNotFoundError, ValidationError

from .tooling import CRDS, DEPLOY, K8S, K8S_VERSIONS, OVERLAYS, render, run, tool, validate_monitoring_crs

CR_SCHEMAS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmqcluster.schema.yaml",
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"): "mongodbcommunity.schema.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.schema.yaml",
}


@cache
def _cr_validator(filename: str) -> jsonschema.protocols.Validator:
    registry: referencing.Registry[Any] = referencing.Registry()
    for path in sorted(CRDS.glob("*.schema.yaml")):
        schema = yaml.safe_load(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(schema["$id"], referencing.Resource.from_contents(schema))
    schema = yaml.safe_load((CRDS / filename).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_custom_resource(doc: dict[str, Any]) -> list[str]:
    """Error messages (with the path of the offending field) for a custom resource; [] when valid."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in CR_SCHEMAS:
        return [f"no schema for custom resource {key}; add one under deploy/crds"]
    validator = _cr_validator(CR_SCHEMAS[key])  # type: ignore[index]
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    return [
        f"{where} {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_object(doc: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except SchemaNotFoundError:
        return validate_custom_resource(doc)
    except ValidationError as exc:
        path = ".".join(map(str, exc.path)) if exc.path else "<root>"
        return [f"{doc['kind']}/{doc['metadata'].get('name')} {path}: {exc.message} (k8s {version})"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_expected_kind(overlay: str) -> None:
    docs = render(K8S / "overlays" / overlay)
    kinds: dict[str, int] = {}
    namespace = "seqhub-dev" if overlay == "dev" else "seqhub"
    for doc in docs:
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        ns = doc["metadata"].get("namespace")
        if doc["kind"] != "Namespace":
            assert ns == namespace, (doc["kind"], doc["metadata"]["name"])
    assert kinds["Deployment"] == 5
    assert kinds["Service"] == 5
    assert kinds["PodDisruptionBudget"] == 5
    assert kinds["HorizontalPodAutoscaler"] == 3
    assert kinds["ServiceMonitor"] == 6  # five services + RabbitMQ
    assert kinds["Ingress"] == 2
    assert kinds["Job"] == 1
    assert kinds["RabbitmqCluster"] == 1
    assert kinds["MongoDBCommunity"] == 1
    assert kinds["PrometheusRule"] == 1
    assert kinds["Namespace"] == 1
    assert kinds["NetworkPolicy"] >= 3


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_schema_valid(overlay: str, version: str) -> None:
    errors = [msg for doc in render(K8S / "overlays" / overlay) for msg in validate_object(doc, version)]
    assert errors == []


def test_base_renders_and_is_valid_on_its_own() -> None:
    docs = render(K8S / "base")
    assert [msg for doc in docs for msg in validate_object(doc, K8S_VERSIONS[0])] == []


def _first(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


# --- the validators reject what they should (so a green run means something) -------------------------


def test_strict_validation_rejects_typo_wrong_type_and_missing_field() -> None:
    docs = render(K8S / "overlays" / "prod")
    deployment = _first(docs, "Deployment")
    deployment["spec"]["replicas"] = "two"
    assert any("'two' is not of type 'integer'" in m for m in validate_object(deployment, "1.30.0"))

    service = _first(docs, "Service")
    service["spec"]["ports"][0]["protocl"] = "TCP"
    assert any("protocl" in m for m in validate_object(service, "1.30.0"))

    deployment = _first(docs, "Deployment")
    del deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"]
    assert any("'port' is a required property" in m for m in validate_object(deployment, "1.30.0"))


def test_custom_resource_schemas_reject_bad_values_and_typos() -> None:
    docs = render(K8S / "overlays" / "prod")
    rabbit = _first(docs, "RabbitmqCluster")
    rabbit["spec"]["replicas"] = "three"
    assert any("spec.replicas" in m and "'three'" in m for m in validate_custom_resource(rabbit))

    rabbit = _first(docs, "RabbitmqCluster")
    rabbit["spec"]["persistance"] = {"storage": "10Gi"}
    assert any("persistance" in m for m in validate_custom_resource(rabbit))

    rabbit = _first(docs, "RabbitmqCluster")
    rabbit["spec"]["persistence"]["storage"] = "ten gigs"
    assert any("spec.persistence.storage" in m for m in validate_custom_resource(rabbit))

    mongo = _first(docs, "MongoDBCommunity")
    mongo["spec"]["type"] = "Sharded"
    assert any("spec.type" in m for m in validate_custom_resource(mongo))

    mongo = _first(docs, "MongoDBCommunity")
    del mongo["spec"]["users"][0]["roles"]
    assert any("'roles' is a required property" in m for m in validate_custom_resource(mongo))

    mongo = _first(docs, "MongoDBCommunity")
    mongo["spec"]["members"] = 51
    assert any("spec.members" in m for m in validate_custom_resource(mongo))

    monitor = _first(docs, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert any("interval" in m for m in validate_custom_resource(monitor))

    rule = _first(docs, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "5 minutes"
    assert any("for" in m for m in validate_custom_resource(rule))

    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validate_custom_resource(unknown) == [
        "no schema for custom resource ('example.com/v1', 'Widget'); add one under deploy/crds"
    ]


def test_crd_schema_files_are_valid_json_schemas() -> None:
    files = sorted(p.name for p in Path(CRDS).glob("*.schema.yaml") if not p.name.startswith("_"))
    assert files == sorted(CR_SCHEMAS.values())
    for name in files:
        _cr_validator(name)  # check_schema raises on an invalid schema


def test_monitoring_resources_match_the_prometheus_operator_api_models() -> None:
    """Second opinion from upstream: npm @kubernetes-models/prometheus-operator (generated from the operator's
    Go API types) validates our ServiceMonitors and PrometheusRule; a bad duration is rejected."""
    docs = [d for d in render(K8S / "overlays" / "prod") if d["kind"] in {"ServiceMonitor", "PrometheusRule"}]
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "ServiceMonitor"))
    broken["metadata"]["name"] = "broken"
    broken["spec"]["endpoints"][0]["interval"] = "30 seconds"
    results = validate_monitoring_crs([*docs, broken])
    assert len(results) == len(docs) + 1
    assert [r for r in results[:-1] if r["error"]] == []
    assert {r["kind"] for r in results[:-1]} == {"ServiceMonitor", "PrometheusRule"}
    assert results[-1]["name"] == "broken" and "interval" in results[-1]["error"]


def test_yaml_files_pass_yamllint(tmp_path: Path) -> None:
    config = str(DEPLOY / ".yamllint.yaml")
    proc = run([tool("yamllint"), "-s", "-f", "parsable", "-c", config, str(DEPLOY)], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\nb:   [1,2]\n")
    proc = run([tool("yamllint"), "-s", "-f", "parsable", "-c", config, str(bad)], timeout=60)
    assert proc.returncode == 1 and "key-duplicates" in proc.stdout
