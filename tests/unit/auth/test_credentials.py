"""The CLI token cache: per-URL entries, owner-only atomic writes, clear errors."""

import stat
from pathlib import Path

import pytest

from libs.sdk import credentials


@pytest.fixture(autouse=True)
def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEQHUB_CONFIG_DIR", str(tmp_path / "cfg"))
    for name in ("SEQHUB_TOKEN", "SEQHUB_CLIENT_ID", "SEQHUB_CLIENT_SECRET", "SEQHUB_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cfg"


def test_entries_are_per_url_and_owner_only(_config: Path) -> None:
    a = credentials.Credentials(access_token="a", expires_at=1.0, scope="s", refresh_token="r")
    credentials.save("http://one:8080/", a)
    credentials.save("http://two:8080", credentials.Credentials(access_token="b", expires_at=2.0, scope=""))
    assert credentials.load("http://one:8080") == a
    assert credentials.load("http://two:8080/").access_token == "b"  # type: ignore[union-attr]
    file = _config / "credentials.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert list(_config.iterdir()) == [file]  # no temp files left behind
    assert credentials.forget("http://one:8080") == a and credentials.load("http://one:8080") is None


def test_corrupt_cache_is_a_clear_error(_config: Path) -> None:
    _config.mkdir()
    (_config / "credentials.json").write_text("{not json")
    with pytest.raises(credentials.LoginError, match=r"credentials\.json: unreadable"):
        credentials.load()


async def test_explicit_token_wins_and_missing_login_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(credentials.LoginError, match="run `seqhub login`"):
        await credentials.get_access_token("http://127.0.0.1:1")
    monkeypatch.setenv("SEQHUB_TOKEN", "tok")
    assert await credentials.get_access_token("http://127.0.0.1:1") == "tok"


def test_auth_url_is_under_the_platform_url() -> None:
    assert credentials.auth_url("http://h:8080/") == "http://h:8080/auth"
