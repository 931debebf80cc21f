"""Parsing and validating Beacon v1 allele requests (GET query, form body or JSON body).

Every rule of the spec's request table, and the prose-only ones, ends in ``InvalidQuery`` naming the
parameter.  Plain Python: no aiohttp, no pymongo.  Coordinates are 0-based, ``end`` exclusive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError

from .alleles import CHROMOSOMES, VARIANT_TYPES
from .models import AlleleRequest

BASES: Final = re.compile(r"^[ACGTN]+$")
QUERYABLE_TYPES: Final = tuple(t for t in VARIANT_TYPES if t != "OTHER")
INT_PARAMS: Final = ("start", "end", "startMin", "startMax", "endMin", "endMax")
STR_PARAMS: Final = (
    "referenceName",
    "referenceBases",
    "assemblyId",
    "alternateBases",
    "variantType",
    "mateName",
    "includeDatasetResponses",
)
KNOWN: Final = frozenset((*INT_PARAMS, *STR_PARAMS, "datasetIds"))
BRACKETS: Final = ("startMin", "startMax", "endMin", "endMax")
_MAX_COORD: Final = 2**31 - 1
_INCLUDE_ALIASES: Final = {"TRUE": "ALL", "FALSE": "NONE"}


class InvalidQuery(ValueError):
    """A client mistake in the request; ``parameter`` names the offending parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def parse_multidict(items: Sequence[tuple[str, str]]) -> AlleleRequest:
    """A request from GET query parameters or a form body (repeated or comma-separated datasetIds)."""
    raw: dict[str, Any] = {}
    dataset_ids: list[str] = []
    for key, value in items:
        if key not in KNOWN:
            raise InvalidQuery(key, f"Unknown parameter {key}")
        if key == "datasetIds":
            dataset_ids.extend(v.strip() for v in value.split(",") if v.strip())
            raw[key] = dataset_ids
        elif key in raw:
            raise InvalidQuery(key, f"Parameter {key} given more than once")
        else:
            raw[key] = value
    return validate(raw)


def parse_json(body: Any) -> AlleleRequest:
    if not isinstance(body, dict):
        raise InvalidQuery("body", "The request body must be a JSON object (BeaconAlleleRequest)")
    for key in body:
        if key not in KNOWN:
            raise InvalidQuery(str(key), f"Unknown parameter {key}")
    raw = dict(body)
    ids = raw.get("datasetIds")
    if isinstance(ids, str):
        raw["datasetIds"] = [v.strip() for v in ids.split(",") if v.strip()]
    return validate(raw)


def validate(raw: Mapping[str, Any]) -> AlleleRequest:
    values: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    _required(values, "referenceName")
    _required(values, "referenceBases")
    _required(values, "assemblyId")
    for name in STR_PARAMS:
        if name in values and not isinstance(values[name], str):
            raise InvalidQuery(name, f"{name} must be a string")
    for name in INT_PARAMS:
        if name in values:
            values[name] = _coordinate(name, values[name])
    _check_names(values)
    _check_bases(values)
    _check_type(values)
    _check_coordinates(values)
    values["datasetIds"] = _dataset_ids(values.get("datasetIds"))
    values["includeDatasetResponses"] = _include(values.get("includeDatasetResponses", "NONE"))
    try:
        return AlleleRequest.model_validate(values)
    except ValidationError as exc:  # defensive: every field was checked above
        loc = exc.errors()[0]["loc"]
        name = str(loc[0]) if loc else "request"
        raise InvalidQuery(name, f"Invalid parameter {name}") from None


def _required(values: Mapping[str, Any], name: str) -> None:
    if name not in values or values[name] == "":
        raise InvalidQuery(name, f"Missing mandatory parameter {name}")


def _coordinate(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidQuery(name, f"{name} must be a non-negative integer")
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,18}", value.strip()):
            raise InvalidQuery(name, f"{name} must be a non-negative integer, got {value[:40]!r}")
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise InvalidQuery(name, f"{name} must be a non-negative integer")
    if value > _MAX_COORD:
        raise InvalidQuery(name, f"{name} must be at most {_MAX_COORD}")
    return value


def _check_names(values: Mapping[str, Any]) -> None:
    for name in ("referenceName", "mateName"):
        if name in values and values[name] not in CHROMOSOMES:
            raise InvalidQuery(name, f"{name} must be one of 1-22, X, Y, MT (got {values[name][:20]!r})")


def _check_bases(values: Mapping[str, Any]) -> None:
    for name in ("referenceBases", "alternateBases"):
        if name in values and not BASES.fullmatch(values[name]):
            raise InvalidQuery(name, f"{name} must match [ACGTN]+")
    if "alternateBases" not in values and "variantType" not in values:
        raise InvalidQuery("alternateBases", "Either alternateBases or variantType is required")


def _check_type(values: Mapping[str, Any]) -> None:
    vtype = values.get("variantType")
    if vtype is not None and vtype not in QUERYABLE_TYPES:
        raise InvalidQuery("variantType", f"variantType must be one of {', '.join(QUERYABLE_TYPES)}")
    if "mateName" in values and vtype != "BND":
        raise InvalidQuery("mateName", "mateName is only valid with variantType=BND")


def _check_coordinates(values: Mapping[str, Any]) -> None:
    brackets = [b for b in BRACKETS if b in values]
    is_bnd = values.get("variantType") == "BND"
    if "start" in values:
        if brackets:
            raise InvalidQuery(brackets[0], f"start cannot be combined with {brackets[0]}")
        if "end" in values and values["end"] < values["start"] and not is_bnd:
            raise InvalidQuery("end", "end must be greater than or equal to start")
        return
    if "end" in values:
        raise InvalidQuery("start", "end requires start")
    if not brackets:
        raise InvalidQuery("start", "Missing mandatory parameter start (or startMin, startMax, endMin, endMax)")
    needed = ("startMin", "startMax") if is_bnd and not {"endMin", "endMax"} & set(brackets) else BRACKETS
    for name in needed:
        if name not in values:
            raise InvalidQuery(name, f"Missing mandatory parameter {name}: bracket queries need {', '.join(needed)}")
    if values["startMin"] > values["startMax"]:
        raise InvalidQuery("startMin", "startMin must be less than or equal to startMax")
    if "endMin" in values and values["endMin"] > values["endMax"]:
        raise InvalidQuery("endMin", "endMin must be less than or equal to endMax")


def _dataset_ids(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidQuery("datasetIds", "datasetIds must be a list of dataset identifiers")
    if not value:
        return None
    return list(dict.fromkeys(value))


def _include(value: Any) -> str:
    if isinstance(value, bool):
        return "ALL" if value else "NONE"
    text = str(value).upper()
    text = _INCLUDE_ALIASES.get(text, text)
    if text not in ("ALL", "HIT", "MISS", "NONE"):
        raise InvalidQuery("includeDatasetResponses", "includeDatasetResponses must be ALL, HIT, MISS or NONE")
    return text
