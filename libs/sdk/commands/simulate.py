"""``seqhub simulate run OUT_DIR ...``: write a simulated instrument run folder (and its truth file).

For demos, tests and benchmarks: RunInfo.xml, RunParameters.xml, SampleSheet.csv, per-cycle
BCL/BCL.gz or CBCL, filters, positions, RTAComplete.txt and CopyComplete.txt last, written
progressively at ``--cycles-per-second``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from libs.sdk.commands._support import positive, print_error
from services.ingest.bcl.errors import DemuxError
from services.ingest.bcl.simulate import parse_reads_spec, simulate_run


def _tiles(text: str) -> int | list[int]:
    try:
        if "," in text:
            tiles = [int(t) for t in text.split(",")]
            if any(not 1101 <= t <= 29999 for t in tiles):
                raise ValueError
            return tiles
        n = int(text)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a tile count (e.g. 4) or tile numbers (e.g. 1101,1102,2101), got {text!r}"
        ) from None


def _reads(text: str) -> str:
    try:
        parse_reads_spec(text)
    except DemuxError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="run folder to create (must not exist or be empty)")
    p.add_argument("--format", dest="fmt", choices=["bcl", "bcl.gz", "cbcl", "bcl.bgzf"], default="cbcl")
    p.add_argument("--clusters", type=positive, default=10000, help="clusters in the whole run (default 10000)")
    p.add_argument("--lanes", type=positive, default=1)
    p.add_argument("--tiles", type=_tiles, default=2, help="tiles per lane: a count or tile numbers (1101,2101)")
    p.add_argument("--reads", type=_reads, default="151,8,8,151", help="read lengths (default 151,8,8,151)")
    p.add_argument("--samples", type=int, default=4, help="samples in the sample sheet (default 4)")
    p.add_argument(
        "--cycles-per-second",
        type=_non_negative_float,
        default=0.0,
        help="instrument pace; 0 = as fast as possible (default)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-sheet-version", type=int, choices=[1, 2], default=2)
    p.add_argument("--adapter-fraction", type=float, default=0.0, help="share of clusters reading into adapters")
    p.add_argument("--no-truth", action="store_true", help="do not write OUT_DIR.truth.tsv.gz")
    p.add_argument("--quiet", "-q", action="store_true")


def register(subparsers: Any) -> None:
    """Add ``simulate run`` to the ``seqhub`` CLI (argparse sub-parsers)."""
    sim = subparsers.add_parser("simulate", help="instrument simulator")
    sub = sim.add_subparsers(dest="simulate_command", required=True)
    p = sub.add_parser("run", help="write a simulated run folder", description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    kwargs = dict(
        fmt=args.fmt,
        clusters=args.clusters,
        lanes=args.lanes,
        tiles=args.tiles,
        reads=args.reads,
        samples=args.samples,
        cycles_per_second=args.cycles_per_second,
        seed=args.seed,
        sample_sheet_version=args.sample_sheet_version,
        adapter_fraction=args.adapter_fraction,
        truth=not args.no_truth,
    )
    try:
        if args.quiet:
            res = simulate_run(args.out_dir, **kwargs)
        else:
            with Progress(
                TextColumn("[bold]simulate[/] cycle"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("cycles", total=None)

                def on_cycle(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                res = simulate_run(args.out_dir, on_cycle=on_cycle, **kwargs)
    except DemuxError as e:
        print_error(str(e))
        return 2
    except OSError as e:
        print_error(f"{e.filename or args.out_dir}: {e.strerror or e}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: the run folder is incomplete (no CopyComplete.txt)[/]")
        return 130
    if not args.quiet:
        console.print(f"{res.run_info.run_id}: {res.clusters:,} clusters, {len(res.files)} files in {res.run_dir}")
        if res.truth_path:
            console.print(f"truth: {res.truth_path}")
    print(res.run_dir)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqhub simulate run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
