"""A run's manifest: what RunInfo.xml says the folder holds, and when a run counts as complete.

The expected base-call/filter/position files come from `services.ingest.bcl.runinfo` (the
demultiplexer's reading of the run-folder formats); this module turns its errors into 400s, builds the
RunInfo summary carried by events, and holds the completeness rule. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from libs.common.errors import BadRequest
from libs.common.events import ReadSummary, RunInfoSummary

from .bcl.errors import RunInfoError
from .bcl.runinfo import RunInfo, parse_runinfo
from .models import COMPLETION_MARKERS

SAMPLE_SHEET_NAMES = ("SampleSheet.csv", "samplesheet.csv", "SampleSheet.CSV")


class InvalidRunInfo(BadRequest):
    pass


@lru_cache(maxsize=64)
def parse_run_info(xml: str) -> RunInfo:
    """RunInfo.xml → RunInfo; 400 naming the problem if malformed. Cached: a run's XML never changes."""
    try:
        return parse_runinfo(xml)
    except RunInfoError as exc:
        raise InvalidRunInfo(str(exc)) from None


def summarize(info: RunInfo, fmt: str) -> RunInfoSummary:
    lanes = info.lanes
    return RunInfoSummary(
        run_number=info.number,
        run_date=info.date.date().isoformat() if info.date else None,
        lanes=info.lane_count,
        tiles_per_lane=len(info.lane_tiles(lanes[0])) if lanes else None,
        reads=[
            ReadSummary(number=r.number, cycles=r.cycles, is_index=r.is_index, reverse_complement=r.reverse_complement)
            for r in info.reads
        ],
        basecall_format=fmt,
    )


@lru_cache(maxsize=64)
def expected_paths(xml: str, fmt: str) -> frozenset[str]:
    """Every file RunInfo.xml implies for the layout (RunInfo.xml, base calls, filters, positions).

    Completion markers are not in this set: the run's chosen marker is checked on its own.
    """
    info = parse_run_info(xml)
    try:
        files = info.expected_files(fmt, markers=())  # type: ignore[arg-type]
    except RunInfoError as exc:
        raise InvalidRunInfo(str(exc)) from None
    return frozenset(files)


def is_completion_marker(path: str) -> bool:
    return path in COMPLETION_MARKERS


def is_sample_sheet(path: str) -> bool:
    return path in SAMPLE_SHEET_NAMES


@dataclass(frozen=True)
class Progress:
    """The counters a run document keeps; enough to decide completeness without listing files."""

    expected_total: int
    expected_stored: int
    declared_pending: int
    marker_stored: bool

    @property
    def complete(self) -> bool:
        return self.marker_stored and self.expected_stored >= self.expected_total and self.declared_pending == 0

    @property
    def missing_expected(self) -> int:
        return max(0, self.expected_total - self.expected_stored)
