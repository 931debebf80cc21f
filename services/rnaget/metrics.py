"""Domain metrics of the rnaget service (`seqhub_rnaget_*`), in the process-wide default registry.

Labels are low-cardinality only (the matrix format), never matrix ids or filters.
"""

from __future__ import annotations

from prometheus_client import Counter

BYTES_STREAMED = Counter(
    "seqhub_rnaget_bytes_streamed",
    "Matrix bytes written to clients (expression slices and whole matrices), by format (loom, tsv).",
    ["format"],
)
