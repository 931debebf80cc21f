"""What seqhub's deployment promises, checked on the rendered overlays: probes on each service's own
prefix, graceful shutdown inside the grace period, hardened pods, one Service/PDB/ServiceMonitor per
API, HPAs where planned, ingress routes, network flows, and every referenced Secret accounted for."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .tooling import K8S, OVERLAYS, REPO, SCALED, SERVICES, by_kind, render


def _docs(overlay: str) -> list[dict[str, Any]]:
    return render(K8S / "overlays" / overlay)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _quantity_seconds(text: str) -> float:
    return float(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_its_own_module_with_probes_on_its_prefix(overlay: str) -> None:
    deployments = by_kind(_docs(overlay), "Deployment")
    assert sorted(deployments) == sorted(f"seqhub-{s}" for s in SERVICES)
    for name in SERVICES:
        # the module the Deployment starts exists in the code base
        assert (REPO / "services" / name / "__main__.py").is_file(), name
        c = _container(deployments[f"seqhub-{name}"])
        assert c["command"] == ["python", "-m", f"services.{name}"]
        assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"] == {"path": f"/{name}/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": f"/{name}/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": f"/{name}/readyz", "port": "http"}
        # a slow start (index load) gets a minute before liveness applies
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_covers_prestop_and_shutdown_timeout(overlay: str) -> None:
    docs = _docs(overlay)
    config = by_kind(docs, "ConfigMap")["seqhub-config"]["data"]
    shutdown = _quantity_seconds(config["SEQHUB_HTTP_SHUTDOWN_TIMEOUT"])
    assert config["SEQHUB_HTTP_HOST"] == "0.0.0.0"  # the settings default (127.0.0.1) is unreachable in a pod
    for name, deployment in by_kind(docs, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        c = _container(deployment)
        assert {"configMapRef": {"name": "seqhub-config"}} in c["envFrom"], name
        pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        assert spec["terminationGracePeriodSeconds"] > shutdown + float(pre_stop[1]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened_and_sized(overlay: str) -> None:
    docs = _docs(overlay)
    pods = [(f"Deployment/{n}", d["spec"]["template"]["spec"]) for n, d in by_kind(docs, "Deployment").items()]
    pods += [(f"Job/{n}", j["spec"]["template"]["spec"]) for n, j in by_kind(docs, "Job").items()]
    for where, spec in pods:
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] >= 10000, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            # a read-only root needs a writable /tmp
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and tmp[0]["name"] in tmp_volumes, where
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), where
            assert "memory" in res["limits"], where
            assert ":" in c["image"] and not c["image"].endswith(":latest"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_apis_spread_and_have_service_pdb_and_scrape_config(overlay: str) -> None:
    docs = _docs(overlay)
    services, pdbs, monitors = (
        by_kind(docs, "Service"),
        by_kind(docs, "PodDisruptionBudget"),
        by_kind(docs, "ServiceMonitor"),
    )
    for name, deployment in by_kind(docs, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert pod_labels["app.kubernetes.io/part-of"] == "seqhub"
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {t["topologyKey"] for t in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all(t["labelSelector"]["matchLabels"] == selector for t in spread)
        svc = services[name]
        assert svc["spec"]["selector"] == selector
        assert svc["spec"]["ports"][0]["targetPort"] == "http" and svc["spec"]["ports"][0]["name"] == "http"
        pdb = pdbs[name]
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert pdb["spec"].get("maxUnavailable") == 1  # never blocks a drain, even at one replica (dev)
        prefix = name.removeprefix("seqhub-")
        monitor = monitors[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert monitor["spec"]["endpoints"] == [
            {"port": "http", "path": f"/{prefix}/metrics", "interval": "30s", "scrapeTimeout": "10s"}
        ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpas_scale_beacon_rnaget_repository_only(overlay: str) -> None:
    docs = _docs(overlay)
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    deployments = by_kind(docs, "Deployment")
    assert sorted(hpas) == sorted(f"seqhub-{s}" for s in SCALED)
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert name in deployments
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        if overlay == "prod":
            # the HPA owns the replica count: a replicas field would reset it on every apply
            assert "replicas" not in deployments[name]["spec"], name
        # CPU utilisation needs a CPU request to be computed against
        assert "cpu" in _container(deployments[name])["resources"]["requests"]
    if overlay == "prod":
        assert all(h["spec"]["minReplicas"] >= 2 for h in hpas.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_the_five_prefixes_to_their_services(overlay: str) -> None:
    docs = _docs(overlay)
    routes: dict[str, tuple[str, str]] = {}
    for name, ingress in by_kind(docs, "Ingress").items():
        assert ingress["spec"]["ingressClassName"] == "nginx"
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert path["pathType"] == "Prefix"
                assert backend["port"] == {"name": "http"}
                routes[path["path"]] = (backend["name"], name)
    assert {p: svc for p, (svc, _) in routes.items()} == {f"/{s}": f"seqhub-{s}" for s in SERVICES}
    uploads = by_kind(docs, "Ingress")[routes["/ingest"][1]]["metadata"]["annotations"]
    # resumable uploads: stream bodies through, no size cap, same pod for every chunk of one upload
    assert uploads["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert uploads["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert "nginx.ingress.kubernetes.io/upstream-hash-by" in uploads
    if overlay == "prod":
        assert all(i["spec"].get("tls") for i in by_kind(docs, "Ingress").values())


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items() and not selector.get("matchExpressions")


def _allowed_egress(
    policies: list[dict[str, Any]], labels: dict[str, str], to_labels: dict[str, str], port: int
) -> bool:
    for policy in policies:
        spec = policy["spec"]
        if "Egress" not in spec["policyTypes"] or not _selects(spec["podSelector"], labels):
            continue
        for rule in spec.get("egress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            peers = rule.get("to", [])
            if (not ports or port in ports) and any(
                "namespaceSelector" not in peer and _selects(peer["podSelector"], to_labels) for peer in peers
            ):
                return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_needed_flows(overlay: str) -> None:
    docs = _docs(overlay)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] and "egress" not in p["spec"]
    ]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    rabbit = {"app.kubernetes.io/name": "seqhub-rabbitmq", "app.kubernetes.io/component": "rabbitmq"}
    mongo = {"app": "seqhub-mongodb-svc"}
    deployments = by_kind(docs, "Deployment")
    auth_labels = deployments["seqhub-auth"]["spec"]["template"]["metadata"]["labels"]
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _allowed_egress(policies, labels, rabbit, 5672), name
        assert _allowed_egress(policies, labels, mongo, 27017), name
        assert _allowed_egress(policies, labels, auth_labels, 8080), name
        # no flow to arbitrary pods (e.g. another service's port) is opened
        assert not _allowed_egress(policies, labels, {"app": "something-else"}, 8080), name
    job = next(iter(by_kind(docs, "Job").values()))
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert _allowed_egress(policies, job_labels, mongo, 27017)
    assert not _allowed_egress(policies, job_labels, rabbit, 5672)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_index_job_covers_every_service_with_its_own_database_user(overlay: str) -> None:
    job = next(iter(by_kind(_docs(overlay), "Job").values()))
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] in {"OnFailure", "Never"}
    commands = {c["name"]: c["command"] for c in spec["containers"]}
    assert commands == {s: ["python", "-m", f"services.{s}", "--ensure-indexes"] for s in SERVICES}
    for c in spec["containers"]:
        env = {e["name"]: e for e in c["env"]}
        assert env["SEQHUB_MONGO_URL"]["valueFrom"]["secretKeyRef"]["name"] == f"seqhub-mongo-{c['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_connects_with_its_own_mongodb_user(overlay: str) -> None:
    docs = _docs(overlay)
    mongo = next(iter(by_kind(docs, "MongoDBCommunity").values()))
    users = {u["connectionStringSecretName"]: u for u in mongo["spec"]["users"]}
    for name in SERVICES:
        env = {e["name"]: e for e in _container(by_kind(docs, "Deployment")[f"seqhub-{name}"])["env"]}
        secret = env["SEQHUB_MONGO_URL"]["valueFrom"]["secretKeyRef"]["name"]
        assert secret == f"seqhub-mongo-{name}"
        # database per service: the user may only write its own database
        assert users[secret]["roles"] == [{"name": "readWrite", "db": f"seqhub_{name}"}]
        # the bus URL is assembled from the operator's secret, never a literal password
        bus = env["SEQHUB_BUS_URL"]["value"]
        assert bus.startswith("amqp://$(SEQHUB_BUS_USERNAME):$(SEQHUB_BUS_PASSWORD)@seqhub-rabbitmq:5672/")
        names = [e["name"] for e in _container(by_kind(docs, "Deployment")[f"seqhub-{name}"])["env"]]
        assert names.index("SEQHUB_BUS_USERNAME") < names.index("SEQHUB_BUS_URL")  # $(VAR) needs order
    expected_members = 1 if overlay == "dev" else 3
    assert mongo["spec"]["members"] == expected_members
    rabbit = next(iter(by_kind(docs, "RabbitmqCluster").values()))
    assert rabbit["spec"]["replicas"] == expected_members


def _referenced_secrets(docs: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("secretKeyRef", "passwordSecretRef"):
                if key in node:
                    found.add(node[key]["name"])
            if "secret" in node and isinstance(node["secret"], dict) and "secretName" in node["secret"]:
                found.add(node["secret"]["secretName"])
            if "secretName" in node and isinstance(node["secretName"], str) and "hosts" in node:
                found.add(node["secretName"])  # ingress TLS
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in docs:
        walk(doc.get("spec"))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_referenced_secret_is_generated_created_by_an_operator_or_documented(overlay: str) -> None:
    docs = _docs(overlay)
    generated = {n for n, d in by_kind(docs, "Secret").items()}
    by_operator = {"seqhub-rabbitmq-default-user"} | {
        u["connectionStringSecretName"] for m in by_kind(docs, "MongoDBCommunity").values() for u in m["spec"]["users"]
    }
    documented = set(re.findall(r"`(seqhub-[a-z0-9-]+)`", (REPO / "docs" / "operations.md").read_text()))
    missing = _referenced_secrets(docs) - generated - by_operator - documented
    assert missing == set()
    if overlay == "prod":
        assert generated == set(), "prod must not generate secrets from the repository"


def test_no_secret_values_in_the_base() -> None:
    docs = render(K8S / "base")
    assert by_kind(docs, "Secret") == {}
    for doc in docs:
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for env in container.get("env", []):
                if env["name"].endswith("_FILE"):  # a path to a mounted Secret, not a value
                    assert env["value"].startswith("/var/run/secrets/"), env
                    continue
                assert not re.search(r"(?i)(password|secret|token|key)", env["name"]) or "valueFrom" in env, (
                    doc["metadata"]["name"],
                    env["name"],
                )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_stateful_data_roots_are_shared_volumes_and_the_file_store_is_mounted_as_needed(overlay: str) -> None:
    docs = _docs(overlay)
    claims = by_kind(docs, "PersistentVolumeClaim")
    for name, deployment in by_kind(docs, "Deployment").items():
        service = name.removeprefix("seqhub-")
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in _container(deployment)["volumeMounts"]}
        data = volumes[mounts["/var/lib/seqhub/data"]["name"]]
        if service in {"ingest", "beacon", "rnaget"}:
            # uploads in flight and indexes must survive restarts and be shared by the replicas
            claim = claims[data["persistentVolumeClaim"]["claimName"]]
            expected = ["ReadWriteOnce"] if overlay == "dev" else ["ReadWriteMany"]
            assert claim["spec"]["accessModes"] == expected, name
        else:
            assert "emptyDir" in data, name
        files = mounts.get("/var/lib/seqhub/files")
        if service == "auth":
            assert files is None
        else:
            assert files is not None, name
            assert bool(files.get("readOnly")) == (service in {"beacon", "rnaget"}), name
            assert volumes[files["name"]]["persistentVolumeClaim"]["claimName"] == "seqhub-files"
