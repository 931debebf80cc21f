"""What subcommands share: argument types that explain a bad value; running one async API call with every failure
a user can act on turned into one line on stderr and exit code 1 (no traceback); streaming a local file in chunks
without blocking the loop."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console

from libs.sdk import credentials
from libs.sdk.client import ApiError

CHUNK = 1 << 20


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type` accepting integers in [low, high] (no upper bound when `high` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"{low}-{high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


positive = int_between(1)


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
