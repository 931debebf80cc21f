"""Settings building blocks, read from `SEQHUB_*` environment variables once and frozen.

Every setting has a safe default for the embedded mode (one process, local database server, embedded bus,
files under ./var). Services compose `CommonSettings` into their own `<Service>Settings`; nothing else in the
code base reads the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

_S = TypeVar("_S", bound=BaseSettings)

EMBEDDED_BUS = "embedded"
"""`bus_url` value selecting the durable MongoDB-backed in-process bus (embedded mode, unit-free tests)."""


class HttpSettings(BaseModel):
    """Where a service listens and how long it drains on shutdown."""

    model_config = ConfigDict(frozen=True)
    host: str = "127.0.0.1"
    port: int = 8080
    shutdown_timeout: float = 25.0
    """Seconds `run_app` waits for in-flight requests; keep it below the pod's terminationGracePeriodSeconds."""


class AuthSettings(BaseModel):
    """How a resource service verifies access tokens (RFC 9068 JWTs signed by the auth service)."""

    model_config = ConfigDict(frozen=True)
    issuer: str = "http://127.0.0.1:8080/auth"
    audience: str = "seqhub"
    jwks_url: str | None = None
    """Where the issuer's keys are published; default: `<issuer>/.well-known/jwks.json`."""
    jwks: dict[str, object] | None = None
    """Inline JWKS (tests, air-gapped deployments); wins over `jwks_url`."""
    jwks_cache_seconds: float = 300.0
    leeway_seconds: int = 30

    def resolved_jwks_url(self) -> str:
        return self.jwks_url or self.issuer.rstrip("/") + "/.well-known/jwks.json"


class BusSettings(BaseModel):
    """Message bus topology and consumer behaviour (same contract for RabbitMQ and the embedded bus)."""

    model_config = ConfigDict(frozen=True)
    url: str = EMBEDDED_BUS
    exchange: str = "seqhub.events"
    dead_exchange: str = "seqhub.dead"
    queue_prefix: str = ""
    """Prepended to every queue name; tests use a unique value so runs never share queues."""
    prefetch: int = 8
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    publish_timeout: float = 10.0


class CommonSettings(BaseSettings):
    """What every service needs: database, bus, files, auth, HTTP, logging — flat `SEQHUB_*` variables.

    e.g. `SEQHUB_MONGO_URL`, `SEQHUB_BUS_URL`, `SEQHUB_AUTH_ISSUER`, `SEQHUB_AUTH_JWKS_URL`, `SEQHUB_HTTP_PORT`,
    `SEQHUB_FILES_ROOT`. The `http`, `bus` and `auth` properties group them for the components that use them.
    """

    model_config = SettingsConfigDict(env_prefix="SEQHUB_", frozen=True, extra="ignore")

    mongo_url: str = "mongodb://127.0.0.1:27018/"
    mongo_timeout_ms: int = 10_000
    db_prefix: str = "seqhub_"
    """Database of a service = f"{db_prefix}{service}"."""
    files_root: Path = Path("var/files")
    data_root: Path = Path("var/data")
    public_url: str = "http://127.0.0.1:8080"
    log_level: str = "INFO"
    log_json: bool = True

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_shutdown_timeout: float = 25.0

    bus_url: str = EMBEDDED_BUS
    bus_exchange: str = "seqhub.events"
    bus_dead_exchange: str = "seqhub.dead"
    bus_queue_prefix: str = ""
    bus_prefetch: int = 8
    bus_max_attempts: int = 5
    bus_retry_base_seconds: float = 1.0
    bus_retry_max_seconds: float = 60.0

    auth_issuer: str = "http://127.0.0.1:8080/auth"
    auth_audience: str = "seqhub"
    auth_jwks_url: str | None = None
    auth_jwks: dict[str, object] | None = None
    auth_jwks_cache_seconds: float = 300.0

    @property
    def http(self) -> HttpSettings:
        return HttpSettings(host=self.http_host, port=self.http_port, shutdown_timeout=self.http_shutdown_timeout)

    @property
    def bus(self) -> BusSettings:
        return BusSettings(
            url=self.bus_url,
            exchange=self.bus_exchange,
            dead_exchange=self.bus_dead_exchange,
            queue_prefix=self.bus_queue_prefix,
            prefetch=self.bus_prefetch,
            max_attempts=self.bus_max_attempts,
            retry_base_seconds=self.bus_retry_base_seconds,
            retry_max_seconds=self.bus_retry_max_seconds,
        )

    @property
    def auth(self) -> AuthSettings:
        return AuthSettings(
            issuer=self.auth_issuer,
            audience=self.auth_audience,
            jwks_url=self.auth_jwks_url,
            jwks=self.auth_jwks,
            jwks_cache_seconds=self.auth_jwks_cache_seconds,
        )

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    def service_data_dir(self, service: str) -> Path:
        return self.data_root / service


def from_environment(cls: type[_S]) -> _S:
    """`cls()` for a process entry point: on a bad value, print one line per problem naming the environment
    variable and the reason (`SEQHUB_AUTH_SIGNING_KEY_FILE: /x.pem: No such file or directory`) and exit 2,
    instead of a traceback."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix") or "")
        for error in exc.errors(include_url=False):
            name = prefix + "_".join(str(part) for part in error["loc"]).upper()
            print(f"seqhub: invalid setting {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
