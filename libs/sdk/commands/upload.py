"""``seqhub upload run RUN_DIR [--watch] [--parallel N] [--parallel-large N] [--quiet] [--dry-run]``:
the instrument agent.

Streams a run folder to seqhub ingest over tus while the instrument writes it (``--watch``), resumes
after being killed or after server/network failures, verifies every file end to end (sha256), and
exits non-zero with a clear message when something cannot be fixed by retrying. Authenticates with
``--token``/``SEQHUB_TOKEN``, client credentials (``SEQHUB_CLIENT_ID``/``SEQHUB_CLIENT_SECRET``) or a
``seqhub login`` session.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress

from libs.sdk import credentials
from libs.sdk.client import SeqhubClient
from libs.sdk.commands._support import positive, print_error
from libs.sdk.uploader import (
    DEFAULT_PARALLEL,
    DEFAULT_PARALLEL_LARGE,
    INLINE_BYTES,
    Progress,
    RunUploader,
    UploadFailed,
)


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = int(float(number) * factor)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size like 8M or 65536, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the instrument's run folder")
    p.add_argument(
        "--watch", action="store_true", help="follow a folder still being written, until CopyComplete.txt"
    )
    p.add_argument(
        "--parallel",
        type=positive,
        metavar="N",
        default=DEFAULT_PARALLEL,
        help=f"concurrent file transfers (default {DEFAULT_PARALLEL}; runs are mostly small files)",
    )
    p.add_argument(
        "--parallel-large",
        type=positive,
        metavar="N",
        default=DEFAULT_PARALLEL_LARGE,
        help=f"of those, at most this many of files over {INLINE_BYTES >> 20} MiB, which stream "
        f"(default {DEFAULT_PARALLEL_LARGE}; "
        "a few streams fill the link, each more costs buffer memory here and on the server)",
    )
    p.add_argument("--chunk-size", type=_size, default=8 << 20, help="bytes per request (default 8M)")
    p.add_argument(
        "--quiet", action="store_true", help="no progress display (for services); errors still print"
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be uploaded, send nothing")
    p.add_argument(
        "--format", dest="fmt", choices=["bcl", "bcl.gz", "cbcl", "bcl.bgzf"], help="base-call layout (default: detect)"
    )
    p.add_argument("--project", help="target project of the run's samples")
    p.add_argument("--state", type=Path, help="local resume journal (default under $XDG_STATE_HOME/seqhub)")
    p.add_argument(
        "--stable-seconds", type=float, default=5.0, help="a file is complete after this long unchanged"
    )
    p.add_argument("--url", help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")
    p.add_argument(
        "--token", help="access token (default $SEQHUB_TOKEN, client credentials or `seqhub login`)"
    )


def register(subparsers: Any) -> None:
    """Add ``upload run`` to the ``seqhub`` CLI."""
    upload = subparsers.add_parser("upload", help="upload instrument runs")
    sub = upload.add_subparsers(dest="upload_command", required=True)
    p = sub.add_parser("run", help="stream a run folder to ingest", description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        print_error(f"{run_dir} is not a folder")
        return 2
    try:
        return asyncio.run(_run(args, console))
    except UploadFailed as exc:
        print_error(str(exc))
        return 1
    except credentials.LoginError as exc:
        print_error(str(exc))
        return 3
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        return 130


async def _run(args: argparse.Namespace, console: Console) -> int:
    url = credentials.platform_url(args.url)
    if args.dry_run:
        uploader = RunUploader(SeqhubClient(url), args.run_dir, journal_path=args.state)
        plan = uploader.plan()
        for path, size in plan:
            print(f"{size:>14,}  {path}")
        console.print(f"would upload {len(plan)} files, {sum(s for _, s in plan):,} bytes to {url}")
        return 0
    token = args.token or await credentials.get_access_token(url)
    async with SeqhubClient(url, token=token, connections=max(8, args.parallel * 2)) as client:
        display = None if args.quiet else _Display(console)
        uploader = RunUploader(
            client,
            args.run_dir,
            parallel=args.parallel,
            parallel_large=args.parallel_large,
            chunk_size=args.chunk_size,
            watch=args.watch,
            fmt=args.fmt,
            journal_path=args.state,
            stable_seconds=args.stable_seconds,
            project=args.project,
            on_progress=display.update if display else None,
        )
        if display:
            with display.progress:
                run_id = await uploader.run()
        else:
            run_id = await uploader.run()
    p = uploader.progress
    console.print(f"run {run_id}: {p.files_done} files, {p.bytes_done:,} bytes uploaded")
    return 0


class _Display:
    """One line on stderr: files done/total, bytes, throughput and ETA."""

    def __init__(self, console: Console) -> None:
        self.progress = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID = self.progress.add_task("files 0/0", total=None)

    def update(self, p: Progress) -> None:
        self.progress.update(
            self.task,
            description=f"files {p.files_done}/{p.files_total}",
            total=p.bytes_total or None,
            completed=p.bytes_done,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m libs.sdk.commands.upload RUN_DIR ...` (the same as `seqhub upload run`)."""
    parser = argparse.ArgumentParser(prog="seqhub upload run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
