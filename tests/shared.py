"""Where the read-only reference pack (`shared/`: specs, real data) is: beside the checkout, as CI lays it out."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [Path(os.environ["SEQHUB_SHARED"])] if os.environ.get("SEQHUB_SHARED") else []
_CANDIDATES += [_ROOT.parent / "shared", Path("/work/shared")]
SHARED = next((p for p in _CANDIDATES if (p / "specs").is_dir()), _CANDIDATES[0])
