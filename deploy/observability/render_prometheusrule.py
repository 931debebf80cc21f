"""Write prometheusrule.yaml (Prometheus operator CR) from prometheus/seqhub-rules.yaml.

The plain rule file is the source of truth (promtool checks and tests it); the CR wraps the same
groups. Run after editing the rules:  python deploy/observability/render_prometheusrule.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "prometheus" / "seqhub-rules.yaml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = (
    "# GENERATED from prometheus/seqhub-rules.yaml by render_prometheusrule.py:\n"
    "# edit the rules file, not this one.\n"
    "# Its 'prometheus' label must match your Prometheus' ruleSelector (overlays may patch it).\n"
)


def render(rules: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(rules, dict) or not isinstance(rules.get("groups"), list):
        raise ValueError(f"{RULES}: expected a mapping with a 'groups' list")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "seqhub",
            "labels": {"app.kubernetes.io/component": "monitoring", "prometheus": "seqhub"},
        },
        "spec": {"groups": rules["groups"]},
    }


def render_text() -> str:
    doc = render(yaml.safe_load(RULES.read_text(encoding="utf-8")))
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=110, explicit_start=True)


def main() -> int:
    text = render_text()
    tmp = TARGET.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(TARGET)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
