"""``seqhub repo get|list|create|submit|delete``: the GMI repository (studies, samples, experiments, runs, ...).

``submit FILE.xml`` takes an SRA XML document (``STUDY_SET``, ``SAMPLE_SET``, ... or one element) and sends it
in one request: the repository creates every element of a set or none, and the command prints the accession
it assigned to each (or the fields it rejected, with their XSD paths, ``/SAMPLE_SET/SAMPLE[2]/…``). A
``SUBMISSION_SET`` is sent one ``SUBMISSION`` per request (the repository executes their actions one
submission at a time). ``create`` takes a GMI JSON (or XML) file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import xml.etree.ElementTree as ET  # serialising only; parsing goes through defusedxml
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET
from rich.table import Table

from libs.sdk import credentials
from libs.sdk.client import ApiError, SeqhubClient
from libs.sdk.commands._support import print_error, print_table

TYPES = {
    "study": "studies",
    "sample": "samples",
    "experiment": "experiments",
    "run": "runs",
    "analysis": "analyses",
    "submission": "submissions",
}
TAGS = {name.upper(): name for name in TYPES}


class UsageError(Exception):
    """A problem with the user's input (file, type), reported as one line."""


def register(subparsers: Any) -> None:
    """Add ``repo get|list|create|submit|delete`` to the ``seqhub`` CLI."""
    repo = subparsers.add_parser("repo", help="GMI metadata repository (INSDC studies, samples, runs, ...)")
    sub = repo.add_subparsers(dest="repo_command", required=True)
    get = sub.add_parser("get", help="show one resource")
    get.add_argument("type", choices=TYPES)
    get.add_argument("accession")
    get.add_argument("--xml", action="store_true", help="print the SRA XML instead of JSON")
    listing = sub.add_parser("list", help="list resources of a type")
    listing.add_argument("type", choices=TYPES)
    listing.add_argument("--title", help="title prefix")
    listing.add_argument("--alias")
    listing.add_argument("--taxon", type=int)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print the raw JSON")
    create = sub.add_parser("create", help="create a resource from a GMI JSON (or SRA XML) file")
    create.add_argument("type", choices=TYPES)
    create.add_argument("file", type=Path)
    create.add_argument("--study", help="create a sample under this study accession")
    submit = sub.add_parser("submit", help="submit an SRA XML document (every element of a *_SET)")
    submit.add_argument("file", type=Path)
    delete = sub.add_parser("delete", help="delete a resource you own")
    delete.add_argument("type", choices=TYPES)
    delete.add_argument("accession")
    for p in (get, listing, create, submit, delete):
        p.add_argument("--url", help="platform URL (default $SEQHUB_URL or http://127.0.0.1:8080)")
        p.add_argument("--token", help="access token (default $SEQHUB_TOKEN, client credentials or login)")
    get.set_defaults(func=lambda a: _run(a, _get))
    listing.set_defaults(func=lambda a: _run(a, _list))
    create.set_defaults(func=lambda a: _run(a, _create))
    submit.set_defaults(func=lambda a: _run(a, _submit))
    delete.set_defaults(func=lambda a: _run(a, _delete))


