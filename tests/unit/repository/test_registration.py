"""A SamplesDemultiplexed event becomes Study -> Sample -> Experiment -> Run, once."""

from __future__ import annotations

from libs.common.events import (
    DemultiplexedRunSummary,
    DemultiplexedSample,
    FastqFile,
    SamplesDemultiplexedData,
)
from services.repository.models import ResourceType, Visibility
from services.repository.registration import instrument_model, register_demultiplexed_run
from services.repository.sra import gmi_to_xml

from .fakes import FakeResourceStore


def event_data(project: str | None = "PRJ-A") -> SamplesDemultiplexedData:
    samples = [
        DemultiplexedSample(
            sample_id=f"S{i}",
            sample_name=f"name{i}",
            sample_number=i,
            project=None,
            index="ACGTACGT",
            index2="TTGGCCAA",
            lanes=[1],
            read_count=1000 * i,
            base_count=150000 * i,
            q30_fraction=0.93,
            files=[
                FastqFile(
                    read=r,
                    lane=None,
                    uri=f"store:demux/run1/name{i}_S{i}_{r}_001.fastq.gz",
                    size=100 + i,
                    sha256=f"{i:x}" * 64,
                    reads=1000 * i,
                )
                for r in ("R1", "R2")
            ],
        )
        for i in (1, 2)
    ]
    return SamplesDemultiplexedData(
        run_id="run1",
        run_name="231123_M00001_0001_000000000-ABCDE",
        instrument="M00001",
        flowcell="ABCDE",
        project=project,
        owner="alice",
        output_root_uri="store:demux/run1/",
        run=DemultiplexedRunSummary(
            instrument_model="MiSeq", read_lengths=[151, 151], index_lengths=[8, 8], paired=True
        ),
        samples=samples,
        total_clusters_pf=3000,
    )


async def test_full_tree_is_built_once_even_when_delivered_twice() -> None:
    store = FakeResourceStore()
    first = await register_demultiplexed_run(event_data(), store=store)
    assert first.created == 1 + 2 + 2 + 2
    counts = {t: sum(1 for (rt, _) in store.items if rt is t) for t in ResourceType}
    snapshot = dict(store.items)
    again = await register_demultiplexed_run(event_data(), store=store)
    assert again.created == 0 and store.items == snapshot
    assert counts[ResourceType.STUDY] == 1 and counts[ResourceType.RUN] == 2

    [study] = first.studies
    assert study.alias == "PRJ-A" and study.visibility is Visibility.PRIVATE
    sample, experiment, run = first.samples[0], first.experiments[0], first.runs[0]
    assert sample.parents.study == study.accession
    assert experiment.parents.sample == sample.accession
    assert experiment.body["platform"] == {"illumina": {"instrument_model": "Illumina MiSeq"}}
    assert "paired" in experiment.body["design"]["library_descriptor"]["library_layout"]
    assert run.parents.experiment == experiment.accession and run.parents.study == study.accession
    files = run.body["data_block"]["files"]["file"]
    assert [f["checksum"] for f in files] == ["1" * 64, "1" * 64]
    assert {f.uri for f in run.files} == {f.uri for f in event_data().samples[0].files}
    for resource in (study, sample, experiment, run):  # every generated document is schema-valid SRA XML
        assert gmi_to_xml([resource.body], resource.rtype).startswith(b"<?xml")


async def test_run_without_project_uses_the_run_name() -> None:
    store = FakeResourceStore()
    result = await register_demultiplexed_run(event_data(project=None), store=store)
    assert result.studies[0].alias == "231123_M00001_0001_000000000-ABCDE"


def test_instrument_models_map_to_the_xsd_enumeration() -> None:
    assert instrument_model("NovaSeq 6000") == "Illumina NovaSeq 6000"
    assert instrument_model("NextSeq 2000") == "NextSeq 2000"
    assert instrument_model("Some future box") == "unspecified"
    assert instrument_model(None) == "unspecified"
