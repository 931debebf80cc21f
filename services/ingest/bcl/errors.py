"""Domain errors of run-folder parsing and demultiplexing.

Every error names the file (relative to the run folder when known) and the problem, so the CLI
can print it as is and the worker can put it into DemultiplexingFailed.reason.
"""

from __future__ import annotations

from pathlib import Path


class DemuxError(Exception):
    """Base class: something about the input prevents conversion."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class RunFolderError(DemuxError):
    """The run folder is incomplete or inconsistent (missing cycles, tiles, files)."""


class RunInfoError(DemuxError):
    """RunInfo.xml / RunParameters.xml cannot be parsed or is inconsistent."""


class BaseCallFileError(DemuxError):
    """A BCL, CBCL, filter or position file is truncated, corrupt or inconsistent."""


class SampleSheetError(DemuxError):
    """The sample sheet is malformed, or does not fit the run."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None) -> None:
        self.line = line
        if line is not None:
            message = f"line {line}: {message}"
        super().__init__(message, path=path)


class BarcodeCollisionError(SampleSheetError):
    """Two samples of a lane are too close to be told apart at the chosen mismatch tolerance."""


class OutputError(DemuxError):
    """The output directory cannot be used (e.g. already exists and is not empty)."""