def split_sra_document(data: bytes) -> tuple[str, list[bytes]]:
    """(type, one XML document per element) of an SRA XML file; refuses DTDs and entities."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise UsageError("the XML declares a DTD or entities, which are not allowed") from exc
    except ET.ParseError as exc:
        raise UsageError(f"the XML is not well-formed: {exc}") from exc
    tag = root.tag.removesuffix("_SET")
    if tag not in TAGS:
        raise UsageError(
            f"unsupported root element <{root.tag}>; expected one of {', '.join(t + '_SET' for t in TAGS)}"
        )
    elements = list(root) if root.tag.endswith("_SET") else [root]
    documents = []
    for element in elements:
        wrapper = ET.Element(f"{tag}_SET")
        wrapper.append(element)
        documents.append(ET.tostring(wrapper, encoding="utf-8", xml_declaration=True))
    if not documents:
        raise UsageError(f"<{root.tag}> holds no {tag} element")
    return TAGS[tag], documents


def _run(args: argparse.Namespace, action: Any) -> int:
    try:
        return int(asyncio.run(_with_client(args, action)))
    except ApiError as exc:
        print_error(f"{exc.message} (HTTP {exc.status})")
        _print_invalid_fields(exc)
    except (UsageError, credentials.LoginError, OSError) as exc:
        print_error(str(exc))
    return 1


def _print_invalid_fields(exc: ApiError) -> None:
    """One line per invalid field (`  /SAMPLE_SET/SAMPLE[2]/…: reason`), printed as is (no markup)."""
    for field in (exc.body or {}).get("invalidFields", []) if isinstance(exc.body, dict) else []:
        print(f"  {field.get('path')}: {field.get('reason')}", file=sys.stderr)


async def _with_client(args: argparse.Namespace, action: Any) -> int:
    url = credentials.platform_url(args.url)
    token = args.token
    if token is None:
        try:
            token = await credentials.get_access_token(url)
        except credentials.LoginError:
            token = None  # public resources are readable anonymously; writes will say credentials are needed
    async with SeqhubClient(url, token=token) as client:
        result: int = await action(client, args)
        return result


async def _get(client: SeqhubClient, args: argparse.Namespace) -> int:
    path = f"/repository/{TYPES[args.type]}/{args.accession}"
    if args.xml:
        async with client.session.get(client.url(path), headers=client.headers({"Accept": "application/xml"})) as r:
            text = await r.text()
            if r.status >= 400:
                raise ApiError(r.status, text.strip()[:300], method="GET", url=path)
            sys.stdout.write(text + "\n")
            return 0
    print(json.dumps(await client.get_json(path), indent=2))
    return 0


async def _list(client: SeqhubClient, args: argparse.Namespace) -> int:
    params = {"limit": str(args.limit)}
    for name in ("title", "alias", "taxon"):
        if getattr(args, name) is not None:
            params[name] = str(getattr(args, name))
    page = await client.get_json(f"/repository/{TYPES[args.type]}", params=params)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    table = Table("accession", "alias", "title", "visibility")
    for item in page["resources"]:
        title = item.get("title") or (item.get("descriptor") or {}).get("study_title") or ""
        table.add_row(item["accession"], item["alias"], str(title).strip()[:60], item.get("visibility", ""))
    print_table(table)
    return 0


async def _post(client: SeqhubClient, path: str, data: bytes, content_type: str) -> tuple[int, Mapping[str, str], Any]:
    return await client.request(
        "POST", path, data=data, headers={"Content-Type": content_type, "Accept": "application/json"}
    )


async def _create(client: SeqhubClient, args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    is_xml = data.lstrip().startswith(b"<")
    if not is_xml:
        try:
            json.loads(data)
        except ValueError as exc:
            raise UsageError(f"{args.file} is neither JSON nor XML: {exc}") from exc
    path = f"/repository/{TYPES[args.type]}"
    if args.study:
        if args.type != "sample":
            raise UsageError("--study only applies to samples")
        path = f"/repository/studies/{args.study}/samples"
    status, headers, body = await _post(client, path, data, "application/xml" if is_xml else "application/json")
    _report(status, headers, body)
    return 0


async def _submit(client: SeqhubClient, args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    kind, documents = split_sra_document(data)  # checks the root and refuses DTDs before anything is sent
    failures = 0
    for document in documents if kind == "submission" else [data]:
        try:
            status, headers, body = await _post(client, f"/repository/{TYPES[kind]}", document, "application/xml")
        except ApiError as exc:
            failures += 1
            print_error(f"rejected: {exc.message} (HTTP {exc.status})")
            _print_invalid_fields(exc)
            continue
        _report(status, headers, body)
    return 1 if failures else 0


def _report(status: int, headers: Mapping[str, str], body: Any) -> None:
    body = body if isinstance(body, dict) else {}
    if status == 202:
        for review in body.get("reviews") or [headers.get("Location", "")]:
            print(f"accepted for review: {review}")
        return
    for resource in body.get("resources") or [body]:  # a set answers with every created resource
        self_link = next((link["href"] for link in resource.get("links", []) if link.get("rel") == "self"), "")
        print(f"{resource.get('accession')}\t{resource.get('alias', '')}\t{headers.get('Location', self_link)}")


async def _delete(client: SeqhubClient, args: argparse.Namespace) -> int:
    await client.delete(f"/repository/{TYPES[args.type]}/{args.accession}")
    print(f"deleted {args.accession}")
    return 0
