"""The `seqhub` command line: one entry point, a subcommand per module of `libs.sdk.commands`.

Each command module exposes `register(subparsers)`, which adds its parsers and sets `func` (returning the exit
code). Errors a user can act on are printed as one line and exit non-zero; no tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from libs.sdk.commands import admin, auth, beacon, demux, repo, rnaget, runs, simulate, upload

DESCRIPTION = """seqhub — open genomic data platform client.

Instruments upload runs (`seqhub upload run DIR --watch`), users follow them (`seqhub runs list`),
bioinformaticians demultiplex locally (`seqhub demux RUN_DIR --out OUT`), operators load beacon datasets
and replay dead letters (`seqhub admin dlq list`). Start with `seqhub login`.
Environment: SEQHUB_URL (default http://127.0.0.1:8080), SEQHUB_TOKEN.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqhub", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    auth.register(sub)
    upload.register(sub)
    runs.register(sub)
    simulate.register(sub)
    demux.register(sub)
    beacon.register(sub)
    repo.register(sub)
    rnaget.register(sub)
    admin.register(sub, extra=auth.register_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConnectionError, OSError) as exc:
        print(f"seqhub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
