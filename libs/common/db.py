"""MongoDB access: one AsyncMongoClient per process, one database per service, indexes declared by stores.

Stores declare `INDEXES: dict[str, list[IndexModel]]` (collection → indexes, each named and commented with
the query it serves); `ensure_indexes` applies them at startup and is a no-op when nothing changed. Only
stores and this module import pymongo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

IndexPlan = Mapping[str, Sequence[IndexModel]]
Document = dict[str, Any]


@asynccontextmanager
async def mongo_client(url: str, *, timeout_ms: int, app_name: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    """Open a client, fail fast if the server does not answer a ping, close it on exit.

    Args:
        url: MongoDB URI.
        timeout_ms: bound on every operation (`timeoutMS`) and on server selection.
        app_name: shows in the server's logs and `currentOp`.
    """
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url, timeoutMS=timeout_ms, serverSelectionTimeoutMS=timeout_ms, appname=app_name, tz_aware=True
    )
    try:
        await client.aconnect()
        await client.admin.command("ping")
        yield client
    finally:
        await client.close()


async def ensure_indexes(
    db: AsyncDatabase[Document], plan: IndexPlan, *, retired: Mapping[str, Sequence[str]] | None = None
) -> None:
    """Create every declared index that is missing (existing identical indexes are left alone), and drop the
    `retired` ones (collection → index names a store no longer declares) where an older version made them —
    an index nobody queries still costs every write."""
    for collection, indexes in plan.items():
        if indexes:
            await db[collection].create_indexes(list(indexes))
    for collection, names in (retired or {}).items():
        existing = {index["name"] async for index in await db[collection].list_indexes()}
        for name in set(names) & existing:
            await db[collection].drop_index(name)


async def ping(db: AsyncDatabase[Document]) -> bool:
    """True when the database server answers (readiness)."""
    try:
        await db.command("ping")
    except Exception:
        return False
    return True
