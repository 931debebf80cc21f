"""Who may read and write what in the repository. Pure logic; raises the domain errors the edge renders.

- Public resources are readable by anyone; private ones by their owner and admins only.
- Writes need ``repository:write``, or ``project:<study alias>:write`` for resources under that study.
- Changing or deleting an existing resource is for its owner (the submitter) or an admin.
- Reviews are decided by admins.
"""

from __future__ import annotations

from typing import Protocol

from libs.common.errors import Forbidden, Unauthorized

from .models import Resource, Visibility

WRITE = "repository:write"
ADMIN = "admin"
CHALLENGE = 'Bearer realm="seqhub", Basic realm="seqhub"'


class Caller(Protocol):
    """What the repository needs to know about the caller (``libs.common.auth.Principal`` satisfies it)."""

    @property
    def subject(self) -> str | None: ...

    @property
    def scopes(self) -> frozenset[str]: ...


def require_authenticated(caller: Caller) -> str:
    if caller.subject is None:
        raise Unauthorized("credentials are required", headers={"WWW-Authenticate": CHALLENGE})
    return caller.subject


def is_admin(caller: Caller) -> bool:
    return ADMIN in caller.scopes


def can_read(caller: Caller, resource: Resource) -> bool:
    return resource.visibility is Visibility.PUBLIC or caller.subject == resource.owner or is_admin(caller)


def check_read(caller: Caller, resource: Resource) -> None:
    if can_read(caller, resource):
        return
    require_authenticated(caller)
    raise Forbidden(f"{resource.accession} is not public and belongs to another submitter")


def check_create(caller: Caller, *, project: str | None) -> str:
    """The owner of the new resource; 401 anonymous, 403 without a write scope."""
    subject = require_authenticated(caller)
    if WRITE in caller.scopes or is_admin(caller):
        return subject
    if project and f"project:{project}:write" in caller.scopes:
        return subject
    needed = WRITE if not project else f"{WRITE} or project:{project}:write"
    raise Forbidden(f"creating resources needs the scope {needed}")


def check_change(caller: Caller, resource: Resource, *, project: str | None) -> None:
    """Owner (with a write scope) or admin may replace, patch or delete."""
    check_create(caller, project=project)
    if caller.subject != resource.owner and not is_admin(caller):
        raise Forbidden(f"{resource.accession} belongs to another submitter")


def check_reviewer(caller: Caller) -> None:
    require_authenticated(caller)
    if not is_admin(caller):
        raise Forbidden("deciding a review needs the admin scope")
