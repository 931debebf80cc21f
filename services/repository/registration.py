"""Register a demultiplexed run: Study -> Sample -> Experiment -> Run, from a SamplesDemultiplexed event.

Every resource gets a deterministic alias (project; project:sample id; run name:sample id), and the alias
is unique per owner, so a redelivered event finds everything in place and changes nothing. Samples of one
project that appear in a later run are reused. Registered resources are private to the run's owner until
they release them (PATCH visibility). Unknown organisms get NCBI taxon 32644 ("unidentified"). No I/O
besides the store port.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from libs.common.events import DemultiplexedSample, FastqFile, SamplesDemultiplexedData

from . import metrics, service
from .models import DataFile, Parents, Resource, ResourceType, Visibility

log = logging.getLogger(__name__)

UNIDENTIFIED_TAXON = 32644
ILLUMINA_MODELS = {
    "novaseq 6000": "Illumina NovaSeq 6000",
    "novaseq x": "Illumina NovaSeq X",
    "novaseq x plus": "Illumina NovaSeq X Plus",
    "miseq": "Illumina MiSeq",
    "miniseq": "Illumina MiniSeq",
    "iseq 100": "Illumina iSeq 100",
    "hiseq x": "Illumina HiSeq X",
    "hiseq 4000": "Illumina HiSeq 4000",
    "hiseq 3000": "Illumina HiSeq 3000",
    "hiseq 2500": "Illumina HiSeq 2500",
    "hiseq 2000": "Illumina HiSeq 2000",
    "nextseq 500": "NextSeq 500",
    "nextseq 550": "NextSeq 550",
    "nextseq 1000": "NextSeq 1000",
    "nextseq 2000": "NextSeq 2000",
}


@dataclass
class Registration:
    """What a run produced in the repository (existing resources included)."""

    studies: list[Resource] = field(default_factory=list)
    samples: list[Resource] = field(default_factory=list)
    experiments: list[Resource] = field(default_factory=list)
    runs: list[Resource] = field(default_factory=list)
    created: int = 0


def instrument_model(name: str | None) -> str:
    """The XSD's Illumina INSTRUMENT_MODEL value for a RunInfo instrument name, or ``unspecified``."""
    key = (name or "").lower().removeprefix("illumina ").strip()
    return ILLUMINA_MODELS.get(key, "unspecified")


async def register_demultiplexed_run(data: SamplesDemultiplexedData, *, store: service.ResourceStore) -> Registration:
    result = Registration()
    studies: dict[str, Resource] = {}
    for sample in data.samples:
        project = sample.project or data.project or data.run_name
        if project not in studies:
            studies[project] = await _ensure(
                ResourceType.STUDY, _study_body(project), data.owner, Parents(), (), store, result
            )
            result.studies.append(studies[project])
        study = studies[project]
        sample_res = await _ensure(
            ResourceType.SAMPLE,
            _sample_body(project, sample),
            data.owner,
            Parents(study=study.accession),
            (),
            store,
            result,
        )
        experiment = await _ensure(
            ResourceType.EXPERIMENT,
            _experiment_body(data, sample, study.accession, sample_res.accession),
            data.owner,
            Parents(study=study.accession, sample=sample_res.accession),
            (),
            store,
            result,
        )
        run = await _ensure(
            ResourceType.RUN,
            _run_body(data, sample, experiment.accession),
            data.owner,
            Parents(study=study.accession, sample=sample_res.accession, experiment=experiment.accession),
            tuple(_data_file(f) for f in sample.files),
            store,
            result,
        )
        result.samples.append(sample_res)
        result.experiments.append(experiment)
        result.runs.append(run)
    if result.created:
        metrics.RUNS_REGISTERED.inc()
    log.info(
        "run registered",
        extra={"run_id": data.run_id, "created": result.created, "samples": len(result.samples)},
    )
    return result


