"""The scope vocabulary: parsing, descriptions for the consent page, patterns and implied access."""

import pytest

from libs.common import scopes


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("repository:read", "read studies"),
        ("project:Cancer-2024:read", "read project Cancer-2024"),
        ("project:Cancer-2024:write", "change and add data to project Cancer-2024"),
        ("ingest:upload", "upload sequencing runs from instruments"),
        ("beacon:dataset:1000g-chrMT", "dataset 1000g-chrMT"),
    ],
)
def test_every_scope_has_plain_words(name: str, words: str) -> None:
    assert words in scopes.describe(name)


@pytest.mark.parametrize(
    "bad",
    ["repository:delete", "project::read", "project:x:admin", "beacon:dataset:", "ADMIN", "project:../x:r"],
)
def test_unknown_scopes_are_rejected_by_name(bad: str) -> None:
    with pytest.raises(scopes.InvalidScopeError, match="unknown scope"):
        scopes.parse_scopes(f"repository:read {bad}")


def test_scope_string_is_split_on_spaces_and_deduplicated() -> None:
    assert scopes.split_scopes("  rnaget:read  admin rnaget:read ") == ["rnaget:read", "admin"]
    assert scopes.parse_scopes("") == frozenset()
    assert scopes.format_scopes({"rnaget:read", "admin"}) == "admin rnaget:read"


def test_too_many_scopes_are_refused() -> None:
    many = " ".join(f"project:p{i}:read" for i in range(scopes.MAX_SCOPES + 1))
    with pytest.raises(scopes.InvalidScopeError, match="too many"):
        scopes.parse_scopes(many)


def test_parameterised_scope_exposes_its_resource() -> None:
    s = scopes.parse_scope("project:P1:write")
    assert (s.family, s.resource_id, s.access) == ("project", "P1", "write")


def test_client_patterns_admit_only_matching_scopes() -> None:
    allowed = ["project:*:read", "beacon:dataset:*", "rnaget:read"]
    requested = ["project:A:read", "project:A:write", "beacon:dataset:d1", "rnaget:read", "admin"]
    assert scopes.allowed_subset(requested, allowed) == {"project:A:read", "beacon:dataset:d1", "rnaget:read"}
    assert scopes.is_valid_pattern("project:*:write")
    assert not scopes.is_valid_pattern("project:*:*")


def test_write_implies_read_but_not_the_reverse() -> None:
    assert scopes.satisfies({"repository:write"}, "repository:read")
    assert scopes.satisfies({"project:P:write"}, "project:P:read")
    assert not scopes.satisfies({"project:P:read"}, "project:P:write")
    assert not scopes.satisfies({"project:Q:write"}, "project:P:read")
    assert not scopes.satisfies({"admin"}, "repository:read")
