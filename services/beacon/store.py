"""MongoDB metadata of the beacon: datasets (access level, assembly, counts, live index version) and the
registry of network beacons.  The only beacon module that talks to MongoDB; variants live in the index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from .models import DatasetMeta, RegisteredBeacon

INDEXES: dict[str, list[IndexModel]] = {
    # list_live(): every live dataset, at startup and on each refresh tick
    "datasets": [IndexModel([("withdrawn", ASCENDING), ("_id", ASCENDING)], name="live_datasets")],
    "network_beacons": [],
}


def _now() -> datetime:
    return datetime.now(UTC)


class DatasetStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._datasets = db["datasets"]

    async def save(self, meta: DatasetMeta, *, session: AsyncClientSession | None = None) -> None:
        doc = meta.model_dump()
        doc["_id"] = doc.pop("id")
        await self._datasets.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)

    async def get(self, dataset_id: str) -> DatasetMeta | None:
        doc = await self._datasets.find_one({"_id": dataset_id})
        return _meta(doc) if doc else None

    async def list_live(self) -> list[DatasetMeta]:
        return [_meta(doc) async for doc in self._datasets.find({"withdrawn": False}).sort("_id", ASCENDING)]

    async def withdraw(self, dataset_id: str, *, session: AsyncClientSession | None = None) -> bool:
        result = await self._datasets.update_one(
            {"_id": dataset_id, "withdrawn": False},
            {"$set": {"withdrawn": True, "updateDateTime": _now().isoformat()}},
            session=session,
        )
        return result.modified_count == 1


def _meta(doc: dict[str, Any]) -> DatasetMeta:
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    return DatasetMeta.model_validate(doc)


class BeaconRegistryStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._beacons = db["network_beacons"]

    async def save(self, beacon: RegisteredBeacon) -> None:
        doc = beacon.model_dump()
        doc["_id"] = doc.pop("id")
        await self._beacons.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def list(self) -> list[RegisteredBeacon]:
        out = []
        async for doc in self._beacons.find({}).sort("_id", ASCENDING):
            doc["id"] = doc.pop("_id")
            out.append(RegisteredBeacon.model_validate(doc))
        return out

    async def delete(self, beacon_id: str) -> bool:
        return (await self._beacons.delete_one({"_id": beacon_id})).deleted_count == 1
