"""The beacon network aggregator: fan an allele request out to registered beacons concurrently, each
under its own timeout, and return every beacon's answer or error with an aggregate ``exists``.

Beacons are called with POST JSON (integer coordinates, ``datasetIds`` as a list), falling back to GET
on 405, as CSCfi's beacon-network does.  The caller's token is never forwarded to third parties.
aiohttp client code lives here, behind ``Network``; no pymongo.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from .models import AlleleRequest, RegisteredBeacon
from .store import BeaconRegistryStore


class Network:
    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        registry: BeaconRegistryStore,
        configured: Sequence[RegisteredBeacon],
        timeout: float,
    ) -> None:
        self._http = http
        self._registry = registry
        self._configured = list(configured)
        self.timeout = timeout

    async def beacons(self) -> list[RegisteredBeacon]:
        stored = {b.id: b for b in await self._registry.list()}
        return [*(b for b in self._configured if b.id not in stored), *stored.values()]

    async def register(self, beacon: RegisteredBeacon) -> RegisteredBeacon:
        checked = await self.check(beacon)
        await self._registry.save(checked)
        return checked

    async def unregister(self, beacon_id: str) -> bool:
        return await self._registry.delete(beacon_id)

    async def check(self, beacon: RegisteredBeacon) -> RegisteredBeacon:
        """Fetch the beacon's /service-info: its health and what it says it is."""
        info: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http.get(f"{beacon.url.rstrip('/')}/service-info") as resp:
                    if resp.status == 200:
                        body = await resp.json(content_type=None)
                        info = body if isinstance(body, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            info = None
        return beacon.model_copy(
            update={
                "serviceInfo": info,
                "healthy": info is not None,
                "checkedAt": datetime.now(UTC).isoformat(),
            }
        )

    async def health(self) -> list[RegisteredBeacon]:
        return list(await asyncio.gather(*(self.check(b) for b in await self.beacons())))

    async def query(self, req: AlleleRequest) -> list[dict[str, Any]]:
        beacons = await self.beacons()
        return list(await asyncio.gather(*(self._ask(b, req) for b in beacons)))

    async def _ask(self, beacon: RegisteredBeacon, req: AlleleRequest) -> dict[str, Any]:
        started = time.perf_counter()
        out: dict[str, Any] = {"beaconId": beacon.id, "url": beacon.url}
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._post_or_get(beacon, req)
        except TimeoutError:
            out.update(status="timeout", error=f"no answer within {self.timeout:g} s")
        except (aiohttp.ClientError, ValueError) as exc:
            out.update(status="error", error=f"{type(exc).__name__}: unreachable or invalid answer")
        else:
            if status == 200 and isinstance(body, dict) and isinstance(body.get("exists"), bool):
                out.update(status="ok", exists=body["exists"], response=body)
            else:
                message = body.get("error", {}).get("errorMessage") if isinstance(body, dict) else None
                out.update(status="error", httpStatus=status, error=message or f"HTTP {status}")
        out["elapsedMs"] = round((time.perf_counter() - started) * 1000, 1)
        return out

    async def _post_or_get(self, beacon: RegisteredBeacon, req: AlleleRequest) -> tuple[int, Any]:
        url = f"{beacon.url.rstrip('/')}/query"
        payload = req.model_dump(exclude_none=True)
        async with self._http.post(url, json=payload) as resp:
            if resp.status != 405:
                return resp.status, await resp.json(content_type=None)
        params = [(k, str(v)) for k, v in payload.items() if k != "datasetIds"]
        params += [("datasetIds", d) for d in payload.get("datasetIds", [])]
        async with self._http.get(url, params=params) as resp:
            return resp.status, await resp.json(content_type=None)


def aggregate(answers: Sequence[dict[str, Any]]) -> bool | None:
    """True if any beacon said yes; False if all that answered said no; None if none answered."""
    said = [a["exists"] for a in answers if a.get("status") == "ok"]
    if any(said):
        return True
    return False if said else None
