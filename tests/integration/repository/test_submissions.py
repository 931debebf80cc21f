"""SUBMISSION documents over HTTP: their actions run against the real store, and the receipt is kept."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from typing import Any

import pytest

from services.repository import keys, service
from services.repository.models import Resource, ResourceType, Visibility

from .conftest import Client

SUBMISSION_XML = {"Content-Type": "application/vnd.gmi.submission-v1+xml"}


async def private_sample(client: Client, alice: dict[str, str], alias: str) -> str:
    created = await client.post(
        "/repository/samples",
        json={"alias": alias, "sample_name": {"taxon_id": 9606}, "visibility": "private"},
        headers=alice,
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["accession"])


async def test_a_submission_releases_and_holds_objects(client: Client, alice: dict[str, str]) -> None:
    first = await private_sample(client, alice, "rel-1")
    second = await private_sample(client, alice, "rel-2")
    assert (await client.get(f"/repository/samples/{first}")).status == 401  # private: anonymous is refused
    until = date.today() + timedelta(days=60)
    document = (
        '<SUBMISSION_SET><SUBMISSION alias="release-1" center_name="seqhub"><ACTIONS>'
        f'<ACTION><RELEASE target="{first}"/></ACTION>'
        f'<ACTION><HOLD target="rel-2" HoldUntilDate="{until}"/></ACTION>'
        "</ACTIONS></SUBMISSION></SUBMISSION_SET>"
    ).encode()
    posted = await client.post(
        "/repository/submissions", data=document, headers={**alice, **SUBMISSION_XML, "Accept": "application/json"}
    )
    assert posted.status == 201, await posted.text()
    receipt = (await posted.json())["receipt"]
    assert receipt == [
        {"action": "RELEASE", "target": first, "type": "sample", "result": "public"},
        {"action": "HOLD", "target": second, "type": "sample", "result": "private", "hold_until": str(until)},
    ]
    public = await client.get(f"/repository/samples/{first}")
    assert public.status == 200 and (await public.json())["visibility"] == "public"
    assert (await client.get(f"/repository/samples/{second}")).status == 401
    held = await (await client.get(f"/repository/samples/{second}", headers=alice)).json()
    assert held["hold_until"] == str(until)
    # the receipt is stored with the submission; its XML stays schema-valid (the receipt is not in the XSD)
    location = posted.headers["Location"].removeprefix(str(client.make_url("")).rstrip("/"))
    again = await client.get(location, headers={**alice, "Accept": "application/json"})
    assert (await again.json())["receipt"] == receipt
    xml = await client.get(location, headers={**alice, "Accept": "application/xml"})
    assert xml.status == 200 and b"<RELEASE" in await xml.read()


async def test_bad_actions_change_nothing_and_are_listed_by_path(
    client: Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    mine = await private_sample(client, alice, "keep-1")
    theirs = await private_sample(client, bob, "bobs-1")
    document = (
        '<SUBMISSION_SET><SUBMISSION alias="bad-1"><ACTIONS>'
        f'<ACTION><RELEASE target="{mine}"/></ACTION>'
        f'<ACTION><RELEASE target="{theirs}"/></ACTION>'
        '<ACTION><ADD source="samples.xml" schema="sample"/></ACTION>'
        "</ACTIONS></SUBMISSION></SUBMISSION_SET>"
    ).encode()
    posted = await client.post("/repository/submissions", data=document, headers={**alice, **SUBMISSION_XML})
    assert posted.status == 400
    root = ET.fromstring(await posted.read())  # noqa: S314 - our own output
    assert [f.get("path") for f in root.iter("FIELD")] == [
        "/SUBMISSION_SET/SUBMISSION/ACTIONS/ACTION[2]/RELEASE/@target",
        "/SUBMISSION_SET/SUBMISSION/ACTIONS/ACTION[3]/ADD",
    ]
    still_private = await client.get(f"/repository/samples/{mine}", headers=alice)
    assert (await still_private.json())["visibility"] == "private"
    listed = await client.get("/repository/submissions?alias=bad-1", headers=alice)
    assert (await listed.json())["count"] == 0


async def test_the_store_applies_a_submission_in_one_transaction(
    make_app_client: Any, alice: dict[str, str]
) -> None:
    app, client = await make_app_client()
    store = app[keys.resource_store]
    first = await private_sample(client, alice, "tx-1")
    second = await private_sample(client, alice, "tx-2")
    one, two = await store.get(ResourceType.SAMPLE, first), await store.get(ResourceType.SAMPLE, second)
    assert one is not None and two is not None
    stale = two.model_copy(update={"version": two.version + 7})  # as if read before someone else's change
    stamp = service.now()
    receipt = Resource(
        accession="SHA000900", rtype=ResourceType.SUBMISSION, alias="tx", owner="alice",
        body={"accession": "SHA000900", "alias": "tx"}, created=stamp, modified=stamp,
    )
    public = Visibility.PUBLIC
    changes = [
        (one, one.model_copy(update={"visibility": public, "version": one.version + 1})),
        (stale, None),
    ]
    with pytest.raises(service.StaleVersion):
        await store.insert_with_changes(receipt, changes)
    after = await store.get(ResourceType.SAMPLE, first)
    assert after is not None and after.visibility is Visibility.PRIVATE and after.version == one.version
    assert await store.get(ResourceType.SAMPLE, second) is not None
    assert await store.get(ResourceType.SUBMISSION, "SHA000900") is None
    # and the same changes without the stale one go through together
    await store.insert_with_changes(receipt, changes[:1])
    done = await store.get(ResourceType.SAMPLE, first)
    assert done is not None and done.visibility is Visibility.PUBLIC
    assert await store.get(ResourceType.SUBMISSION, "SHA000900") is not None


async def test_the_service_releases_held_objects_when_their_day_has_come(
    make_app_client: Any, alice: dict[str, str]
) -> None:
    app, client = await make_app_client(hold_sweep_seconds=0.2)
    store = app[keys.resource_store]
    accession = await private_sample(client, alice, "due-1")
    current = await store.get(ResourceType.SAMPLE, accession)
    assert current is not None
    # held until yesterday (a HOLD cannot name a past day, so the hold is written as it would stand a day later)
    held = current.model_copy(update={"hold_until": date.today() - timedelta(days=1), "version": current.version + 1})
    await store.replace(held, expected_version=current.version)
    deadline = asyncio.get_running_loop().time() + 20
    while (await client.get(f"/repository/samples/{accession}")).status != 200:
        assert asyncio.get_running_loop().time() < deadline, "the hold was not released"
        await asyncio.sleep(0.1)
    released = await (await client.get(f"/repository/samples/{accession}")).json()
    assert released["visibility"] == "public" and "hold_until" not in released
