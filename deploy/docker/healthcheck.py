"""Container HEALTHCHECK for the seqhub image (stdlib only, no curl in the slim image).

Every service listens on ``SEQHUB_HTTP_PORT`` (default 8080) and serves its liveness probe at
``/<prefix>/healthz``. The image is the same for all services, so the health path is taken from
``SEQHUB_HEALTHCHECK_PATH`` when set, otherwise derived from PID 1's command line
(``python -m services.beacon`` -> ``/beacon/healthz``; the embedded ``python -m services``
serves every prefix, ``/auth/healthz`` is checked).

Exit status follows Docker's convention: 0 healthy, 1 unhealthy.
Kubernetes does not use this (it has its own probes); it is for ``docker run`` and compose.

The probe is a plain HTTP/1.0 GET over a socket: importing urllib.request (ssl, email, ...) costs more
than the request itself, and Docker runs this every 30 s in every container (bench/ops.py).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

SERVICES = ("auth", "ingest", "repository", "beacon", "rnaget")
DEFAULT_PORT = 8080
TIMEOUT_SECONDS = 2.0


def service_from_argv(argv: Sequence[str]) -> str | None:
    """The service a ``python -m services[.<name>]`` command line starts, ``"embedded"`` or None."""
    for i, arg in enumerate(argv):
        module = None
        if arg == "-m" and i + 1 < len(argv):
            module = argv[i + 1]
        elif arg.startswith("-m") and len(arg) > 2:
            module = arg[2:]
        if module is None:
            continue
        if module == "services":
            return "embedded"
        parts = module.split(".")
        if len(parts) == 2 and parts[0] == "services" and parts[1] in SERVICES:
            return parts[1]
    return None


def health_url(env: Mapping[str, str], argv: Sequence[str]) -> str:
    """The URL to probe, from the environment and the main process' argv."""
    port_text = env.get("SEQHUB_HTTP_PORT", str(DEFAULT_PORT))
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"SEQHUB_HTTP_PORT={port_text!r} is not a TCP port")
    path = env.get("SEQHUB_HEALTHCHECK_PATH")
    if not path:
        service = service_from_argv(argv)
        if service is None:
            raise ValueError(
                "cannot tell which service runs (PID 1 is not 'python -m services[.<name>]'); "
                "set SEQHUB_HEALTHCHECK_PATH"
            )
        path = "/auth/healthz" if service == "embedded" else f"/{service}/healthz"
    if not path.startswith("/"):
        raise ValueError(f"SEQHUB_HEALTHCHECK_PATH={path!r} must start with '/'")
    return f"http://127.0.0.1:{int(port_text)}{path}"


def read_pid1_argv(proc_cmdline: str = "/proc/1/cmdline") -> list[str]:
    try:
        with open(proc_cmdline, "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def probe(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    """(healthy, one-line reason). Healthy means the server answered status 200."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"GET {parts.path or '/'} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request.encode("ascii"))
            status_line = sock.makefile("rb").readline(256)
    except OSError as exc:
        return False, f"{url} unreachable: {exc}"
    fields = status_line.split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        return False, f"{url} answered something that is not HTTP: {status_line[:80]!r}"
    status = int(fields[1])
    if status != 200:
        return False, f"{url} answered {status}"
    return True, f"{url} answered 200"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        url = health_url(os.environ, read_pid1_argv() if argv is None else argv)
    except ValueError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    healthy, reason = probe(url)
    print(f"healthcheck: {reason}", file=sys.stderr if not healthy else sys.stdout)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
