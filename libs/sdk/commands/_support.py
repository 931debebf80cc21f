"""What subcommands share: argument types that explain a bad value; running one async API call with every failure
a user can act on turned into one line on stderr and exit code 1 (no traceback); streaming a local file in chunks
without blocking the loop."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from libs.sdk import credentials
from libs.sdk.client import ApiError, SeqhubClient

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


def print_error(message: str) -> None:
    """`error: <message>` on stderr as one line: never wrapped at the terminal width (paths stay whole for
    copy and grep) and never read as rich markup (a `[1]` in a message is printed, not swallowed)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(Text.assemble(("error:", "red"), " ", message))


def print_table(table: Table) -> None:
    """A table on stdout: at the terminal's width, but whole rows when piped (rich would squeeze it to 80
    columns and cut ids and names that a user greps for or passes to the next command)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=1 << 12)
    console.print(table)


@asynccontextmanager
async def signed_in_client(args: argparse.Namespace) -> AsyncIterator[SeqhubClient]:
    """A client of the platform at `--url`, with `--token` or else the `seqhub login` / client-credentials token."""
    url = credentials.platform_url(args.url)
    token = args.token or await credentials.get_access_token(url)
    async with SeqhubClient(url, token=token) as client:
        yield client


def run_api_call(url: str | None, coro: Coroutine[Any, Any, Any]) -> tuple[int, Any]:
    """(0, result) on success; (1, None) after printing why the call failed."""
    try:
        return 0, asyncio.run(coro)
    except ApiError as exc:
        print_error(f"{exc.message} (HTTP {exc.status})")
    except credentials.LoginError as exc:
        print_error(str(exc))
    except OSError as exc:
        print_error(f"cannot reach {credentials.platform_url(url)}: {exc}")
    return 1, None


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    """The file's bytes in `size` pieces, read off the event loop."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk
