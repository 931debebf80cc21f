"""Password hashing and opaque token handling."""

from services.auth import hashing as sec


def test_password_round_trip_and_mismatch() -> None:
    stored = sec.hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert sec.verify_password(stored, "correct horse")
    assert not sec.verify_password(stored, "wrong")


def test_unknown_user_never_verifies() -> None:
    assert not sec.verify_password(None, "seqhub-dummy-password-for-timing")


def test_tokens_are_unique_prefixed_and_stored_as_digest() -> None:
    a, b = sec.new_token(sec.PAT_PREFIX), sec.new_token(sec.PAT_PREFIX)
    assert a != b and a.startswith("shp_") and len(a) == 4 + 43
    assert sec.matches(a, sec.digest(a)) and not sec.matches(b, sec.digest(a))
    assert a not in sec.digest(a)


def test_user_codes_are_normalised() -> None:
    code = sec.new_user_code()
    assert len(code) == 9 and code[4] == "-"
    assert sec.normalise_user_code(code.lower().replace("-", " ")) == code
