"""RNAget metadata in MongoDB (database ``seqhub_rnaget``): projects, studies, matrix records.

Matrix values live in the matrix files (services/rnaget/matrix.py); a record points at its file.
Feature and sample id -> index maps are kept in the matrix file and cached with it, not in MongoDB:
one document per feature would be 60,000 writes per import for no query it serves better.
The only module of the service that imports pymongo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from .models import Kind, MatrixRecord, Project, Study

INDEXES: dict[str, list[IndexModel]] = {
    "studies": [
        # /studies?projectID=… and the project's study list
        IndexModel([("parentProjectID", ASCENDING)], name="by_project"),
    ],
    "matrices": [
        # /expressions/ticket?studyID=… (the common search), per kind
        IndexModel([("kind", ASCENDING), ("studyID", ASCENDING)], name="kind_study"),
        # /expressions/ticket?projectID=…
        IndexModel([("kind", ASCENDING), ("projectID", ASCENDING)], name="kind_project"),
        # AnalysisWithdrawn -> the matrices an analysis fed
        IndexModel([("analysis_accession", ASCENDING)], name="by_analysis", sparse=True),
    ],
}

_FIELDS = {
    "version": "version",
    "name": "name",
    "studyID": "studyID",
    "projectID": "projectID",
    "units": "units",
}


def _query(filters: Mapping[str, str | list[str]]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in filters.items():
        if key == "tags":
            query["tags"] = {"$all": list(value)}
        elif key in _FIELDS:
            query[_FIELDS[key]] = value
    return query


def _doc(model: Project | MatrixRecord) -> dict[str, Any]:
    doc = model.model_dump(mode="python", exclude_none=True)
    doc["_id"] = doc.pop("id")
    return doc


def _from(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["id"] = out.pop("_id")
    return out


class MetadataStore:
    """Projects, studies and matrix records; every read is one indexed query."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    # -- projects and studies ------------------------------------------------------------------

    async def get_project(self, project_id: str) -> Project | None:
        doc = await self.db["projects"].find_one({"_id": project_id})
        return Project.model_validate(_from(doc)) if doc else None

    async def find_projects(self, filters: Mapping[str, str | list[str]]) -> list[Project]:
        return [
            Project.model_validate(_from(d))
            async for d in self.db["projects"].find(_query(filters)).sort("_id", ASCENDING)
        ]

    async def put_project(self, project: Project) -> None:
        await self.db["projects"].replace_one({"_id": project.id}, _doc(project), upsert=True)

    async def get_study(self, study_id: str) -> Study | None:
        doc = await self.db["studies"].find_one({"_id": study_id})
        return Study.model_validate(_from(doc)) if doc else None

    async def find_studies(self, filters: Mapping[str, str | list[str]]) -> list[Study]:
        query = _query({k: v for k, v in filters.items() if k != "projectID"})
        if "projectID" in filters:
            query["parentProjectID"] = filters["projectID"]
        return [Study.model_validate(_from(d)) async for d in self.db["studies"].find(query).sort("_id", ASCENDING)]

    async def put_study(self, study: Study) -> None:
        await self.db["studies"].replace_one({"_id": study.id}, _doc(study), upsert=True)

    async def ensure_study(self, study_id: str, *, name: str | None = None) -> Study:
        """The study an imported matrix names, created bare if this service has not seen it yet."""
        doc: dict[str, Any] = {"_id": study_id}
        if name:
            doc["name"] = name
        await self.db["studies"].update_one({"_id": study_id}, {"$setOnInsert": doc}, upsert=True)
        study = await self.get_study(study_id)
        assert study is not None
        return study

    # -- matrices --------------------------------------------------------------------------------

    async def get_matrix(self, kind: Kind, matrix_id: str) -> MatrixRecord | None:
        doc = await self.db["matrices"].find_one({"_id": matrix_id, "kind": kind.value})
        return MatrixRecord.model_validate(_from(doc)) if doc else None

    async def find_matrices(
        self, kind: Kind, filters: Mapping[str, str | list[str]], access_levels: Iterable[str]
    ) -> list[MatrixRecord]:
        query = {"kind": kind.value, "access_level": {"$in": list(access_levels)}, **_query(filters)}
        cursor = self.db["matrices"].find(query).sort("_id", ASCENDING)
        return [MatrixRecord.model_validate(_from(d)) async for d in cursor]

    async def matrices_of_analysis(self, accession: str) -> list[MatrixRecord]:
        cursor = self.db["matrices"].find({"analysis_accession": accession})
        return [MatrixRecord.model_validate(_from(d)) async for d in cursor]

    async def put_matrix(self, record: MatrixRecord, *, session: AsyncClientSession | None = None) -> None:
        await self.db["matrices"].replace_one({"_id": record.id}, _doc(record), upsert=True, session=session)

    async def delete_matrix(self, matrix_id: str) -> bool:
        result = await self.db["matrices"].delete_one({"_id": matrix_id})
        return result.deleted_count == 1

    async def distinct(self, collection: str, key: str, query: Mapping[str, Any] | None = None) -> list[str]:
        values = await self.db[collection].distinct(key, dict(query or {}))
        return sorted(str(v) for v in values if v is not None)
