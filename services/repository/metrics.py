"""Domain metrics of the repository (prometheus_client default registry, low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import Counter

RESOURCES_WRITTEN = Counter(
    "seqhub_repository_resources_written_total",
    "Resources created, replaced, patched or deleted.",
    ["type", "operation"],
)
INVALID_DOCUMENTS = Counter(
    "seqhub_repository_invalid_documents_total", "Documents refused by model or XSD validation.", ["type"]
)
RUNS_REGISTERED = Counter(
    "seqhub_repository_runs_registered_total", "Demultiplexed runs turned into Study/Sample/Experiment/Run trees."
)
