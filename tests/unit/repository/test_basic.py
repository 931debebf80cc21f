"""Basic credentials (user + personal access token) checked through token introspection, cached briefly."""

from __future__ import annotations

from typing import Any

from services.repository.basic import BasicVerifier


class FakeIntrospector:
    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.calls = 0

    async def __call__(self, token: str) -> dict[str, Any]:
        self.calls += 1
        return self.answers.get(token, {"active": False})


ACTIVE = {
    "active": True,
    "sub": "alice",
    "username": "alice",
    "scope": "repository:write",
    "client_id": "pat",
}


async def test_active_token_of_that_user_is_a_principal_with_its_scopes() -> None:
    verifier = BasicVerifier(FakeIntrospector({"pat-1": ACTIVE}))
    principal = await verifier("alice", "pat-1")
    assert principal is not None and principal.subject == "alice" and principal.via == "basic"
    assert principal.scopes == frozenset({"repository:write"})


async def test_inactive_unknown_or_someone_elses_token_is_refused() -> None:
    verifier = BasicVerifier(FakeIntrospector({"pat-1": ACTIVE, "revoked": {"active": False}}))
    assert await verifier("alice", "revoked") is None
    assert await verifier("alice", "nope") is None
    assert await verifier("mallory", "pat-1") is None
    assert await verifier("", "pat-1") is None


async def test_answers_are_cached_until_the_ttl_runs_out() -> None:
    fake = FakeIntrospector({"pat-1": ACTIVE})
    verifier = BasicVerifier(fake, ttl=60)
    for _ in range(5):
        assert await verifier("alice", "pat-1") is not None
    assert fake.calls == 1
    fake.answers["pat-1"] = {"active": False}  # revoked at the auth service
    expired = BasicVerifier(fake, ttl=0)
    assert await expired("alice", "pat-1") is None
