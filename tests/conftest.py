"""Test harness: real servers, isolated per test.

- `mongo_url` (session): a secantusdb server (the MongoDB-compatible test server) on a free port, in memory —
  or `SEQHUB_TEST_MONGO_URL` if set.
- `amqp_url` (session): RabbitMQ at `SEQHUB_TEST_AMQP_URL` (default amqp://guest:guest@127.0.0.1:5672/); the
  harness starts the local broker if it is installed and stopped. Never skipped: a missing server fails.
- `common_settings` (function): CommonSettings with a unique database prefix, exchange and queue prefix, the
  embedded bus, tmp file roots and the `token_minter`'s keys — so tests run in parallel without colliding.
- `amqp_settings`: the same on RabbitMQ.
Tests using `mongo_url` (directly or through these) are marked `integration` automatically.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, settings
from pymongo import MongoClient

from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from services import platform

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"

# Property tests check correctness, not speed: on a 2-core machine shared with integration servers, input
# generation and single examples can be slow, so neither the too_slow health check nor deadlines may fail a run.
settings.register_profile("seqhub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("seqhub")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if {"mongo_url", "common_settings", "amqp_settings", "amqp_url"} & set(fixtures):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    if url := os.environ.get("SEQHUB_TEST_MONGO_URL"):
        yield url
        return
    url = f"mongodb://127.0.0.1:{platform.free_port()}/"
    process = platform.start_database(url, ":memory:")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 5672)) == 0


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("SEQHUB_TEST_AMQP_URL", DEFAULT_AMQP)
    if not _reachable(url) and shutil.which("rabbitmq-server"):
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        subprocess.run(["rabbitmqctl", "await_startup", "--timeout", "60"], check=False, capture_output=True)
    if not _reachable(url):
        pytest.fail(f"RabbitMQ is not reachable at {url} (make test installs and starts it)")
    subprocess.run(["rabbitmqctl", "await_startup", "--timeout", "60"], check=False, capture_output=True)
    return url


@pytest.fixture(scope="session")
def token_minter() -> TokenMinter:
    return TokenMinter()


def _settings(mongo_url: str, tmp_path: Path, minter: TokenMinter, **overrides: object) -> CommonSettings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "mongo_url": mongo_url, "db_prefix": f"t{tag}_", "bus_url": "embedded",
        "bus_exchange": f"test.{tag}.events", "bus_dead_exchange": f"test.{tag}.dead",
        "bus_queue_prefix": f"test.{tag}.", "bus_retry_base_seconds": 0.05, "bus_retry_max_seconds": 0.2,
        "files_root": tmp_path / "files", "data_root": tmp_path / "data", "auth_jwks": minter.jwks,
        "auth_issuer": minter.issuer, "auth_audience": minter.audience, "log_json": False,
    }
    values.update(overrides)
    return CommonSettings(**values)  # type: ignore[arg-type]


def _drop(mongo_url: str, prefix: str) -> None:
    with MongoClient(mongo_url) as client:
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)


@pytest.fixture
def common_settings(mongo_url: str, tmp_path: Path, token_minter: TokenMinter) -> Iterator[CommonSettings]:
    settings = _settings(mongo_url, tmp_path, token_minter)
    yield settings
    _drop(mongo_url, settings.db_prefix)


@pytest.fixture
def amqp_settings(mongo_url: str, amqp_url: str, tmp_path: Path, token_minter: TokenMinter) -> Iterator[CommonSettings]:
    settings = _settings(mongo_url, tmp_path, token_minter, bus_url=amqp_url)
    yield settings
    _drop(mongo_url, settings.db_prefix)
