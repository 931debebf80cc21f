"""Beacon test fixtures: the chrMT file indexed once per session, copied into each test's data root and
registered as public, registered and controlled datasets; schema validators for the served contract."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from libs.common.config import CommonSettings
from services.beacon import keys, service
from services.beacon.app import OPENAPI, create_app
from services.beacon.index import BuildResult, build_version
from services.beacon.models import AccessLevel, DatasetMeta
from services.beacon.settings import BeaconSettings
from tests.shared import SHARED

CHRMT = (SHARED / "data/1000g-chrMT/ALL.chrMT.phase3_callmom-v0_4.20130502.genotypes.vcf.gz")
DATASETS = {
    "mt-public": AccessLevel.PUBLIC,
    "mt-registered": AccessLevel.REGISTERED,
    "mt-controlled": AccessLevel.CONTROLLED,
}
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="session")
def chrmt_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BuildResult]]:
    root = tmp_path_factory.mktemp("beacon-index")
    return root, {ds: build_version(root, ds, CHRMT) for ds in DATASETS}


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text())


@pytest.fixture(scope="session")
def validate_schema(openapi: dict[str, Any]) -> Callable[[str, Any], None]:
    """Validate a body against `#/components/schemas/<name>` of the served contract (OAS 3.0 ≈ draft 4)."""

    def check(name: str, body: Any) -> None:
        schema = {**openapi, "$ref": f"#/components/schemas/{name}"}
        jsonschema.Draft4Validator(schema).validate(body)

    return check


def beacon_settings(common: CommonSettings, **overrides: Any) -> BeaconSettings:
    return BeaconSettings(common=common, refresh_seconds=0.2, **overrides)


async def install_chrmt(app: web.Application | None, versions: tuple[Path, dict[str, BuildResult]]) -> None:
    """Put the prebuilt chrMT versions under the app's index root and register them in MongoDB."""
    assert app is not None
    settings = app[keys.settings]
    src_root, built = versions
    now = datetime.now(UTC).isoformat()
    for dataset_id, access in DATASETS.items():
        result = built[dataset_id]
        shutil.copytree(src_root / dataset_id, settings.index_root() / dataset_id, dirs_exist_ok=True)
        meta = DatasetMeta(
            id=dataset_id,
            name=f"1000G chrMT ({access.value.lower()})",
            assemblyId="GRCh37",
            accessType=access,
            indexVersion=result.version,
            variantCount=result.alleles,
            callCount=result.records,
            sampleCount=result.samples,
            createDateTime=now,
            updateDateTime=now,
        )
        await app[keys.dataset_store].save(meta)
    await service.refresh(root=settings.index_root(), store=app[keys.dataset_store], catalog=app[keys.catalog])


@pytest.fixture
async def beacon(
    aiohttp_client: ClientFactory,
    common_settings: CommonSettings,
    chrmt_versions: tuple[Path, dict[str, BuildResult]],
) -> AsyncIterator[TestClient[Any, Any]]:
    client = await aiohttp_client(create_app(beacon_settings(common_settings)))
    await install_chrmt(client.app, chrmt_versions)
    yield client
    closer = asyncio.ensure_future(client.close())
    done, _ = await asyncio.wait({closer}, timeout=10)
    if not done:
        import sys

        for task in asyncio.all_tasks():
            task.print_stack(limit=12, file=sys.stderr)
        raise AssertionError("close hung")
