"""tus header parsing and validation (services/ingest/tus.py)."""

import base64
import hashlib
import zlib
from datetime import UTC, datetime

import pytest

from services.ingest import tus
from services.ingest.uploads import parse_expected_checksum


def test_metadata_round_trip_keeps_unicode_and_empty_values() -> None:
    meta = {
        "run_id": "r1",
        "path": "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl",
        "flag": "",
        "név": "é",
    }
    assert tus.parse_metadata(tus.encode_metadata(meta)) == meta


@pytest.mark.parametrize(
    "raw",
    ["a b c", "a !!!", "a YQ==,a YQ==", " ,", "a\tYQ=="],
)
def test_malformed_metadata_is_a_400(raw: str) -> None:
    with pytest.raises(tus.TusBadRequest) as err:
        tus.parse_metadata(raw)
    assert err.value.status == 400
    assert err.value.headers["Tus-Resumable"] == "1.0.0"


def test_offset_and_length_must_be_non_negative_integers() -> None:
    assert tus.parse_offset({"Upload-Offset": "42"}) == 42
    assert tus.parse_length({}) is None
    for bad in ("-1", "1.5", "", "0x10", "99999999999999999999"):
        with pytest.raises(tus.TusBadRequest, match="Upload-Offset"):
            tus.parse_offset({"Upload-Offset": bad})
    with pytest.raises(tus.TusBadRequest, match="required"):
        tus.parse_offset({})


def test_version_other_than_1_0_0_is_412_with_tus_version() -> None:
    tus.require_version({"Tus-Resumable": "1.0.0"})
    with pytest.raises(tus.TusVersionUnsupported) as err:
        tus.require_version({"Tus-Resumable": "0.2.2"})
    assert err.value.status == 412
    assert err.value.headers["Tus-Version"] == "1.0.0"
    with pytest.raises(tus.TusVersionUnsupported):
        tus.require_version({})


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "crc32"])
def test_checksum_parses_supported_algorithms(algorithm: str) -> None:
    digest = zlib.crc32(b"abc").to_bytes(4, "big") if algorithm == "crc32" else hashlib.new(algorithm, b"abc").digest()
    parsed = tus.parse_checksum({"Upload-Checksum": f"{algorithm} {base64.b64encode(digest).decode()}"})
    assert parsed is not None and parsed.digest == digest and parsed.algorithm == algorithm


def test_checksum_rejects_unknown_algorithm_and_bad_digest() -> None:
    with pytest.raises(tus.TusBadRequest, match="not supported"):
        tus.parse_checksum({"Upload-Checksum": "sha512 " + base64.b64encode(bytes(64)).decode()})
    with pytest.raises(tus.TusBadRequest, match="wrong length"):
        tus.parse_checksum({"Upload-Checksum": "sha1 " + base64.b64encode(b"short").decode()})
    with pytest.raises(tus.TusBadRequest, match="wrong length"):
        tus.parse_checksum({"Upload-Checksum": "crc32 " + base64.b64encode(bytes(20)).decode()})
    with pytest.raises(tus.TusBadRequest, match="base64"):
        tus.parse_checksum({"Upload-Checksum": "sha1 ***"})


def test_defer_length_only_accepts_1() -> None:
    assert tus.parse_defer_length({"Upload-Defer-Length": "1"}) is True
    assert tus.parse_defer_length({}) is False
    with pytest.raises(tus.TusBadRequest):
        tus.parse_defer_length({"Upload-Defer-Length": "0"})


def test_concat_final_lists_upload_ids_in_order() -> None:
    a, b = "a" * 32, "0123456789abcdef" * 2
    parsed = tus.parse_concat({"Upload-Concat": f"final;/ingest/files/{a} http://h/ingest/files/{b}"})
    assert parsed == tus.Concat(final=True, parts=(a, b))
    assert tus.parse_concat({"Upload-Concat": "partial"}) == tus.Concat(final=False)
    with pytest.raises(tus.TusBadRequest):
        tus.parse_concat({"Upload-Concat": "final;"})
    with pytest.raises(tus.TusBadRequest):
        tus.parse_concat({"Upload-Concat": "final;/ingest/files/../../etc"})


def test_content_type_must_be_offset_octet_stream() -> None:
    tus.require_offset_content_type({"Content-Type": "application/offset+octet-stream"})
    with pytest.raises(tus.TusWrongContentType) as err:
        tus.require_offset_content_type({"Content-Type": "application/json"})
    assert err.value.status == 415


def test_expires_is_an_http_date() -> None:
    assert tus.format_expires(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "Fri, 02 Jan 2026 03:04:05 GMT"


def test_offset_mismatch_tells_the_expected_offset() -> None:
    err = tus.OffsetMismatch(expected=10, provided=3)
    assert err.status == 409 and err.headers["Upload-Offset"] == "10"


def test_options_advertise_extensions_and_algorithms() -> None:
    headers = tus.options_headers(1000)
    assert set(headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "md5", "sha256", "crc32"}
    assert set(headers["Tus-Extension"].split(",")) >= {"creation", "checksum", "concatenation", "expiration"}


def test_whole_file_checksum_in_metadata_must_be_a_hash_not_crc32() -> None:
    # crc32 guards one request's bytes in transit; a whole file is checked end to end by sha256, sha1 or md5
    with pytest.raises(tus.TusBadRequest, match="checksum must be"):
        parse_expected_checksum("crc32 " + zlib.crc32(b"abc").to_bytes(4, "big").hex())
    digest = hashlib.sha256(b"abc").hexdigest()
    assert parse_expected_checksum(f"sha256 {digest}") == ("sha256", digest)
