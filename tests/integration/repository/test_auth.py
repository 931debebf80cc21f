"""The auth matrix of the GMI API for every verb: anonymous, unknown credentials (bad bearer, revoked Basic
token), bearer without the write scope, another owner, and the owner via Basic and Bearer."""

from __future__ import annotations

from typing import Any

from libs.common.testing import TokenMinter

from .conftest import Client, basic

SAMPLE = {"alias": "auth-1", "title": "t", "sample_name": {"taxon_id": 9606}}
BAD_BEARER = {"Authorization": "Bearer not.a.token"}
REVOKED = basic("alice", "pat-revoked")


async def _create(client: Client, headers: dict[str, str], **extra: Any) -> str:
    response = await client.post("/repository/samples", json={**SAMPLE, **extra}, headers=headers)
    assert response.status == 201, await response.text()
    return str(response.headers["Location"]).split(str(client.make_url("")).rstrip("/"))[-1]


async def test_reads(client: Client, alice: dict[str, str], bob: dict[str, str]) -> None:
    public = await _create(client, alice)
    private = await _create(client, alice, alias="auth-2", visibility="private")
    assert (await client.get(public)).status == 200  # public data needs no credentials
    for headers in (BAD_BEARER, REVOKED):  # unknown credentials are 401 even on public data
        response = await client.get(public, headers=headers)
        assert response.status == 401 and "WWW-Authenticate" in response.headers
    anonymous = await client.get(private)
    assert anonymous.status == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    assert (await client.get(private, headers=bob)).status == 403
    assert (await client.get(private, headers=alice)).status == 200
    assert (await client.get(private, headers=basic("alice", "pat-alice"))).status == 200
    listing = await (await client.get("/repository/samples", headers=bob)).json()
    assert [r["alias"] for r in listing["resources"]] == ["auth-1"]


async def test_writes(client: Client, alice: dict[str, str], bob: dict[str, str], token_minter: TokenMinter) -> None:
    url = await _create(client, alice)
    reader = token_minter.bearer("carol", "repository:read")
    change = {"title": "changed"}
    verbs = {
        "POST": lambda h: client.post("/repository/samples", json={**SAMPLE, "alias": "new"}, headers=h),
        "PUT": lambda h: client.put(url, json=SAMPLE, headers=h),
        "PATCH": lambda h: client.patch(url, json=change, headers=h),
        "DELETE": lambda h: client.delete(url, headers=h),
    }
    for verb, call in verbs.items():
        anonymous = await call({})
        assert anonymous.status == 401 and "WWW-Authenticate" in anonymous.headers, verb
        assert (await call(BAD_BEARER)).status == 401, verb
        assert (await call(REVOKED)).status == 401, verb
        assert (await call(reader)).status == 403, verb
        if verb != "POST":
            forbidden = await call(bob)
            assert forbidden.status == 403 and "another submitter" in (await forbidden.json())["message"], verb
    owner = basic("alice", "pat-alice")
    assert (await client.patch(url, json=change, headers=owner)).status == 200
    assert (await client.put(url, json=SAMPLE, headers=alice)).status == 200
    assert (await client.delete(url, headers=owner)).status == 200
    created = await client.post("/repository/samples", json={**SAMPLE, "alias": "via-basic"}, headers=owner)
    assert created.status == 201


async def test_reviews_are_decided_by_admins_only(make_client: Any, alice: dict[str, str], bob: dict[str, str]) -> None:
    client = await make_client(review_types="study,sample")
    posted = await client.post("/repository/samples", json=SAMPLE, headers=alice)
    assert posted.status == 202
    review = str(posted.headers["Location"]).split(str(client.make_url("")).rstrip("/"))[-1]
    assert (await client.get(review)).status == 401
    assert (await client.get(review, headers=bob)).status == 403
    assert (await client.post(f"{review}/decision", json={"decision": "approve"}, headers=alice)).status == 403
    bad = await client.post(f"{review}/decision", json={"decision": "maybe"}, headers=alice)
    assert bad.status == 400
