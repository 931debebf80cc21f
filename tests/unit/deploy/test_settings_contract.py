"""The environment the manifests give each pod is what the code reads: every SEQHUB_* variable set by a
ConfigMap or a Deployment is a real setting (pydantic-settings ignores unknown variables silently, so a
typo would otherwise deploy unnoticed), and the values load into the settings with the intended effect."""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from libs.common.config import CommonSettings

from .tooling import K8S, OVERLAYS, SERVICES, by_kind, render

# Variables the manifests set on purpose although no settings class reads them.
NOT_SETTINGS = {
    # inputs of Kubernetes' $(VAR) expansion that builds SEQHUB_BUS_URL
    "SEQHUB_BUS_USERNAME",
    "SEQHUB_BUS_PASSWORD",
    # path of the optional pinned signing key; auth does not read it yet (reported to the lead/auth owner)
    "SEQHUB_AUTH_SIGNING_KEY_FILE",
}


def _known_variables(service: str) -> set[str]:
    names = {f"SEQHUB_{field.upper()}" for field in CommonSettings.model_fields}
    module = importlib.import_module(f"services.{service}.settings")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module.__name__:
            prefix = str(value.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{field}".upper() for field in value.model_fields if field != "common"}
    return names


def _pod_environment(docs: list[dict[str, Any]], service: str) -> dict[str, str]:
    """The SEQHUB_* environment of a service's pod: ConfigMap values, then the container's own env
    (secret references replaced by placeholders of the right shape)."""
    configmaps = by_kind(docs, "ConfigMap")
    container = by_kind(docs, "Deployment")[f"seqhub-{service}"]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["name"] == "SEQHUB_MONGO_URL":
            env[item["name"]] = "mongodb+srv://user:pw@seqhub-mongodb-svc.seqhub.svc.cluster.local/admin"
        else:
            env[item["name"]] = "placeholder"
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_seqhub_variable_is_a_setting(overlay: str, service: str) -> None:
    env = _pod_environment(render(K8S / "overlays" / overlay), service)
    unknown = {name for name in env if name.startswith("SEQHUB_")} - _known_variables(service) - NOT_SETTINGS
    assert unknown == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_environment_loads_into_the_settings(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(K8S / "overlays" / overlay)
    for service in SERVICES:
        env = _pod_environment(docs, service)
        with monkeypatch.context() as patch:
            for name in [n for n in list(os.environ) if n.startswith("SEQHUB_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            settings = CommonSettings()
        assert settings.http.host == "0.0.0.0"
        assert settings.http.port == 8080
        assert settings.http.shutdown_timeout == 25.0
        assert str(settings.files_root) == "/var/lib/seqhub/files"
        assert str(settings.data_root) == "/var/lib/seqhub/data"
        assert settings.mongo_url.startswith("mongodb+srv://")
        assert settings.bus.url.startswith("amqp://")
        # tokens are verified against auth's JWKS inside the cluster, not through the public ingress
        assert settings.auth.resolved_jwks_url() == "http://seqhub-auth/auth/.well-known/jwks.json"
        assert settings.auth.issuer.endswith("/auth") and settings.public_url in settings.auth.issuer


def test_the_contract_test_catches_a_misspelt_variable() -> None:
    assert "SEQHUB_HTTP_SHUTDOWN_TIMEOUT" in _known_variables("beacon")
    assert "SEQHUB_HTTP_SHUTDOWN_TIMOUT" not in _known_variables("beacon")
    assert "SEQHUB_BEACON_INDEX_DIR" in _known_variables("beacon")


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of an env value from variables defined earlier in the container."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


@pytest.mark.parametrize("service", SERVICES)
def test_bus_url_expands_to_the_rabbitmq_service_with_the_operator_credentials(service: str) -> None:
    from yarl import URL

    container = by_kind(render(K8S / "overlays" / "prod"), "Deployment")[f"seqhub-{service}"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    env: dict[str, str] = {}
    secrets = {"username": "default_user_AbC", "password": "s3cr3t-Pa55_word"}  # operator-style values
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets.get(ref["key"], "x") if ref["name"] == "seqhub-rabbitmq-default-user" else "x"
        else:
            env[item["name"]] = _expand(item["value"], env)
    url = URL(env["SEQHUB_BUS_URL"])
    assert (url.scheme, url.host, url.port, url.path) == ("amqp", "seqhub-rabbitmq", 5672, "/")
    assert (url.user, url.password) == (secrets["username"], secrets["password"])
