"""``seqhub beacon load VCF --dataset ID --assembly GRCh38 --access PUBLIC|REGISTERED|CONTROLLED``:
index a VCF/BCF into a beacon dataset (streams the file to ``PUT /beacon/datasets/{id}``; needs an
``admin`` token) and ``seqhub beacon withdraw ID``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from libs.sdk.commands._support import file_chunks, print_error, run_api_call, signed_in_client

ACCESS = ["PUBLIC", "REGISTERED", "CONTROLLED"]
DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def register(subparsers: Any) -> None:
    """Add ``beacon load`` and ``beacon withdraw`` to the ``seqhub`` CLI."""
    beacon = subparsers.add_parser("beacon", help="beacon datasets")
    sub = beacon.add_subparsers(dest="beacon_command", required=True)
    load = sub.add_parser("load", help="index a VCF/BCF into a beacon dataset (replaces its variants)")
    load.add_argument("vcf", type=Path)
    load.add_argument("--dataset", required=True, help="dataset id, e.g. 1000g-chrMT")
    load.add_argument("--assembly", required=True, help="assembly id, e.g. GRCh38")
    load.add_argument("--access", choices=ACCESS, default="PUBLIC", type=str.upper)
    load.add_argument("--name", help="human-readable dataset name")
    load.add_argument("--description")
    withdraw = sub.add_parser("withdraw", help="take a dataset out of every beacon answer")
    withdraw.add_argument("dataset")
    for p in (load, withdraw):
        p.add_argument("--url", help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")
        p.add_argument("--token", help="access token with the admin scope (default $SEQHUB_TOKEN or login)")
    load.set_defaults(func=run_load)
    withdraw.set_defaults(func=run_withdraw)


async def _load(args: argparse.Namespace) -> Any:
    params = {"assembly": args.assembly, "access": args.access}
    params.update({k: v for k, v in (("name", args.name), ("description", args.description)) if v})
    async with signed_in_client(args) as client:
        headers = {"Content-Type": "application/octet-stream"}
        _, _, body = await client.request(
            "PUT", f"/beacon/datasets/{args.dataset}", params=params, data=file_chunks(args.vcf), headers=headers
        )
        return body


async def _withdraw(args: argparse.Namespace) -> None:
    async with signed_in_client(args) as client:
        await client.delete(f"/beacon/datasets/{args.dataset}")


def run_load(args: argparse.Namespace) -> int:
    if not args.vcf.is_file():
        print_error(f"{args.vcf}: no such file")
        return 2
    if not DATASET_ID.fullmatch(args.dataset):
        print_error(f"--dataset {args.dataset!r} must match {DATASET_ID.pattern}")
        return 2
    code, meta = run_api_call(args.url, _load(args))
    if code == 0:
        print(json.dumps(meta, indent=2))
    return code


def run_withdraw(args: argparse.Namespace) -> int:
    code, _ = run_api_call(args.url, _withdraw(args))
    return code
