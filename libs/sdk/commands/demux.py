"""``seqhub demux RUN_DIR --out OUT_DIR ...``: BCL/CBCL -> FASTQ on this machine, no server needed.

Same code as the ingest worker (services.ingest.bcl.demux). Exit status 0 on success, 2 on bad
input (the message names the file and the problem), 130 when interrupted; no partial output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from libs.sdk.commands._support import int_between, positive, print_error
from services.ingest.bcl.demux import DemuxOptions, DemuxResult, run_demux
from services.ingest.bcl.errors import DemuxError


def _mismatches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 0, 1 or 2 (or two comma-separated values), got {text!r}") from None
    if not 1 <= len(values) <= 2 or any(not 0 <= v <= 2 for v in values):
        raise argparse.ArgumentTypeError(f"expected 0, 1 or 2 (or two comma-separated values), got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="instrument run folder (with RunInfo.xml)")
    p.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        metavar="OUT_DIR",
        help="output folder (must not exist or be empty); written atomically",
    )
    p.add_argument("--sample-sheet", type=Path, metavar="FILE", help="default: RUN_DIR/SampleSheet.csv")
    p.add_argument(
        "--barcode-mismatches",
        type=_mismatches,
        metavar="N",
        help="mismatches allowed per index read: 0, 1 or 2, or 'N1,N2' (default: sample sheet, else 1)",
    )
    p.add_argument("--threads", type=positive, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--include-non-pf", action="store_true", help="also write clusters failing the filter (flag Y)")
    p.add_argument("--no-lane-splitting", action="store_true", default=None, help="merge lanes into one file")
    p.add_argument(
        "--create-fastq-for-index-reads",
        action="store_true",
        default=None,
        help="also write I1/I2 FASTQ files",
    )
    p.add_argument(
        "--compression-level",
        type=int_between(0, 9),
        default=4,
        metavar="N",
        help="gzip level on the zlib scale 0-9 (default 4, as bcl2fastq)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def register(subparsers: Any) -> None:
    """Add ``demux`` to the ``seqhub`` CLI (argparse sub-parsers)."""
    p = subparsers.add_parser(
        "demux",
        help="convert a run folder's BCL/CBCL base calls to FASTQ per sample",
        description=__doc__.splitlines()[0],
    )
    add_arguments(p)
    p.set_defaults(func=run)


def _summary(console: Console, res: DemuxResult) -> None:
    table = Table(
        title=f"{res.plan.info.run_id}: {res.clusters:,} clusters in {res.seconds:.1f} s "
        f"({res.clusters / max(res.seconds, 1e-9):,.0f}/s)"
    )
    for col in ("Lane", "Sample", "PF reads", "% of lane", "Perfect index"):
        table.add_column(col, justify="right" if col != "Sample" else "left")
    names = {s.number: s.sample_id for s in res.plan.samples} | {0: "Undetermined"}
    for lane, stats in sorted(res.lane_stats.items()):
        total = sum(st.reads for st in stats.values()) or 1
        for num, st in sorted(stats.items(), key=lambda kv: (kv[0] == 0, kv[0])):
            perfect = f"{100 * st.mismatches[0] / st.reads:.1f}%" if st.reads and num else ""
            table.add_row(str(lane), names[num], f"{st.reads:,}", f"{100 * st.reads / total:.1f}%", perfect)
    console.print(table)
    console.print(f"{len(res.files)} FASTQ files and reports in {res.out_dir}")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    opts = DemuxOptions(
        sample_sheet=args.sample_sheet,
        barcode_mismatches=args.barcode_mismatches,
        threads=args.threads,
        include_non_pf=args.include_non_pf,
        no_lane_splitting=args.no_lane_splitting,
        create_fastq_for_index_reads=args.create_fastq_for_index_reads,
        compression_level=args.compression_level,
    )
    try:
        if args.quiet:
            res = run_demux(args.run_dir, args.out, opts)
        else:
            with Progress(
                TextColumn("[bold]demux[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("tiles"),
                TextColumn("{task.fields[clusters]:,} clusters"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("tiles", total=None, clusters=0)

                def on_progress(done: int, total: int, clusters: int) -> None:
                    progress.update(task, completed=done, total=total, clusters=clusters)

                res = run_demux(args.run_dir, args.out, opts, progress=on_progress)
    except DemuxError as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: no output written[/]")
        return 130
    for w in res.plan.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if not args.quiet:
        _summary(console, res)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqhub demux", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
