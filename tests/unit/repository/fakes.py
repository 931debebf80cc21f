"""In-memory `ResourceStore` and callers for unit tests of the repository's pure logic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from libs.common.events import Event
from services.repository.models import (
    ListQuery,
    Page,
    Resource,
    ResourceType,
    Review,
    Visibility,
    format_accession,
)
from services.repository.service import AliasTaken, StaleVersion


@dataclass(frozen=True)
class FakeCaller:
    subject: str | None = None
    scopes: frozenset[str] = frozenset()


ANON = FakeCaller()


def caller(subject: str, *scopes: str) -> FakeCaller:
    return FakeCaller(subject, frozenset(scopes))


class FakeResourceStore:
    def __init__(self) -> None:
        self.items: dict[tuple[ResourceType, str], Resource] = {}
        self.reviews: dict[str, Review] = {}
        self.counters: dict[ResourceType, int] = {}
        self.events: list[Event] = []

    async def allocate_accession(self, rtype: ResourceType) -> str:
        self.counters[rtype] = self.counters.get(rtype, 0) + 1
        return format_accession(rtype, self.counters[rtype])

    async def reserve_accession(self, rtype: ResourceType, accession: str) -> None:
        self.counters[rtype] = max(self.counters.get(rtype, 0), int(accession[3:]))

    async def get(self, rtype: ResourceType, accession: str) -> Resource | None:
        return self.items.get((rtype, accession))

    async def get_by_alias(self, rtype: ResourceType, owner: str, alias: str) -> Resource | None:
        return next(
            (r for (t, _), r in self.items.items() if t is rtype and r.owner == owner and r.alias == alias),
            None,
        )

    async def insert(self, resource: Resource, events: Sequence[Event] = ()) -> None:
        if await self.get_by_alias(resource.rtype, resource.owner, resource.alias):
            raise AliasTaken("taken")
        self.items[(resource.rtype, resource.accession)] = resource
        self.events.extend(events)

    async def insert_all(self, resources: Sequence[Resource], events: Sequence[Event] = ()) -> None:
        for resource in resources:
            if await self.get_by_alias(resource.rtype, resource.owner, resource.alias):
                raise AliasTaken("taken")
        for resource in resources:
            self.items[(resource.rtype, resource.accession)] = resource
        self.events.extend(events)

    async def insert_with_changes(
        self,
        resource: Resource,
        changes: Sequence[tuple[Resource, Resource | None]],
        events: Sequence[Event] = (),
    ) -> None:
        staged = dict(self.items)  # all or nothing, like the store's transaction
        for before, after in changes:
            key = (before.rtype, before.accession)
            if key not in staged or staged[key].version != before.version:
                raise StaleVersion("stale")
            if after is None:
                del staged[key]
            else:
                staged[key] = after
        if await self.get_by_alias(resource.rtype, resource.owner, resource.alias):
            raise AliasTaken("taken")
        staged[(resource.rtype, resource.accession)] = resource
        self.items = staged
        self.events.extend(events)

    async def replace(self, resource: Resource, *, expected_version: int, events: Sequence[Event] = ()) -> None:
        current = self.items.get((resource.rtype, resource.accession))
        if current is None or current.version != expected_version:
            raise StaleVersion("stale")
        self.items[(resource.rtype, resource.accession)] = resource
        self.events.extend(events)

    async def remove(self, resource: Resource, events: Sequence[Event] = ()) -> None:
        del self.items[(resource.rtype, resource.accession)]
        self.events.extend(events)

    async def held_until(self, day: date) -> list[Resource]:
        return [
            r
            for r in self.items.values()
            if r.hold_until is not None and r.hold_until <= day and r.visibility is Visibility.PRIVATE
        ]

    async def count_children(self, rtype: ResourceType, accession: str) -> int:
        name = rtype.info.name
        return sum(
            1
            for r in self.items.values()
            if getattr(r.parents, name, None) == accession
            or (rtype is ResourceType.RUN and accession in r.parents.runs)
        )

    async def list(
        self,
        rtype: ResourceType,
        query: ListQuery,
        *,
        parent: tuple[str, str] | None,
        viewer: str | None,
        admin: bool,
    ) -> Page:
        items = sorted((r for (t, _), r in self.items.items() if t is rtype), key=lambda r: r.accession)
        if parent:
            items = [r for r in items if getattr(r.parents, parent[0], None) == parent[1]]
        if not admin:
            items = [r for r in items if r.visibility is Visibility.PUBLIC or r.owner == viewer]
        if query.after:
            items = [r for r in items if r.accession > query.after]
        page = items[: query.limit]
        return Page(items=tuple(page), next_after=page[-1].accession if len(items) > query.limit else None)

    async def insert_reviews(self, reviews: Sequence[Review], events: Sequence[Event] = ()) -> None:
        for review in reviews:
            self.reviews[review.id] = review
        self.events.extend(events)

    async def get_review(self, review_id: str) -> Review | None:
        return self.reviews.get(review_id)

    async def replace_review(
        self, review: Review, *, expected_modified: datetime, events: Sequence[Event] = ()
    ) -> None:
        if self.reviews[review.id].modified != expected_modified:
            raise StaleVersion("stale")
        self.reviews[review.id] = review
        self.events.extend(events)
