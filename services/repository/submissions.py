"""SUBMISSION actions (SRA.submission.xsd ``ACTIONS/ACTION``) executed when a submission is created.

What the actions do here (ENA Webin semantics mapped onto seqhub's public / private visibility):

- ``RELEASE target`` makes the object public now.
- ``HOLD target [HoldUntilDate]`` makes it private; the date (future, at most two years ahead, as at ENA) is
  recorded in the receipt. seqhub does not release it automatically on that date: RELEASE does.
- ``SUPPRESS target [HoldUntilDate]`` makes a public object private.
- ``CANCEL target`` deletes a private object; ``KILL target`` deletes a public one (both refuse objects that
  still have dependent objects, like DELETE).
- ``ADD``, ``MODIFY`` and ``VALIDATE`` name a ``source`` document, which a submission POST does not carry: they
  are refused with the way to do it (POST the document, a ``*_SET``, to its collection; PUT to modify).
  ``RECEIPT``, ``PROTECT`` and ``ROLLBACK`` are refused too.

A target is one of our accessions (any type) or an alias of the submitter's. Every action is checked before
any is applied (400 naming each bad ``ACTION[i]``); objects of other submitters are reported exactly like
unknown ones. No aiohttp or pymongo here: the changes go through the `ResourceStore` port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from .models import ActionResult, FieldError, Resource, ResourceType, Visibility

if TYPE_CHECKING:
    from .service import ResourceStore

ACTIONS_PATH = "/SUBMISSION_SET/SUBMISSION/ACTIONS/ACTION"
TARGET_TYPES = tuple(t for t in ResourceType if t is not ResourceType.SUBMISSION)
BY_PREFIX = {t.info.prefix: t for t in TARGET_TYPES}
MAX_HOLD = timedelta(days=2 * 365)
REFUSED = {
    "add": "ADD names a source document, which a submission does not carry: POST the document (a *_SET) to its "
    "collection instead",
    "modify": "MODIFY names a source document, which a submission does not carry: PUT or PATCH the object instead",
    "validate": "VALIDATE names a source document, which a submission does not carry: POST the document to its "
    "collection (validation errors come back as 400)",
    "receipt": "RECEIPT is not an action here: GET /submissions?alias=<alias> returns the stored receipt",
    "protect": "PROTECT (EGA) is not supported",
    "rollback": "ROLLBACK is not supported",
}


@dataclass(frozen=True, slots=True)
class Step:
    """One checked action: what happens to which object."""

    action: str  # RELEASE, HOLD, SUPPRESS, CANCEL, KILL
    target: Resource
    visibility: Visibility | None  # None: the object is deleted
    hold_until: date | None = None

    def result(self) -> ActionResult:
        outcome = "deleted" if self.visibility is None else self.visibility.value
        return ActionResult(
            action=self.action,
            target=self.target.accession,
            type=self.target.rtype.info.name,
            result=outcome,
            hold_until=self.hold_until,
        )


class PlanErrors(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid action(s)")
        self.errors = errors


def actions_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    container = body.get("actions") or {}
    items = container.get("action") if isinstance(container, dict) else None
    if items is None:
        return []
    return [item for item in (items if isinstance(items, list) else [items]) if isinstance(item, dict)]


async def plan(
    body: dict[str, Any], *, owner: str, admin: bool, store: ResourceStore, today: date
) -> list[Step]:
    """Check every action of a validated submission body; `PlanErrors` lists each one that cannot run."""
    steps: list[Step] = []
    errors: list[FieldError] = []
    deleted: set[str] = set()
    for number, item in enumerate(actions_of(body), 1):
        [(name, params)] = item.items()
        where = f"{ACTIONS_PATH}[{number}]/{name.upper()}"
        field = f"actions.action[{number}].{name}"

        def fail(reason: str, *, at: str = where, what: str = field) -> None:
            errors.append(FieldError(path=at, field=what, reason=reason))

        if name in REFUSED:
            fail(REFUSED[name])
            continue
        params = params if isinstance(params, dict) else {}
        target_ref = params.get("target")
        if not isinstance(target_ref, str) or not target_ref:
            fail(f"{name.upper()} needs a target here (the objects of a submission are not part of it)")
            continue
        target, problem = await _target(target_ref, owner=owner, admin=admin, store=store)
        if target is None:
            fail(problem, at=f"{where}/@target", what=f"{field}.target")
            continue
        if target.accession in deleted:
            fail(f"{target.accession} is deleted by an earlier action", at=f"{where}/@target", what=f"{field}.target")
            continue
        hold_until = None
        if "HoldUntilDate" in params:
            hold_until = _date(params["HoldUntilDate"])
            if hold_until is None or not today < hold_until <= today + MAX_HOLD:
                fail(
                    "HoldUntilDate must be a date after today and at most two years ahead",
                    at=f"{where}/@HoldUntilDate",
                    what=f"{field}.HoldUntilDate",
                )
                continue
        public = target.visibility is Visibility.PUBLIC
        if name == "release":
            steps.append(Step("RELEASE", target, Visibility.PUBLIC))
        elif name == "hold":
            steps.append(Step("HOLD", target, Visibility.PRIVATE, hold_until))
        elif name == "suppress":
            if not public:
                fail(f"{target.accession} is not public; SUPPRESS applies to public objects (CANCEL private ones)")
                continue
            steps.append(Step("SUPPRESS", target, Visibility.PRIVATE, hold_until))
        elif name in ("cancel", "kill"):
            if name == "cancel" and public:
                fail(f"{target.accession} is public; CANCEL applies to private objects (KILL or SUPPRESS public ones)")
                continue
            if name == "kill" and not public:
                fail(f"{target.accession} is private; KILL applies to public objects (CANCEL private ones)")
                continue
            children = await store.count_children(target.rtype, target.accession)
            if children:
                fail(f"{target.accession} still has {children} dependent object(s); remove those first")
                continue
            deleted.add(target.accession)
            steps.append(Step(name.upper(), target, None))
        else:  # the XSD allows nothing else; kept so a schema change cannot slip through silently
            fail(f"unknown action {name.upper()}")
    if errors:
        raise PlanErrors(errors)
    return steps


async def _target(
    ref: str, *, owner: str, admin: bool, store: ResourceStore
) -> tuple[Resource | None, str]:
    rtype = BY_PREFIX.get(ref[:3])
    if rtype is not None and ref[3:].isdigit():
        found = await store.get(rtype, ref)
        if found is not None and (found.owner == owner or admin):
            return found, ""
        return None, f"no object {ref} of yours"
    matches = [r for t in TARGET_TYPES if (r := await store.get_by_alias(t, owner, ref)) is not None]
    if len(matches) > 1:
        kinds = ", ".join(f"{r.rtype.info.name} {r.accession}" for r in matches)
        return None, f"alias {ref!r} names several of your objects ({kinds}); use the accession"
    if not matches:
        return None, f"no object with alias {ref!r} of yours"
    return matches[0], ""


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
