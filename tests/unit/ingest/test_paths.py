"""Run-relative path validation (services/ingest/paths.py)."""

import pytest

from services.ingest.paths import InvalidPath, validate_relative_path, validate_run_name


@pytest.mark.parametrize(
    "path",
    ["RunInfo.xml", "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl", "InterOp/Q Metrics.bin", "é/ü.txt"],
)
def test_valid_paths_pass_unchanged(path: str) -> None:
    assert validate_relative_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../etc/passwd", "'..'"),
        ("a/../../b", "'..'"),
        ("/etc/passwd", "relative"),
        ("C:/x", "relative"),
        ("a\\b", "backslash"),
        ("a//b", "empty"),
        ("./a", "'.'"),
        ("a/", "empty"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\u202eb", "control"),
        ("", "empty"),
        (" a", "spaces"),
        ("x" * 2000, "longer"),
    ],
)
def test_unsafe_paths_are_rejected_with_the_reason(path: str, why: str) -> None:
    with pytest.raises(InvalidPath, match=why) as err:
        validate_relative_path(path)
    assert err.value.status == 400


def test_run_name_is_one_segment() -> None:
    assert validate_run_name("240601_A00123_0042_AHXXXXXXXX") == "240601_A00123_0042_AHXXXXXXXX"
    with pytest.raises(InvalidPath):
        validate_run_name("a/b")
