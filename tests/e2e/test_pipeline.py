"""The whole pipeline, end to end (issue 9): an instrument run goes in, Beacon and RNAget answers come out.

The simulator writes a run while `seqhub upload run --watch` (the real CLI) streams it to ingest → RunUploaded →
demultiplexed FASTQ → SamplesDemultiplexed → Study/Sample/Experiment/Run in the repository → a VCF and an
expression matrix submitted as analyses (multipart/mixed) → AnalysisPublished → a Beacon HIT and MISS, an RNAget
slice — all with tokens from the auth service (bootstrap admin → clients → client_credentials). The flow
(`services.demo.Pipeline`) waits through HTTP only; the checks (`pipeline.check_outcome`) read every result back.

Three ways: each service its own process on RabbitMQ; the same with one service SIGKILLed at a seeded random point
and restarted (SEQHUB_E2E_SEED=N reproduces a failure); the embedded platform (`make run`'s configuration).
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from services import platform
from services.demo import Endpoints, Pipeline, embedded_platform

from .pipeline import (
    ADMIN_ID,
    ADMIN_SECRET,
    SIZES,
    check_events_once,
    check_outcome,
    dead_letters,
    distributed,
    publish_garbage,
    wait_ready,
)

pytestmark = pytest.mark.e2e
STEPS = ("upload", "demultiplex", "register", "submit", "beacon", "rnaget")


def _endpoints(cluster: platform.Distributed) -> Endpoints:
    return Endpoints({name: cluster.url(name) for name in platform.SERVICE_NAMES})


def _endpoints_of(cluster: platform.Distributed, ports: dict[str, int]) -> Endpoints:
    return Endpoints({name: cluster.url(name) for name in ports})


def test_pipeline_across_service_processes(mongo_url: str, amqp_url: str, tmp_path: Path) -> None:
    with distributed(mongo_url, amqp_url, tmp_path) as cluster:
        pipeline = Pipeline(_endpoints(cluster), ADMIN_ID, ADMIN_SECRET, tmp_path / "work", timeout=90)
        pipeline.work_dir.mkdir()
        result = pipeline.run_all(**SIZES)
        check_outcome(pipeline, result)
        assert pipeline.server_errors == []
        check_events_once(cluster.env)
        assert dead_letters(cluster.env) == []
        # control: the same check does see this cluster's dead-letter queues
        publish_garbage(cluster.env, "repository.analysis.published")
        deadline = time.monotonic() + 30
        while not (letters := dead_letters(cluster.env)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert {d["queue"] for d in letters} == {"beacon.analyses", "rnaget.analyses"}, letters


def test_pipeline_survives_a_service_killed_midway(mongo_url: str, amqp_url: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("SEQHUB_E2E_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    victim, step, delay = rng.choice(platform.SERVICE_NAMES), rng.choice(STEPS), rng.uniform(0, 1.5)
    print(f"SEQHUB_E2E_SEED={seed}: SIGKILL {victim} {delay:.2f}s into step {step!r}, then restart it")
    killed = threading.Event()
    failures: list[BaseException] = []

    with distributed(mongo_url, amqp_url, tmp_path) as cluster:

        def kill_and_restart() -> None:
            try:
                time.sleep(delay)
                port = cluster.ports[victim]
                cluster.kill(victim)
                killed.set()
                time.sleep(0.5)
                cluster.start(victim, port)
            except BaseException as exc:
                failures.append(exc)

        killer = threading.Thread(target=kill_and_restart, name="killer")

        def on_step(name: str, detail: str) -> None:
            if name == step and not killer.is_alive() and not killed.is_set() and not failures:
                killer.start()

        pipeline = Pipeline(
            _endpoints(cluster), ADMIN_ID, ADMIN_SECRET, tmp_path / "work", on_step=on_step, timeout=120
        )
        pipeline.work_dir.mkdir()
        result = pipeline.run_all(**SIZES)
        killer.join(30)
        assert not failures, failures
        assert killed.is_set(), f"the flow ended before {victim} could be killed"
        assert cluster.processes[victim].poll() is None, f"{victim} did not come back"
        wait_ready(f"{cluster.url(victim)}/readyz")
        check_outcome(pipeline, result)
        print("5xx answers seen while a service was down or restarting:", *pipeline.server_errors, sep="\n  ")
        check_events_once(cluster.env)
        assert dead_letters(cluster.env) == []


def test_pipeline_on_the_embedded_platform(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    with embedded_platform(tmp_path / "var", admin_id=ADMIN_ID, admin_secret=ADMIN_SECRET) as base:
        pipeline = Pipeline(Endpoints.single(base), ADMIN_ID, ADMIN_SECRET, tmp_path / "work", timeout=90)
        pipeline.work_dir.mkdir()
        result = pipeline.run_all(**SIZES)
        check_outcome(pipeline, result)
        assert pipeline.server_errors == []
