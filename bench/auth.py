"""Auth costs, each next to a baseline measured in the same run (machines are noisy; compare the ratios).

  .venv/bin/python bench/auth.py [--seconds S] [--concurrency C] [--mongo-url URL]

1. issuance: client-credentials tokens per second through the real HTTP token endpoint (auth service on
   127.0.0.1, MongoDB-wire server: secantusdb unless --mongo-url), vs the baseline: a bare joserfc ES256
   sign loop (the one signature every issuance needs).
2. verification: µs per `libs.common.auth.TokenVerifier.verify` (cached JWKS), vs the baseline: a bare
   joserfc `jwt.decode` of the same token.
3. overhead on a minimal request: requests/s of a trivial aiohttp handler behind libs/common's auth
   middleware, with a bearer token vs anonymous (same app, same run) — the cost verification adds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common import keys as common_keys
from libs.common.auth import TokenVerifier
from libs.common.config import CommonSettings
from libs.common.testing import TokenMinter
from libs.common.web import auth_middleware
from services import platform
from services.auth.app import create_app
from services.auth.settings import AuthSettings


def _rate(fn: Any, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


async def _http_rate(http: aiohttp.ClientSession, seconds: float, concurrency: int, request: Any) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with request(http) as r:
                assert r.status == 200, (r.status, await r.text())
                await r.read()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def issuance(mongo_url: str, seconds: float, concurrency: int) -> tuple[float, float]:
    port = platform.free_port()
    issuer = f"http://127.0.0.1:{port}/auth"
    tmp = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    common = CommonSettings(
        mongo_url=mongo_url,
        db_prefix=f"bench{os.getpid()}_",
        files_root=tmp / "f",
        data_root=tmp / "d",
        auth_issuer=issuer,
        log_json=False,
        log_level="WARNING",
    )
    settings = AuthSettings(
        common=common,
        bootstrap_client_id="bench",
        bootstrap_client_secret="bench-secret-0123456789",
        token_rate=1e9,
        token_burst=10**9,
    )
    root = web.Application()
    root.add_subapp("/auth", create_app(settings))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        auth_header = {"Authorization": aiohttp.encode_basic_auth("bench", "bench-secret-0123456789")}
        async with aiohttp.ClientSession() as http:

            def request(h: aiohttp.ClientSession) -> Any:
                return h.post(
                    issuer + "/token",
                    data={"grant_type": "client_credentials", "scope": "repository:read"},
                    headers=auth_header,
                )

            await _http_rate(http, 0.5, concurrency, request)  # warm-up
            tokens_per_s = await _http_rate(http, seconds, concurrency, request)
        from services.auth.signing import KeyRing, SigningKey

        bare_ring = KeyRing([SigningKey.generate(now=0)])
        claims = {
            "iss": issuer,
            "sub": "bench",
            "aud": "seqhub",
            "exp": 2**31,
            "iat": 0,
            "jti": "x",
            "client_id": "bench",
            "scope": "repository:read",
        }
        signs_per_s = _rate(lambda: bare_ring.sign(claims), seconds)
    finally:
        await runner.cleanup()
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        for name in await client.list_database_names():
            if name.startswith(common.db_prefix):
                await client.drop_database(name)
        await client.close()
    return tokens_per_s, signs_per_s


async def verification(seconds: float) -> tuple[float, float]:
    minter = TokenMinter()
    token = minter.mint("bench", "repository:read")
    settings = CommonSettings(auth_jwks=minter.jwks, auth_issuer=minter.issuer, auth_audience=minter.audience)
    verifier = UncachedTokenVerifier(settings.auth)
    keyset = KeySet.import_key_set(minter.jwks)  # type: ignore[arg-type]
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        await verifier.verify(token)
        n += 1
    verify_us = (time.perf_counter() - start) / n * 1e6
    bare_us = 1e6 / _rate(lambda: jwt.decode(token, keyset, algorithms=["ES256"]), seconds)
    return verify_us, bare_us


class UncachedTokenVerifier(TokenVerifier):
    """TokenVerifier without its verified-token cache: every call pays the full signature and claims check
    (what a token seen for the first time costs)."""

    async def verify(self, token: str) -> Any:
        return await self._verify(token)


async def _serve(verifier: TokenVerifier) -> tuple[str, web.AppRunner]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[auth_middleware])
    app[common_keys.verifier] = verifier
    app.router.add_get("/", hello)
    port = platform.free_port()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}/", runner


async def request_overhead(seconds: float, concurrency: int, rounds: int = 10) -> dict[str, float]:
    """Median req/s of a trivial handler: anonymous, bearer verified on every request (UncachedTokenVerifier),
    bearer through libs/common's TokenVerifier (verified once, then remembered until expiry),
    measured in alternating short rounds so the machine's noise hits all three alike; plus the median of the
    per-round ratios."""
    minter = TokenMinter()
    settings = CommonSettings(auth_jwks=minter.jwks, auth_issuer=minter.issuer, auth_audience=minter.audience)
    plain_url, plain = await _serve(UncachedTokenVerifier(settings.auth))
    cached_url, cached = await _serve(TokenVerifier(settings.auth))
    bearer = {"Authorization": f"Bearer {minter.mint('bench', 'repository:read', expires_in=3600)}"}
    runs: dict[str, list[float]] = {"anonymous": [], "bearer": [], "cached": []}
    try:
        async with aiohttp.ClientSession() as http:
            await _http_rate(http, 0.5, concurrency, lambda h: h.get(plain_url))
            for _ in range(rounds):
                step = seconds / rounds
                runs["anonymous"].append(await _http_rate(http, step, concurrency, lambda h: h.get(plain_url)))
                runs["bearer"].append(
                    await _http_rate(http, step, concurrency, lambda h: h.get(plain_url, headers=bearer))
                )
                runs["cached"].append(
                    await _http_rate(http, step, concurrency, lambda h: h.get(cached_url, headers=bearer))
                )
    finally:
        await plain.cleanup()
        await cached.cleanup()
    result = {k: statistics.median(v) for k, v in runs.items()}
    result["bearer_overhead"] = statistics.median(
        a / b - 1 for a, b in zip(runs["anonymous"], runs["bearer"], strict=True)
    )
    result["cached_overhead"] = statistics.median(
        a / b - 1 for a, b in zip(runs["anonymous"], runs["cached"], strict=True)
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mongo-url", default=None, help="default: a temporary secantusdb server")
    args = parser.parse_args()
    process = None
    mongo_url = args.mongo_url
    if mongo_url is None:
        mongo_url = f"mongodb://127.0.0.1:{platform.free_port()}/"
        process = platform.start_database(mongo_url, ":memory:")
    try:
        tokens, signs = await issuance(mongo_url, args.seconds, args.concurrency)
    finally:
        if process is not None:
            process.terminate()
            process.wait(20)
    verify_us, bare_us = await verification(args.seconds)
    overhead = await request_overhead(args.seconds * 2, args.concurrency)
    print(
        f"issuance: {tokens:,.0f} client-credentials tokens/s over HTTP (concurrency {args.concurrency}); "
        f"baseline bare ES256 sign {signs:,.0f}/s; ratio {tokens / signs:.3f}"
    )
    print(
        f"verification: {verify_us:,.1f} µs per full token check (first sight; cached JWKS); baseline bare joserfc "
        f"decode {bare_us:,.1f} µs; ratio {verify_us / bare_us:.2f}"
    )
    print(
        f"minimal request (median of alternating rounds): anonymous {overhead['anonymous']:,.0f} req/s; "
        f"bearer checked on every request {overhead['bearer']:,.0f} req/s -> adds "
        f"{overhead['bearer_overhead'] * 100:.1f}%; bearer through TokenVerifier (verified-token cache) "
        f"{overhead['cached']:,.0f} req/s -> "
        f"adds {overhead['cached_overhead'] * 100:.1f}%"
    )


if __name__ == "__main__":
    asyncio.run(main())
