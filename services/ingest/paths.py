"""Validation of run-relative file paths sent by clients (Upload-Metadata `path`, declared manifests).

A path names a file inside one run folder: POSIX separators, no `..` or `.` segments, not absolute, no
drive letters, no control characters or backslashes, bounded length. The result is the normalised
path used as the file-store key suffix. Pure; no I/O.
"""

from __future__ import annotations

import unicodedata

from libs.common.errors import BadRequest

MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255
MAX_DEPTH = 32


class InvalidPath(BadRequest):
    pass


def validate_relative_path(raw: str, *, field: str = "path") -> str:
    """Return `raw` as a safe run-relative POSIX path, or raise InvalidPath naming the problem."""
    if not raw:
        raise InvalidPath(f"{field} is empty")
    if len(raw) > MAX_PATH_LENGTH:
        raise InvalidPath(f"{field} is longer than {MAX_PATH_LENGTH} characters")
    for ch in raw:
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}:
            raise InvalidPath(f"{field} contains a control character (U+{ord(ch):04X})")
    if "\\" in raw:
        raise InvalidPath(f"{field} must use '/' separators, got a backslash in {raw!r}")
    if raw.startswith("/") or (len(raw) >= 2 and raw[1] == ":"):
        raise InvalidPath(f"{field} must be relative to the run folder, got {raw!r}")
    segments = raw.split("/")
    if len(segments) > MAX_DEPTH:
        raise InvalidPath(f"{field} is nested deeper than {MAX_DEPTH} folders")
    for segment in segments:
        if segment in {"", ".", ".."}:
            raise InvalidPath(f"{field} has an empty, '.' or '..' segment: {raw!r}")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidPath(f"{field} has a segment longer than {MAX_SEGMENT_LENGTH} characters")
        if segment.strip() != segment:
            raise InvalidPath(f"{field} has a segment with leading or trailing spaces: {raw!r}")
    return raw


def validate_run_name(raw: str) -> str:
    """A run folder name is a single path segment (e.g. 240601_A00123_0042_AHXXXXXXXX)."""
    name = validate_relative_path(raw, field="run name")
    if "/" in name:
        raise InvalidPath(f"run name must be one folder name, got {raw!r}")
    return name
