"""``seqhub rnaget import FILE --study ID --units TPM`` streams an expression (or continuous) matrix —
TSV, TSV.gz or loom — to ``PUT /rnaget/admin/{expressions|continuous}/{id}`` (needs an ``rnaget:admin``
token); ``seqhub rnaget remove ID`` takes it out of every RNAget answer."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from libs.sdk.commands._support import file_chunks, print_error, run_api_call, signed_in_client

MATRIX_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
ACCESS = ["PUBLIC", "REGISTERED", "CONTROLLED"]
KINDS = {"expression": "expressions", "continuous": "continuous"}


def register(subparsers: Any) -> None:
    """Add ``rnaget import`` and ``rnaget remove`` to the ``seqhub`` CLI."""
    rnaget = subparsers.add_parser("rnaget", help="RNAget expression matrices and continuous signal")
    sub = rnaget.add_subparsers(dest="rnaget_command", required=True)
    imp = sub.add_parser("import", help="import a TSV/TSV.gz/loom matrix (replaces a matrix of the same id)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--study", required=True, help="study id the matrix belongs to")
    imp.add_argument("--units", required=True, help="value units, e.g. TPM, FPKM, counts")
    imp.add_argument("--id", dest="matrix_id", help="matrix id (default: the file name without extensions)")
    imp.add_argument("--kind", choices=sorted(KINDS), default="expression")
    imp.add_argument("--format", choices=["tsv", "loom"], help="default: from the file extension")
    imp.add_argument("--project", help="parent project id (default: the study's)")
    imp.add_argument("--version", dest="matrix_version")
    imp.add_argument("--name")
    imp.add_argument("--tags", help="comma-separated tags")
    imp.add_argument("--access", choices=ACCESS, default="PUBLIC", type=str.upper)
    remove = sub.add_parser("remove", help="remove a matrix from every RNAget answer")
    remove.add_argument("matrix_id")
    remove.add_argument("--kind", choices=sorted(KINDS), default="expression")
    for p in (imp, remove):
        p.add_argument("--url", help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")
        p.add_argument("--token", help="access token with rnaget:admin (default $SEQHUB_TOKEN or login)")
    imp.set_defaults(func=run_import)
    remove.set_defaults(func=run_remove)


def guess(path: Path) -> tuple[str, str | None]:
    """(default id, format) from a file name: ``liver.tpm.tsv.gz`` -> (``liver.tpm``, ``tsv``)."""
    name = path.name
    for ext, fmt in ((".tsv.gz", "tsv"), (".tsv", "tsv"), (".txt.gz", "tsv"), (".txt", "tsv"), (".loom", "loom")):
        if name.lower().endswith(ext):
            return name[: -len(ext)], fmt
    return path.stem, None


async def _import(args: argparse.Namespace, matrix_id: str, fmt: str) -> Any:
    params = {"format": fmt, "units": args.units, "studyID": args.study, "access_level": args.access}
    optional = (("projectID", args.project), ("version", args.matrix_version), ("name", args.name), ("tags", args.tags))
    params.update({k: v for k, v in optional if v})
    async with signed_in_client(args) as client:
        _, _, body = await client.request(
            "PUT",
            f"/rnaget/admin/{KINDS[args.kind]}/{matrix_id}",
            params=params,
            data=file_chunks(args.file),
            headers={"Content-Type": "application/octet-stream"},
        )
        return body


async def _remove(args: argparse.Namespace) -> None:
    async with signed_in_client(args) as client:
        await client.delete(f"/rnaget/admin/{KINDS[args.kind]}/{args.matrix_id}")


def run_import(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print_error(f"{args.file}: no such file")
        return 2
    default_id, guessed = guess(args.file)
    matrix_id = args.matrix_id or default_id
    fmt = args.format or guessed
    if fmt is None:
        print_error(f"cannot tell the format of {args.file.name}; pass --format tsv|loom")
        return 2
    if not MATRIX_ID.fullmatch(matrix_id):
        print_error(f"matrix id {matrix_id!r} must match {MATRIX_ID.pattern}; pass --id")
        return 2
    code, record = run_api_call(args.url, _import(args, matrix_id, fmt))
    if code == 0:
        print(json.dumps(record, indent=2))
    return code


def run_remove(args: argparse.Namespace) -> int:
    code, _ = run_api_call(args.url, _remove(args))
    return code
