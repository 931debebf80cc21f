"""What the API-calling subcommands share: run one async call and turn every failure a user can act on into one
line on stderr and exit code 1 (no traceback); stream a local file in chunks without blocking the loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console

from libs.sdk import credentials
from libs.sdk.client import ApiError

CHUNK = 1 << 20


def run_api_call(url: str | None, coro: Coroutine[Any, Any, Any]) -> tuple[int, Any]:
    """(0, result) on success; (1, None) after printing why the call failed."""
    console = Console(stderr=True)
    try:
        return 0, asyncio.run(coro)
    except ApiError as exc:
        console.print(f"[red]error:[/] {exc.message} (HTTP {exc.status})")
    except credentials.LoginError as exc:
        console.print(f"[red]error:[/] {exc}")
    except OSError as exc:
        console.print(f"[red]error:[/] cannot reach {credentials.platform_url(url)}: {exc}")
    return 1, None


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    """The file's bytes in `size` pieces, read off the event loop."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk
