"""``seqhub runs list|show``: the runs ingest knows, their status and upload progress."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from libs.sdk.commands._support import print_table, run_api_call, signed_in_client

STATUSES = ["uploading", "uploaded", "demultiplexing", "demultiplexed", "failed", "stalled"]


def register(subparsers: Any) -> None:
    """Add ``runs list`` and ``runs show`` to the ``seqhub`` CLI."""
    runs = subparsers.add_parser("runs", help="instrument runs in ingest")
    sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = sub.add_parser("list", help="list runs, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--instrument")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    show = sub.add_parser("show", help="one run in detail")
    show.add_argument("run_id")
    for p in (listing, show):
        p.add_argument("--json", action="store_true", help="print the raw JSON")
        p.add_argument("--url", help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")
        p.add_argument("--token", help="access token (default $SEQHUB_TOKEN, client credentials or login)")
    listing.set_defaults(func=run_list)
    show.set_defaults(func=run_show)


async def _get(args: argparse.Namespace, path: str, params: dict[str, str] | None = None) -> Any:
    async with signed_in_client(args) as client:
        return await client.get_json(path, params=params)


def _call(args: argparse.Namespace, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    return run_api_call(args.url, _get(args, path, params))


def run_list(args: argparse.Namespace) -> int:
    params = {"limit": str(args.limit), "offset": str(args.offset)}
    if args.status:
        params["status"] = args.status
    if args.instrument:
        params["instrument"] = args.instrument
    code, page = _call(args, "/ingest/runs", params)
    if code:
        return code
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    table = Table("id", "name", "instrument", "status", "files", "bytes", "created")
    for r in page["items"]:
        table.add_row(
            r["id"],
            r["name"],
            r["instrument"] or "",
            r["status"],
            f"{r['files_received']}/{r['files_expected']}",
            f"{r['bytes_received']:,}",
            r["created_at"][:19],
        )
    print_table(table)
    Console(stderr=True).print(f"{len(page['items'])} of {page['total']} runs")
    return 0


def run_show(args: argparse.Namespace) -> int:
    code, run = _call(args, f"/ingest/runs/{args.run_id}")
    if code:
        return code
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    table = Table(show_header=False)
    for key in (
        "id",
        "name",
        "instrument",
        "flowcell",
        "project",
        "status",
        "files_received",
        "files_expected",
        "missing_expected",
        "bytes_received",
        "folder_uri",
        "sample_sheet_uri",
        "created_at",
        "last_activity_at",
        "uploaded_at",
    ):
        table.add_row(key, str(run.get(key)))
    print_table(table)
    return 0
