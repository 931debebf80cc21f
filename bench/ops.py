"""Operations costs: the container HEALTHCHECK and the offline validation steps, each against a baseline
measured in the same run (machines are noisy; compare the ratios).

  .venv/bin/python bench/ops.py [--rounds N]

- healthcheck: `python deploy/docker/healthcheck.py` against a live aiohttp /healthz on 127.0.0.1, vs the
  baseline `python -c pass` (interpreter start-up). Docker runs it every 30 s in every container.
- kustomize: `kubectl kustomize overlays/prod`, vs the same baseline.
- kubernetes-validate: strict validation of each built-in object of the prod overlay (in-process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], rounds: int, env: dict[str, str] | None = None) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def serve_healthz() -> tuple[int, web.AppRunner, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/beacon/healthz", healthz)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return int(port), runner, loop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    baseline = timed([sys.executable, "-c", "pass"], args.rounds)
    print(f"baseline python -c pass     {baseline * 1000:8.1f} ms")

    port, runner, loop = serve_healthz()
    env = {**os.environ, "SEQHUB_HTTP_PORT": str(port), "SEQHUB_HEALTHCHECK_PATH": "/beacon/healthz"}
    health = timed([sys.executable, str(REPO / "deploy/docker/healthcheck.py")], args.rounds, env)
    print(f"healthcheck (live /healthz)    {health * 1000:8.1f} ms   ratio {health / baseline:5.2f}x")
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)

    overlay = str(REPO / "deploy/k8s/overlays/prod")
    render = timed(["kubectl", "kustomize", overlay], args.rounds)
    print(f"kustomize overlays/prod        {render * 1000:8.1f} ms   ratio {render / baseline:5.2f}x")

    import kubernetes_validate

    docs = [
        d
        for d in yaml.safe_load_all(
            subprocess.run(
                ["kubectl", "kustomize", overlay], check=True, capture_output=True, text=True
            ).stdout
        )
        if d
    ]
    builtin = [
        d
        for d in docs
        if "." not in d["apiVersion"].split("/")[0]
        or d["apiVersion"].startswith(("apps/", "batch/", "policy/", "autoscaling/", "networking.k8s.io/"))
    ]
    start = time.perf_counter()
    for doc in builtin:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    per_object = (time.perf_counter() - start) / len(builtin)
    print(
        f"kubernetes-validate strict, per object ({len(builtin)}) {per_object * 1000:8.1f} ms   "
        f"ratio {per_object / baseline:5.2f}x"
    )


if __name__ == "__main__":
    main()