async def _ensure(
    rtype: ResourceType,
    body: dict[str, Any],
    owner: str,
    parents: Parents,
    files: tuple[DataFile, ...],
    store: service.ResourceStore,
    result: Registration,
) -> Resource:
    existing = await store.get_by_alias(rtype, owner, body["alias"])
    if existing is not None:
        return existing
    body = service.with_files(rtype, body, files)
    validated = await service.validate(body, rtype)
    try:
        created = await service.insert_new(
            rtype,
            validated,
            owner=owner,
            parents=parents,
            visibility=Visibility.PRIVATE,
            files=files,
            store=store,
        )
    except service.AliasTaken:  # a concurrent delivery of the same event won the race
        found = await store.get_by_alias(rtype, owner, body["alias"])
        assert found is not None
        return found
    result.created += 1
    return created


def _attributes(container: str, values: dict[str, Any]) -> dict[str, Any]:
    items = [{"tag": tag, "value": str(value)} for tag, value in values.items() if value not in (None, "", [])]
    return {container: {container.removesuffix("s"): items}} if items else {}


def _study_body(project: str) -> dict[str, Any]:
    return {
        "alias": project,
        "descriptor": {
            "study_title": f"Sequencing project {project}",
            "study_type": {"existing_study_type": "Other"},
            "center_project_name": project,
        },
    }


def _sample_body(project: str, sample: DemultiplexedSample) -> dict[str, Any]:
    return {
        "alias": f"{project}:{sample.sample_id}",
        "title": sample.sample_name,
        "sample_name": {"taxon_id": UNIDENTIFIED_TAXON},
        **_attributes("sample_attributes", {"sample_id": sample.sample_id, "sample_name": sample.sample_name}),
    }


def _experiment_body(
    data: SamplesDemultiplexedData, sample: DemultiplexedSample, study: str, sample_accession: str
) -> dict[str, Any]:
    layout: dict[str, Any] = {"paired": {}} if data.run.paired else {"single": {}}
    reads = ",".join(str(n) for n in data.run.read_lengths)
    return {
        "alias": f"{data.run_name}:{sample.sample_id}",
        "title": f"Illumina library {sample.sample_name} of run {data.run_name}",
        "study_ref": {"accession": study},
        "design": {
            "design_description": f"Library {sample.sample_name} sequenced on flow cell {data.flowcell}",
            "sample_descriptor": {"accession": sample_accession},
            "library_descriptor": {
                "library_name": sample.sample_name,
                "library_strategy": "OTHER",
                "library_source": "OTHER",
                "library_selection": "unspecified",
                "library_layout": layout,
            },
        },
        "platform": {"illumina": {"instrument_model": instrument_model(data.run.instrument_model)}},
        **_attributes(
            "experiment_attributes",
            {
                "index": sample.index,
                "index2": sample.index2,
                "read_lengths": reads,
                "index_lengths": ",".join(str(n) for n in data.run.index_lengths),
                "instrument": data.instrument,
                "instrument_model": data.run.instrument_model,
            },
        ),
    }


def _run_body(data: SamplesDemultiplexedData, sample: DemultiplexedSample, experiment: str) -> dict[str, Any]:
    return {
        "alias": f"{data.run_name}:{sample.sample_id}",
        "title": f"{sample.sample_name} from run {data.run_name}",
        "experiment_ref": {"accession": experiment},
        **_attributes(
            "run_attributes",
            {
                "run_id": data.run_id,
                "flowcell": data.flowcell,
                "lanes": ",".join(map(str, sample.lanes)),
                "read_count": sample.read_count,
                "base_count": sample.base_count,
                "q30_fraction": f"{sample.q30_fraction:.4f}",
            },
        ),
    }


def _data_file(fastq: FastqFile) -> DataFile:
    name = fastq.uri.rsplit("/", 1)[-1]
    return DataFile(
        name=name,
        uri=fastq.uri,
        size=fastq.size,
        sha256=fastq.sha256,
        content_type="application/gzip" if name.endswith(".gz") else "text/plain",
    )
