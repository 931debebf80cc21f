"""`python -m services.demo` (`make demo`): an instrument run goes in, Beacon and RNAget answers come out.

Starts the embedded platform in a temporary folder (or uses the one at `--url` / `SEQHUB_URL`), then walks through
the whole flow with progress on screen: tokens from the auth service (bootstrap admin client → two OAuth2 clients),
the simulator writing a run while `seqhub upload run --watch` streams it, demultiplexing, the Study / Sample /
Experiment / Run tree in the repository, a VCF and an expression matrix submitted as analyses, and finally a Beacon
query and an RNAget slice.

`Pipeline` is the same flow as a library: the end-to-end tests (tests/e2e/test_pipeline.py) drive it against the
distributed platform, with a service killed midway, and in embedded mode. Every wait polls over HTTP and
tolerates a service that is down or restarting; every write is idempotent (aliases), so a step can be retried.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SERVICES = ("auth", "ingest", "repository", "beacon", "rnaget")
DEMO_ADMIN_ID, DEMO_ADMIN_SECRET = "seqhub-demo-admin", "seqhub-demo-admin-secret-0123456789"

# The variant the VCF holds (VCF POS is 1-based; Beacon `start` is 0-based) and one it does not.
VARIANT = {"referenceName": "1", "start": 55516887, "referenceBases": "G", "alternateBases": "A"}
ABSENT = {"referenceName": "1", "start": 55516887, "referenceBases": "G", "alternateBases": "T"}
VCF = (
    b"##fileformat=VCFv4.2\n"
    b"##contig=<ID=1,length=248956422>\n"
    b'##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">\n'
    b'##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">\n'
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"1\t55516888\trs11591147\tG\tA\t.\tPASS\tAC=3;AN=10\n"
    b"1\t55518000\t.\tC\tT\t.\tPASS\tAC=1;AN=10\n"
)
# Features x samples; the slice asks for ENSG00000169174 (PCSK9) and must return exactly these values.
MATRIX_ROWS = {"ENSG00000169174": ("PCSK9", "12.5", "0.75"), "ENSG00000130164": ("LDLR", "40", "3.25")}
MATRIX = (
    "gene_id\tgene_name\tliver\tmuscle\n"
    + "".join(f"{gene}\t{name}\t{a}\t{b}\n" for gene, (name, a, b) in MATRIX_ROWS.items())
).encode()
SLICED_GENE = "ENSG00000169174"


class PipelineError(Exception):
    """A step did not reach its expected state; the message names the step and what was seen."""


@dataclass
class Endpoints:
    """Where each service answers: `http://host:port/<name>` (embedded: one port for all)."""

    urls: dict[str, str]

    @classmethod
    def single(cls, base: str) -> Endpoints:
        return cls({name: f"{base.rstrip('/')}/{name}" for name in SERVICES})

    def root(self, name: str) -> str:
        """The platform URL a CLI talking to this service is given (`SEQHUB_URL`)."""
        return self.urls[name].rsplit("/", 1)[0]


@dataclass
class RunSummary:
    run_id: str
    project: str
    samples: int
    study: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)


@dataclass
class Pipeline:
    """The whole flow against a running platform. `on_step(name, detail)` is called as each step starts/ends."""

    endpoints: Endpoints
    admin_id: str
    admin_secret: str
    work_dir: Path
    on_step: Callable[[str, str], None] = lambda step, detail: None
    timeout: float = 120.0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    tokens: dict[str, str] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)  # every 5xx answer seen, retried or not

    # -- HTTP with tolerance for a restarting service -------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        ok: tuple[int, ...] = (200,),
        token: str | None = None,
        retry_statuses: tuple[int, ...] = (502, 503, 504),
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + self.timeout
        last = ""
        while True:
            try:
                response = httpx.request(method, url, headers=headers, timeout=30, **kwargs)
                if response.status_code in ok:
                    return response
                last = f"{response.status_code} {response.text[:300]}"
                if response.status_code >= 500:
                    self.server_errors.append(f"{method} {url} → {last}")
                if response.status_code not in retry_statuses:
                    raise PipelineError(f"{method} {url} answered {last}")
            except httpx.TransportError as exc:  # the service is down or restarting
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise PipelineError(f"{method} {url}: no success after {self.timeout:.0f}s (last: {last})")
            time.sleep(0.3)

    def _until(self, what: str, check: Callable[[], Any], timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise PipelineError(f"timed out waiting for {what}")
            time.sleep(0.3)

    def url(self, name: str, path: str) -> str:
        return self.endpoints.urls[name] + path

    # -- the steps -----------------------------------------------------------------------------------------

    def token(self, client_id: str, secret: str, scope: str) -> str:
        response = self._call(
            "POST",
            self.url("auth", "/token"),
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "scope": scope},
        )
        return str(response.json()["access_token"])

    def create_clients(self) -> dict[str, str]:
        """Admin token from the bootstrap client; an instrument client and an analyst client with their scopes."""
        self.on_step("auth", "admin token from the bootstrap client")
        admin = self.token(self.admin_id, self.admin_secret, "admin")
        self.tokens["admin"] = admin
        roles = {"instrument": "ingest:upload", "analyst": "repository:read repository:write rnaget:read"}
        for role, scope in roles.items():
            client_id = f"demo-{role}-{self.tag}"
            created = self._call(
                "POST",
                self.url("auth", "/admin/clients"),
                ok=(201,),
                token=admin,
                json={
                    "client_id": client_id,
                    "name": f"pipeline {role}",
                    "grant_types": ["client_credentials"],
                    "scopes": scope.split(),
                },
            )
            self.tokens[role] = self.token(client_id, created.json()["client_secret"], scope)
            self.on_step("auth", f"client {client_id}: {scope}")
        return self.tokens

    def upload_run(
        self,
        *,
        clusters: int = 300,
        samples: int = 3,
        tiles: int = 2,
        reads: tuple[int, ...] = (16, 6, 16),
        cycles_per_second: float = 40.0,
    ) -> RunSummary:
        """The simulator writes a run while `seqhub upload run --watch` (the real CLI, a subprocess) streams it."""
        from services.ingest.bcl.simulate import simulate_run

        run_dir = self.work_dir / f"261123_A00123_0042_AH{self.tag.upper()}XX"
        project = f"demo-{self.tag}"
        errors: list[BaseException] = []

        def write() -> None:
            try:
                simulate_run(
                    run_dir,
                    fmt="bcl.gz",
                    clusters=clusters,
                    lanes=1,
                    tiles=tiles,
                    reads=reads,
                    samples=samples,
                    cycles_per_second=cycles_per_second,
                    truth=False,
                    seed=7,
                )
            except BaseException as exc:
                errors.append(exc)

        self.on_step(
            "upload",
            f"simulator writing {run_dir.name}: {clusters} clusters, {samples} samples, "
            f"reads {'+'.join(map(str, reads))}",
        )
        writer = threading.Thread(target=write, name="simulator")
        writer.start()
        env = {**os.environ, "SEQHUB_URL": self.endpoints.root("ingest"), "SEQHUB_TOKEN": self.tokens["instrument"]}
        command = [
            sys.executable,
            "-m",
            "libs.sdk.cli",
            "upload",
            "run",
            str(run_dir),
            "--watch",
            "--quiet",
            "--parallel",
            "3",
            "--stable-seconds",
            "0.5",
            "--project",
            project,
            "--state",
            str(self.work_dir / f"upload-{self.tag}.jsonl"),
        ]
        while not run_dir.exists():  # the agent wants the folder to exist; it waits for RunInfo.xml itself
            time.sleep(0.05)
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=self.timeout)
        finally:
            writer.join()
        if errors:
            raise PipelineError(f"the simulator failed: {errors[0]}")
        if result.returncode != 0:
            raise PipelineError(f"seqhub upload run exited {result.returncode}: {result.stderr.strip()[-500:]}")
        match = re.search(r"run (\S+): (\d+) files, ([\d,]+) bytes", result.stderr)
        if not match:
            raise PipelineError(f"seqhub upload run said nothing about the run: {result.stderr[-500:]}")
        self.on_step("upload", f"run {match[1]}: {match[2]} files, {match[3]} bytes uploaded")
        return RunSummary(run_id=match[1], project=project, samples=samples)

    def wait_demultiplexed(self, run: RunSummary) -> dict[str, Any]:
        self.on_step("demultiplex", f"waiting for run {run.run_id} to be demultiplexed")

        def check() -> dict[str, Any] | None:
            doc: dict[str, Any] = self._call(
                "GET", self.url("ingest", f"/runs/{run.run_id}"), token=self.tokens["admin"]
            ).json()
            if doc["status"] == "failed":
                raise PipelineError(f"run {run.run_id} failed: {doc}")
            return doc if doc["status"] == "demultiplexed" else None

        doc: dict[str, Any] = self._until(f"run {run.run_id} demultiplexed", check)
        self.on_step("demultiplex", f"run {run.run_id}: {doc['status']}")
        return doc

    def _list(self, path: str, **params: Any) -> list[dict[str, Any]]:
        body = self._call(
            "GET",
            self.url("repository", path),
            token=self.tokens["admin"],
            params={"limit": 200, **params},
            headers={"Accept": "application/json"},
        ).json()
        return list(body["resources"])

    def wait_registered(self, run: RunSummary) -> RunSummary:
        """Study (the project), one Sample / Experiment / Run per sample, read through the repository API."""
        self.on_step("register", f"waiting for study {run.project} in the repository")

        def tree() -> dict[str, Any] | None:
            studies = self._list("/studies", alias=run.project)
            if not studies:
                return None
            study = studies[0]
            samples = self._list(f"/studies/{study['accession']}/samples")
            experiments = [e for s in samples for e in self._list(f"/samples/{s['accession']}/experiments")]
            runs = [r for e in experiments for r in self._list(f"/experiments/{e['accession']}/runs")]
            if len(runs) < run.samples:
                return None
            return {"study": study, "samples": samples, "experiments": experiments, "runs": runs}

        found = self._until(f"the repository tree of {run.project}", tree)
        run.study = found["study"]
        run.resources = {kind: len(found[kind]) for kind in ("samples", "experiments", "runs")}
        self.on_step(
            "register",
            f"study {run.study['accession']}: " + ", ".join(f"{n} {kind}" for kind, n in run.resources.items()),
        )
        return run

    def _submit(self, metadata: dict[str, Any], filename: str, content: bytes, media: str) -> dict[str, Any]:
        """POST multipart/mixed; a retry after a lost answer finds the analysis by its alias (409 → GET)."""
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
                json.dumps(metadata).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {media}\r\n"
                f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode(),
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        response = self._call(
            "POST",
            self.url("repository", "/analyses"),
            ok=(201, 409),
            # the alias makes a repeated submission a 409, so a 500 (e.g. a write conflict) is retried safely
            retry_statuses=(500, 502, 503, 504),
            token=self.tokens["analyst"],
            content=body,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}", "Accept": "application/json"},
        )
        if response.status_code == 201:
            return dict(response.json())
        [existing] = self._list("/analyses", alias=metadata["alias"])
        return existing

    def submit_analyses(self, run: RunSummary) -> dict[str, str]:
        dataset = f"demo-{self.tag}"
        study_ref = {"accession": run.study["accession"]} if run.study else None
        self.on_step("submit", f"VCF analysis → beacon dataset {dataset}")
        vcf = self._submit(
            {
                "alias": f"calls-{self.tag}",
                "title": "PCSK9 loss-of-function calls",
                **({"study_ref": study_ref} if study_ref else {}),
                "analysis_type": {"sequence_variation": {"assembly": {"standard": {"refname": "GRCh38"}}}},
                "analysis_attributes": {
                    "analysis_attribute": [
                        {"tag": "access_level", "value": "PUBLIC"},
                        {"tag": "beacon_dataset_id", "value": dataset},
                    ]
                },
            },
            "calls.vcf",
            VCF,
            "text/x-vcf",
        )
        self.on_step("submit", f"VCF analysis {vcf['accession']}")
        self.on_step("submit", "expression analysis (TSV matrix, TPM)")
        expression = self._submit(
            {
                "alias": f"expression-{self.tag}",
                "title": "liver and muscle TPM",
                **({"study_ref": study_ref} if study_ref else {}),
                "analysis_type": {"sequence_annotation": {}},
                "analysis_attributes": {
                    "analysis_attribute": [
                        {"tag": "access_level", "value": "PUBLIC"},
                        {"tag": "kind", "value": "expression"},
                        {"tag": "units", "value": "TPM"},
                        {"tag": "feature_id_column", "value": "gene_id"},
                    ]
                },
            },
            "matrix.tsv",
            MATRIX,
            "text/tab-separated-values",
        )
        self.on_step("submit", f"expression analysis {expression['accession']}")
        return {"dataset": dataset, "vcf": str(vcf["accession"]), "expression": str(expression["accession"])}

    def beacon_query(self, dataset: str, variant: Mapping[str, Any]) -> dict[str, Any]:
        params = {**variant, "assemblyId": "GRCh38", "datasetIds": dataset, "includeDatasetResponses": "ALL"}
        return dict(self._call("GET", self.url("beacon", "/query"), params=params, ok=(200, 400)).json())

    def wait_beacon(self, dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The VCF's variant is found (HIT) once the dataset is indexed; another allele at that site is a MISS."""
        self.on_step("beacon", f"waiting for dataset {dataset} to answer")

        def hit() -> dict[str, Any] | None:
            answer = self.beacon_query(dataset, VARIANT)
            return answer if answer.get("exists") is True else None

        found: dict[str, Any] = self._until(f"beacon dataset {dataset}", hit)
        missed = self.beacon_query(dataset, ABSENT)
        self.on_step(
            "beacon",
            f"{_variant(VARIANT)}: exists={found['exists']}; {_variant(ABSENT)}: exists={missed.get('exists')}",
        )
        return found, missed

    def wait_rnaget(self, accession: str) -> str:
        """The expression slice for one gene, as TSV, once the matrix is imported."""
        self.on_step("rnaget", f"waiting for expression {accession}")

        def sliced() -> str | None:
            response = self._call(
                "GET",
                self.url("rnaget", f"/expressions/{accession}/bytes"),
                ok=(200, 404),
                params={"format": "tsv", "featureIDList": SLICED_GENE},
            )
            return response.text if response.status_code == 200 else None

        text: str = self._until(f"rnaget expression {accession}", sliced)
        self.on_step("rnaget", f"slice {SLICED_GENE}: {text.strip().splitlines()[-1]}")
        return text

    def run_all(self, **sizes: Any) -> dict[str, Any]:
        self.create_clients()
        run = self.upload_run(**sizes)
        self.wait_demultiplexed(run)
        self.wait_registered(run)
        ids = self.submit_analyses(run)
        hit, miss = self.wait_beacon(ids["dataset"])
        matrix = self.wait_rnaget(ids["expression"])
        return {"run": run, "ids": ids, "hit": hit, "miss": miss, "matrix": matrix}


