"""The OAuth2 scope vocabulary every seqhub service uses, with plain-words descriptions and a validator.

One place decides which scope strings exist, what they mean to a person on the consent page, and how a
client's allowed-scope patterns (`project:*:read`) match concrete requests. Pure logic: no I/O, no aiohttp,
no pymongo.

Scopes:
    `repository:read`, `repository:write`, `project:<id>:read`, `project:<id>:write`, `ingest:upload`,
    `beacon:registered`, `beacon:dataset:<id>`, `rnaget:read`, `admin`, `offline_access` (refresh tokens),
    `ga4gh_passport_v1` (GA4GH Passport visas).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REPOSITORY_READ = "repository:read"
REPOSITORY_WRITE = "repository:write"
INGEST_UPLOAD = "ingest:upload"
BEACON_REGISTERED = "beacon:registered"
RNAGET_READ = "rnaget:read"
ADMIN = "admin"
OFFLINE_ACCESS = "offline_access"
GA4GH_PASSPORT = "ga4gh_passport_v1"

STATIC_SCOPES: dict[str, str] = {
    REPOSITORY_READ: "read studies, samples, runs and analyses in the repository that you can see",
    REPOSITORY_WRITE: "create and change studies, samples, runs and analyses in the repository for you",
    INGEST_UPLOAD: "upload sequencing runs from instruments",
    BEACON_REGISTERED: "query registered-access Beacon datasets as a bona fide researcher",
    RNAGET_READ: "read expression data through RNAget",
    ADMIN: "administer seqhub: manage users, clients and tokens",
    OFFLINE_ACCESS: "stay signed in (keep access when you are not using the app)",
    GA4GH_PASSPORT: "see your GA4GH Passport visas (researcher status, accepted terms, dataset grants)",
}
"""Every fixed scope and what it lets an app do, in words for the consent page."""

_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_PROJECT = re.compile(rf"^project:(?P<id>{_ID}):(?P<access>read|write)$")
_DATASET = re.compile(rf"^beacon:dataset:(?P<id>{_ID})$")
_PROJECT_PATTERN = re.compile(r"^project:\*:(read|write)$")
_DATASET_PATTERN = "beacon:dataset:*"
_SCOPE_LIST_SEPARATOR = re.compile(r" +")
MAX_SCOPES = 64


class InvalidScopeError(ValueError):
    """A scope string that is not part of the vocabulary (the message names it)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A parsed scope: its full name, its family (`project`, `beacon:dataset`, or the name itself), and the
    resource id for parameterised scopes."""

    name: str
    family: str
    resource_id: str | None = None
    access: str | None = None

    @property
    def description(self) -> str:
        return describe(self.name)


def parse_scope(name: str) -> Scope:
    """Parse one scope string.

    Args:
        name: e.g. `repository:read`, `project:Cancer-2024:write`, `beacon:dataset:1000g`.

    Returns:
        The parsed `Scope`.

    Raises:
        InvalidScopeError: the string is not a known scope.
    """
    if name in STATIC_SCOPES:
        return Scope(name=name, family=name)
    if m := _PROJECT.match(name):
        return Scope(name=name, family="project", resource_id=m["id"], access=m["access"])
    if m := _DATASET.match(name):
        return Scope(name=name, family="beacon:dataset", resource_id=m["id"])
    raise InvalidScopeError(f"unknown scope {name[:80]!r}")


def is_known(name: str) -> bool:
    """Whether `name` is a scope of the vocabulary."""
    try:
        parse_scope(name)
    except InvalidScopeError:
        return False
    return True


def split_scopes(scope: str | None) -> list[str]:
    """Split an RFC 6749 §3.3 scope string (space-delimited) into its distinct items, order kept."""
    if not scope or not scope.strip():
        return []
    items = _SCOPE_LIST_SEPARATOR.split(scope.strip())
    return list(dict.fromkeys(items))


def parse_scopes(scope: str | None) -> frozenset[str]:
    """Parse and validate a space-delimited scope string.

    Raises:
        InvalidScopeError: an item is unknown, or there are more than `MAX_SCOPES` items.
    """
    items = split_scopes(scope)
    if len(items) > MAX_SCOPES:
        raise InvalidScopeError(f"too many scopes ({len(items)} > {MAX_SCOPES})")
    for item in items:
        parse_scope(item)
    return frozenset(items)


def format_scopes(scopes: Iterable[str]) -> str:
    """The canonical space-delimited form: distinct, sorted."""
    return " ".join(sorted(set(scopes)))


def describe(name: str) -> str:
    """Plain words for the consent page, e.g. `project:Cancer-2024:read` → "read project Cancer-2024"."""
    scope = parse_scope(name)
    if scope.family == "project":
        verb = "read" if scope.access == "read" else "change and add data to"
        return f"{verb} project {scope.resource_id}"
    if scope.family == "beacon:dataset":
        return f"query controlled-access Beacon dataset {scope.resource_id} at record level"
    return STATIC_SCOPES[name]


def is_valid_pattern(pattern: str) -> bool:
    """Whether `pattern` may be stored in a client's or user's allowed scopes (a scope or a `*` pattern)."""
    return pattern in (_DATASET_PATTERN,) or bool(_PROJECT_PATTERN.match(pattern)) or is_known(pattern)


def pattern_allows(pattern: str, name: str) -> bool:
    """Whether an allowed-scope pattern admits a concrete scope (`project:*:read` admits `project:X:read`)."""
    if pattern == name:
        return True
    if pattern == _DATASET_PATTERN:
        return bool(_DATASET.match(name))
    if m := _PROJECT_PATTERN.match(pattern):
        found = _PROJECT.match(name)
        return bool(found) and found is not None and found["access"] == m.group(1)
    return False


def allowed_subset(requested: Iterable[str], patterns: Iterable[str]) -> frozenset[str]:
    """The requested scopes that at least one of the allowed patterns admits."""
    pats = tuple(patterns)
    return frozenset(s for s in requested if any(pattern_allows(p, s) for p in pats))


def satisfies(granted: Iterable[str], required: str) -> bool:
    """Whether a token's granted scopes cover `required` (write implies read for the repository and projects).

    Args:
        granted: the token's scopes.
        required: the scope an operation needs.
    """
    have = set(granted)
    if required in have:
        return True
    if required == REPOSITORY_READ:
        return REPOSITORY_WRITE in have
    m = _PROJECT.match(required)
    return bool(m) and m is not None and m["access"] == "read" and f"project:{m['id']}:write" in have
