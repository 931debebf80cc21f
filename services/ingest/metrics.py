"""Domain metrics of the ingest service (`seqhub_ingest_*`), in the process-wide default registry.

Labels are low-cardinality only (outcome names), never run or upload ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPLOAD_BYTES = Counter("seqhub_ingest_upload_bytes", "Bytes durably stored from tus request bodies.")
UPLOAD_REQUESTS = Counter(
    "seqhub_ingest_upload_patches", "tus PATCH/creation-with-upload bodies, by outcome.", ["outcome"]
)
UPLOAD_SECONDS = Histogram(
    "seqhub_ingest_upload_patch_seconds",
    "Time to receive and store one tus request body.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
ACTIVE_UPLOADS = Gauge("seqhub_ingest_active_patches", "tus request bodies being received right now.")
UPLOADS_EXPIRED = Counter("seqhub_ingest_uploads_expired", "Unfinished uploads removed after their expiry.")
ORPHAN_PARTS_REMOVED = Counter(
    "seqhub_ingest_orphan_parts_removed",
    "Part files with no upload document (a process died receiving a whole-file creation-with-upload) and "
    "concatenation temporaries of a process killed midway, removed.",
)
RUNS_UPLOADED = Counter("seqhub_ingest_runs_uploaded", "Runs whose every file arrived and was verified.")
RUNS_STALLED = Counter("seqhub_ingest_runs_stalled", "Runs marked stalled for receiving no file past the deadline.")
RUNS = Gauge(
    "seqhub_ingest_runs",
    "Runs by status, as last counted by the ingest sweep (one aggregation over the runs collection).",
    ["status"],
)
DEMUX_CLUSTERS = Counter("seqhub_demux_clusters", "Clusters passing filter written as FASTQ by the demultiplexer.")
DEMUX_SECONDS = Histogram(
    "seqhub_demux_duration_seconds",
    "Wall time of one successful demultiplexing (conversion process, reused results excluded).",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)


def set_run_counts(counts: dict[str, int], statuses: list[str]) -> None:
    """Publish the per-status run counts; every known status gets a sample (0 when absent) so alerts
    comparing `> 0` see a series that goes back to 0 instead of vanishing."""
    for status in {*statuses, *counts}:
        RUNS.labels(status=status).set(counts.get(status, 0))
