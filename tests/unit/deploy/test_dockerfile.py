"""The image recipe, checked without a Docker engine: hadolint and checkov's Dockerfile policies,
the stage layout we rely on, the build context, and the HEALTHCHECK script against a real HTTP server."""

from __future__ import annotations

import http.server
import importlib.util
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .tooling import REPO, run, tool

DOCKERFILE = REPO / "Dockerfile"


def _stages() -> list[list[str]]:
    """Instructions (continuation lines joined) per stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_is_clean() -> None:
    proc = run([tool("hadolint"), "--no-color", str(DOCKERFILE)], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nRUN cd /app\n")
    proc = run([tool("hadolint"), "--no-color", str(bad)], timeout=60)
    assert proc.returncode == 1
    assert "DL3007" in proc.stdout  # latest tag
    assert "DL3008" in proc.stdout  # unpinned apt package


def test_checkov_dockerfile_checks_pass() -> None:
    proc = run(
        [
            tool("checkov"),
            "-f",
            str(DOCKERFILE),
            "--framework",
            "dockerfile",
            "--skip-download",
            "--compact",
            "--quiet",
        ],
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_final_stage_is_slim_non_root_with_healthcheck_and_no_build_inputs() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage build expected"
    final = stages[-1]
    assert re.match(r"FROM python:3\.11-slim", final[0])
    assert all(s[0].split()[1] == final[0].split()[1] for s in stages), "stages must share one base"
    user = [i for i in final if i.upper().startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in {"0", "root"}
    assert any(i.upper().startswith("HEALTHCHECK ") for i in final)
    final_text = "\n".join(final)
    # no compilers or package installs in the runtime stage, no tests or source tree copied in
    assert not re.search(r"apt-get install|apk add|gcc|build-essential|pip install", final_text)
    copies = [i for i in final if i.upper().startswith("COPY ")]
    assert all("--from=build" in c or "healthcheck.py" in c for c in copies), copies
    assert "tests" not in final_text
    assert re.search(r'CMD \["python", "-m", "services"\]', final_text)


def test_build_context_is_an_allow_list_without_tests_or_venvs() -> None:
    lines = [
        ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "libs", "services", "deploy/docker/healthcheck.py"}
    # everything the Dockerfile COPYs from the context is allowed in
    for stage in _stages():
        for instr in stage:
            if instr.upper().startswith("COPY ") and "--from=" not in instr:
                for src in instr.split()[1:-1]:
                    assert src.rstrip("/") in allowed, src


# --- the HEALTHCHECK script ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seqhub_healthcheck", REPO / "deploy" / "docker" / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "service"),
    [
        (["python", "-m", "services.beacon"], "beacon"),
        (["/opt/seqhub/bin/python", "-mservices.rnaget", "--ensure-indexes"], "rnaget"),
        (["python", "-m", "services"], "embedded"),
        (["python", "-m", "services.nope"], None),
        (["python", "app.py"], None),
        ([], None),
    ],
)
def test_service_is_read_from_the_command_line(
    healthcheck: ModuleType,
    argv: list[str],
    service: str | None,
) -> None:
    assert healthcheck.service_from_argv(argv) == service


def test_health_url_from_env_and_argv(healthcheck: ModuleType) -> None:
    assert healthcheck.health_url({}, ["python", "-m", "services.ingest"]) == "http://127.0.0.1:8080/ingest/healthz"
    assert healthcheck.health_url({"SEQHUB_HTTP_PORT": "9000"}, ["python", "-m", "services"]) == (
        "http://127.0.0.1:9000/auth/healthz"
    )
    assert healthcheck.health_url({"SEQHUB_HEALTHCHECK_PATH": "/x/healthz"}, []) == "http://127.0.0.1:8080/x/healthz"
    with pytest.raises(ValueError, match="SEQHUB_HEALTHCHECK_PATH"):
        healthcheck.health_url({}, ["python", "app.py"])
    with pytest.raises(ValueError, match="not a TCP port"):
        healthcheck.health_url({"SEQHUB_HTTP_PORT": "http"}, ["python", "-m", "services.auth"])


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/beacon/healthz" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_healthcheck_exit_status_against_a_real_server(
    healthcheck: ModuleType, server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQHUB_HTTP_PORT", str(server))
    monkeypatch.delenv("SEQHUB_HEALTHCHECK_PATH", raising=False)
    assert healthcheck.main(["python", "-m", "services.beacon"]) == 0
    assert healthcheck.main(["python", "-m", "services.rnaget"]) == 1  # answers 503
    assert healthcheck.main(["python", "app.py"]) == 1  # cannot tell the service


def test_healthcheck_fails_when_nothing_listens(healthcheck: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SEQHUB_HTTP_PORT", str(port))
    healthy, reason = healthcheck.probe(f"http://127.0.0.1:{port}/auth/healthz", timeout=1.0)
    assert not healthy and "unreachable" in reason


def test_healthcheck_rejects_a_non_http_answer(healthcheck: ModuleType) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        healthy, reason = healthcheck.probe(f"http://127.0.0.1:{port}/auth/healthz", timeout=2.0)
        thread.join(timeout=5)
    assert not healthy and "not HTTP" in reason
