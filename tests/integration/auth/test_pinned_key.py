"""An operator's pinned signing key (SEQHUB_AUTH_SIGNING_KEY_FILE, a mounted Kubernetes secret): tokens are
signed with it, it is rotated in once without invalidating tokens already issued, and a bad file stops the
service at start instead of letting it sign with a key nobody chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from libs.common.config import CommonSettings
from services.auth import keys
from services.auth.signing import SigningKey
from tests.integration.auth.conftest import ADMIN_CLIENT, LiveAuth, serve_auth


def _write_key(path: Path) -> ECKey:
    private = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ECKey.import_key(public)


async def _jwks_kids(live: LiveAuth) -> list[str]:
    async with live.http.get(live.issuer + "/.well-known/jwks.json") as r:
        return [k["kid"] for k in (await r.json())["keys"]]


async def test_a_fresh_platform_signs_with_the_pinned_key(common_settings: CommonSettings, tmp_path: Path) -> None:
    public = _write_key(tmp_path / "signing-key.pem")
    async with serve_auth(common_settings, signing_key_file=tmp_path / "signing-key.pem") as live:
        assert await _jwks_kids(live) == [public.thumbprint()]
        claims = jwt.decode(live.admin_token, public, algorithms=["ES256"]).claims
        assert claims["client_id"] == "admin-bootstrap"


async def test_the_pinned_key_is_rotated_in_once(common_settings: CommonSettings, tmp_path: Path) -> None:
    async with serve_auth(common_settings) as before:
        (generated,) = await _jwks_kids(before)
        old_token = before.admin_token
    public = _write_key(tmp_path / "signing-key.pem")
    stored: list[dict[str, SigningKey]] = []
    for _restart in range(2):  # the second start finds the key stored and changes nothing
        async with serve_auth(
            common_settings, signing_key_file=tmp_path / "signing-key.pem", key_prepublish_seconds=0
        ) as live:
            assert sorted(await _jwks_kids(live)) == sorted([generated, public.thumbprint()])
            assert jwt.decode(live.admin_token, public, algorithms=["ES256"]).claims["client_id"] == "admin-bootstrap"
            async with live.http.get(live.issuer + "/.well-known/jwks.json") as r:
                published = KeySet.import_key_set(await r.json())
            # tokens issued under the generated key still verify against what the service publishes
            assert jwt.decode(old_token, published, algorithms=["ES256"]).claims["client_id"] == ADMIN_CLIENT
            stored.append({k.kid: k for k in live.app[keys.accounts].keys.ring.keys})
    assert stored[0] == stored[1]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file"), (b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", "not a PEM")],
)
def test_a_missing_or_bad_key_file_stops_the_service_with_the_reason(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "signing-key.pem"
    if content is not None:
        path.write_bytes(content)
    env = {**os.environ, "SEQHUB_AUTH_SIGNING_KEY_FILE": str(path), "SEQHUB_MONGO_URL": "mongodb://127.0.0.1:9/"}
    done = subprocess.run(
        [sys.executable, "-m", "services.auth"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"seqhub: invalid setting SEQHUB_AUTH_SIGNING_KEY_FILE: Value error, {path}: ")
    assert reason in done.stderr and "Traceback" not in done.stderr and "garbage" not in done.stderr