def _variant(v: Mapping[str, Any]) -> str:
    return f"{v['referenceName']}:{v['start']} {v['referenceBases']}>{v['alternateBases']}"


def parse_tsv_slice(text: str) -> dict[str, list[float]]:
    """Rows of an RNAget TSV answer: feature id → values (header and comment lines skipped)."""
    rows: dict[str, list[float]] = {}
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header = lines[0].split("\t")
    numeric = [i for i, name in enumerate(header) if name not in ("GeneID", "GeneName", "gene_id", "gene_name")]
    for line in lines[1:]:
        cells = line.split("\t")
        rows[cells[0]] = [float(cells[i]) for i in numeric]
    return rows


# -- the embedded platform for the demo ---------------------------------------------------------------------


@contextmanager
def embedded_platform(
    var: Path, *, admin_id: str, admin_secret: str, port: int | None = None, log: Path | None = None
) -> Iterator[str]:
    """`python -m services --var VAR` (make run's configuration) on a free port; yields the base URL."""
    from services import platform

    port = port or platform.free_port()
    db_port = platform.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SEQHUB_HTTP_PORT": str(port),
        "SEQHUB_MONGO_URL": f"mongodb://127.0.0.1:{db_port}/",
        "SEQHUB_AUTH_ISSUER": f"{base}/auth",
        "SEQHUB_AUTH_BOOTSTRAP_CLIENT_ID": admin_id,
        "SEQHUB_AUTH_BOOTSTRAP_CLIENT_SECRET": admin_secret,
        "SEQHUB_BUS_URL": "embedded",
    }
    out = (log or var / "platform.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "--var", str(var)], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise PipelineError(f"the platform exited with {process.returncode} (log: {out.name})")
            try:
                if all(httpx.get(f"{base}/{n}/readyz", timeout=2).status_code == 200 for n in SERVICES):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise PipelineError(f"the platform was not ready after 120s (log: {out.name})")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.panel import Panel

    parser = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("SEQHUB_URL"),
        help="use a running platform (needs --admin-id/--admin-secret); default: start one",
    )
    parser.add_argument("--admin-id", default=os.environ.get("SEQHUB_AUTH_BOOTSTRAP_CLIENT_ID", DEMO_ADMIN_ID))
    parser.add_argument(
        "--admin-secret", default=os.environ.get("SEQHUB_AUTH_BOOTSTRAP_CLIENT_SECRET", DEMO_ADMIN_SECRET)
    )
    parser.add_argument("--clusters", type=int, default=2000, help="clusters of the simulated run (default 2000)")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--cycles-per-second", type=float, default=10.0, help="how fast the instrument writes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each step may take (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    console = Console()
    started = time.monotonic()

    status = console.status("starting")

    def step(name: str, detail: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/] [bold cyan]{name:<12}[/] {detail}")
        status.update(f"[bold cyan]{name}[/] {detail}")

    work = Path(tempfile.mkdtemp(prefix="seqhub-demo-"))
    try:
        with _platform(args, work, console) as base:
            pipeline = Pipeline(
                Endpoints.single(base),
                args.admin_id,
                args.admin_secret,
                work / "runs",
                on_step=step,
                timeout=args.timeout,
            )
            pipeline.work_dir.mkdir(parents=True, exist_ok=True)
            with status:  # a spinner with the current step under the log lines (terminals only)
                result = pipeline.run_all(
                    clusters=args.clusters,
                    samples=args.samples,
                    reads=(36, 8, 36),
                    cycles_per_second=args.cycles_per_second,
                )
        hit, miss = result["hit"], result["miss"]
        console.print(
            Panel.fit(
                f"GET /beacon/query {_variant(VARIANT)} (GRCh38, dataset {result['ids']['dataset']})\n"
                f"  exists: [bold green]{hit['exists']}[/]  "
                f"variantCount={hit['datasetAlleleResponses'][0].get('variantCount')} "
                f"callCount={hit['datasetAlleleResponses'][0].get('callCount')} "
                f"frequency={hit['datasetAlleleResponses'][0].get('frequency')}\n"
                f"GET /beacon/query {_variant(ABSENT)}\n  exists: [bold red]{miss.get('exists')}[/]",
                title="Beacon answers",
            )
        )
        console.print(
            Panel.fit(
                f"GET /rnaget/expressions/{result['ids']['expression']}/bytes?format=tsv&featureIDList={SLICED_GENE}\n"
                + result["matrix"].rstrip(),
                title="RNAget slice",
            )
        )
        console.print(f"[bold green]done[/] in {time.monotonic() - started:.0f}s — the whole pipeline, end to end.")
        return 0
    except PipelineError as exc:
        console.print(f"[red]demo failed:[/] {exc} (files kept in {work})")
        args.keep = True
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; the demo platform was stopped")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _platform(args: argparse.Namespace, work: Path, console: Any) -> Iterator[str]:
    if args.url:
        console.print(f"using the platform at {args.url}")
        yield args.url.rstrip("/")
        return
    console.print(f"starting the embedded platform (python -m services --var {work / 'var'}) …")
    (work / "var").mkdir(parents=True)
    with embedded_platform(work / "var", admin_id=args.admin_id, admin_secret=args.admin_secret) as base:
        console.print(f"platform ready at {base}")
        yield base


if __name__ == "__main__":
    sys.exit(main())
