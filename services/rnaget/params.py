"""Parse RNAget request parameters (query string or a POST JSON body) into typed queries.

Both sources give the same `Params`: a query string's values are strings (lists comma-separated,
thresholds as a JSON array); a JSON body may also use arrays and numbers. Every problem raises
`BadRequest` naming the parameter; the spec's range rules raise 400 (start/end without chr),
501 (start > end) and 404 (start == end). No aiohttp, no pymongo.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.common.errors import BadRequest, NotAcceptable, NotFound, NotImplementedYet

from .models import MatrixFormat
from .slicing import SliceQuery, Threshold

META_FILTERS = ("version", "tags", "name", "studyID", "projectID", "units")
LIST_PARAMS = ("sampleIDList", "featureIDList", "featureNameList")
THRESHOLD_PARAMS = ("minExpression", "maxExpression")
BOUND_PARAMS = ("feature_min_value", "feature_max_value")
RANGE_PARAMS = ("chr", "start", "end")
MAX_UINT32 = 2**32 - 1


@dataclass(frozen=True)
class Params:
    """Metadata filters (AND), an optional output format and the slice."""

    filters: dict[str, str | list[str]] = field(default_factory=dict)
    format: MatrixFormat | None = None
    slice: SliceQuery = field(default_factory=SliceQuery)
    raw: dict[str, str] = field(default_factory=dict)
    """The slice and format parameters re-encoded as query-string values (for ticket URLs)."""


def parse(source: Mapping[str, Any], *, allowed: Iterable[str]) -> Params:
    """Validate ``source`` (query or JSON body) against the parameters a route ``allowed``."""
    allowed = set(allowed)
    unknown = sorted(set(source) - allowed)
    if unknown:
        raise BadRequest(
            f"unsupported parameter(s): {', '.join(unknown)}; this route accepts: {', '.join(sorted(allowed))}"
        )
    filters: dict[str, str | list[str]] = {}
    for key in META_FILTERS:
        if key in source:
            filters[key] = _string_list(source[key], key) if key == "tags" else _string(source[key], key)
    fmt = parse_format(source["format"]) if "format" in source else None
    q, raw = _slice(source)
    if fmt is not None:
        raw = {"format": fmt.value, **raw}
    return Params(filters=filters, format=fmt, slice=q, raw=raw)


def parse_format(value: Any) -> MatrixFormat:
    text = _string(value, "format").strip().lower()
    try:
        return MatrixFormat(text)
    except ValueError:
        raise NotAcceptable(f"format {text!r} is not supported; use one of: loom, tsv") from None


def _slice(source: Mapping[str, Any]) -> tuple[SliceQuery, dict[str, str]]:
    raw: dict[str, str] = {}
    lists: dict[str, tuple[str, ...] | None] = {}
    for key in LIST_PARAMS:
        lists[key] = None
        if key in source:
            values = tuple(_string_list(source[key], key))
            if not values:
                raise BadRequest(f"{key} is empty; give one or more comma-separated ids")
            lists[key] = values
            raw[key] = ",".join(values)
    thresholds: dict[str, tuple[Threshold, ...]] = {}
    for key in THRESHOLD_PARAMS:
        thresholds[key] = _thresholds(source[key], key) if key in source else ()
        if key in source:
            raw[key] = json.dumps([_threshold_json(t) for t in thresholds[key]])
    bounds = {key: _number(source[key], key) if key in source else None for key in BOUND_PARAMS}
    raw.update({k: repr(v) for k, v in bounds.items() if v is not None})
    chrom, start, end = _range(source)
    raw.update({k: str(v) for k, v in (("chr", chrom), ("start", start), ("end", end)) if v is not None})
    q = SliceQuery(
        feature_ids=lists["featureIDList"],
        feature_names=lists["featureNameList"],
        sample_ids=lists["sampleIDList"],
        min_expression=thresholds["minExpression"],
        max_expression=thresholds["maxExpression"],
        feature_min_value=bounds["feature_min_value"],
        feature_max_value=bounds["feature_max_value"],
        chrom=chrom,
        start=start,
        end=end,
    )
    return q, raw


def _range(source: Mapping[str, Any]) -> tuple[str | None, int | None, int | None]:
    chrom = _string(source["chr"], "chr").strip() if "chr" in source else None
    start = _uint(source["start"], "start") if "start" in source else None
    end = _uint(source["end"], "end") if "end" in source else None
    if chrom == "":
        raise BadRequest("chr is empty; give a reference name such as chr1")
    if (start is not None or end is not None) and chrom is None:
        raise BadRequest("start and end need chr (e.g. chr=chr1&start=100&end=200)")
    if start is not None and end is not None:
        if start > end:
            # the spec's rule, enforced by both compliance suites: start > end is "Not Implemented"
            raise NotImplementedYet(
                f"start ({start}) is greater than end ({end}); wrap-around ranges are not implemented"
            )
        if start == end:
            raise NotFound(f"start equals end ({start}): the range is empty")
    return chrom, start, end


def _string(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadRequest(f"{key} must be a string, got {type(value).__name__}")


def _string_list(value: Any, key: str) -> list[str]:
    if isinstance(value, list):
        items = [_string(v, key) for v in value]
    else:
        # ids may contain spaces (e.g. "DO22935 - primary tumour"): split on commas only
        items = _string(value, key).split(",")
    out = [v.strip() for v in items]
    if any(not v for v in out):
        raise BadRequest(f"{key} has an empty item: {value!r}")
    return out


def _number(value: Any, key: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise BadRequest(f"{key} must be a finite number, got {value!r}")
    return number


def _uint(value: Any, key: str) -> int:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) > MAX_UINT32:
        raise BadRequest(f"{key} must be an unsigned 32-bit integer, got {value!r}")
    return int(text)


def _thresholds(value: Any, key: str) -> tuple[Threshold, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadRequest(
                f"{key} must be a JSON array of {{threshold, featureID|featureName}} objects, "
                f'e.g. [{{"threshold": 10, "featureName": "TP53"}}]'
            ) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{key} must be a non-empty array of threshold objects")
    return tuple(_threshold(item, f"{key}[{i}]") for i, item in enumerate(value))


def _threshold(item: Any, where: str) -> Threshold:
    if not isinstance(item, dict) or "threshold" not in item:
        raise BadRequest(f"{where} must be an object with a numeric 'threshold'")
    extra = set(item) - {"threshold", "featureID", "featureName"}
    if extra:
        raise BadRequest(f"{where} has unknown field(s): {', '.join(sorted(extra))}")
    if "featureID" in item and "featureName" in item:
        raise BadRequest(f"{where} gives both featureID and featureName; give one")
    fid = _string(item["featureID"], where + ".featureID") if "featureID" in item else None
    fname = _string(item["featureName"], where + ".featureName") if "featureName" in item else None
    return Threshold(_number(item["threshold"], where + ".threshold"), feature_id=fid, feature_name=fname)


def _threshold_json(t: Threshold) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold": t.threshold}
    if t.feature_id is not None:
        out["featureID"] = t.feature_id
    if t.feature_name is not None:
        out["featureName"] = t.feature_name
    return out
