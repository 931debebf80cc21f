"""Prometheus side: the rules pass `promtool check rules` and their unit tests, the tests catch a broken
rule, the operator CR matches the rules file, the Grafana dashboard's queries parse and use only metrics
seqhub exports, and `promtool check metrics` works as a gate (self-test + libs/common's registry)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tooling import DASHBOARD, OBSERVABILITY, RULES, RULES_TEST, promtool_check_metrics, run, tool

# The metric catalogue the services export (docs/operations.md); the dashboard and rules may use only these
# (plus histogram/counter suffixes and Prometheus' own `up` / `ALERTS`).
METRICS = {
    "http_server_requests_total",
    "http_server_request_duration_seconds",
    "http_server_requests_in_progress",
    "seqhub_messages_published_total",
    "seqhub_messages_consumed_total",
    "seqhub_message_processing_seconds",
    "seqhub_consumer_up",
    "seqhub_dead_letters",
    "seqhub_outbox_backlog_age_seconds",
    "seqhub_outbox_pending",
    "seqhub_ingest_runs",
    "seqhub_ingest_upload_bytes_total",
    "seqhub_ingest_active_patches",
    "seqhub_demux_clusters_total",
    "seqhub_demux_duration_seconds",
    "seqhub_beacon_variants_indexed",
    "seqhub_beacon_queries_total",
    "seqhub_rnaget_bytes_streamed_total",
    "seqhub_repository_resources_written_total",
}
BUILTIN = {"up", "ALERTS"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, matchers, ranges, grouping clauses and function
    names removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # exponent of a number literal (1e9)
        if e[m.end() :].lstrip().startswith("(") or m.group() in KEYWORDS:
            continue
        names.add(m.group())
    return names


def _promtool(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    proc = run([tool("promtool"), *args], timeout=60, cwd=cwd)
    return proc.returncode, proc.stdout + proc.stderr


def test_rules_pass_promtool_check() -> None:
    code, out = _promtool("check", "rules", str(RULES))
    assert code == 0, out
    assert "SUCCESS" in out


def test_rules_unit_tests_pass() -> None:
    code, out = _promtool("test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert code == 0, out
    assert "SUCCESS" in out


def test_every_alert_has_a_firing_case_and_a_quiet_case() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    cases = [c for t in yaml.safe_load(RULES_TEST.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts == firing
    assert alerts <= quiet | {"SeqhubHighLatencyP99", "SeqhubQueueWithoutConsumer"}
    required = {
        "SeqhubDeadLettersPresent",
        "SeqhubOutboxBacklogStale",
        "SeqhubHighErrorRatio",
        "SeqhubHighLatencyP99",
        "SeqhubRunUploadStalled",
        "SeqhubRunDemuxStalled",
        "SeqhubRunStalled",
        "SeqhubConsumerDown",
    }
    assert required <= alerts
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
                assert rule["annotations"]["runbook"].endswith("#" + rule["alert"].lower()), rule["alert"]


def test_runbook_anchors_exist_in_the_operations_doc() -> None:
    doc = (OBSERVABILITY.parents[1] / "docs" / "operations.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", doc, flags=re.M)}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"].lower() in headings, rule["alert"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "service:http_server_requests_errors:ratio_rate5m > 0.05",
            "service:http_server_requests_errors:ratio_rate5m > 0.5",
        ),
        ("expr: max by (queue) (seqhub_dead_letters) > 0", "expr: max by (queue) (seqhub_dead_letters) > 5"),
        (
            "max by (service) (seqhub_outbox_backlog_age_seconds) > 60",
            "max by (service) (seqhub_outbox_backlog_age_seconds) > 600",
        ),
        (
            "unless\n      sum(increase(seqhub_demux_clusters_total[30m])) > 0",
            "and\n      sum(increase(seqhub_demux_clusters_total[30m])) > 0",
        ),
    ],
)
def test_rule_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    text = RULES.read_text()
    assert old in text
    (tmp_path / RULES.name).write_text(text.replace(old, new))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    code, out = _promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert code == 1
    assert "FAILED" in out


def test_prometheusrule_cr_matches_the_rules_file() -> None:
    spec = importlib.util.spec_from_file_location("render_prometheusrule", OBSERVABILITY / "render_prometheusrule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (OBSERVABILITY / "prometheusrule.yaml").read_text()
    assert committed == module.render_text(), "run: python deploy/observability/render_prometheusrule.py"


# --- dashboard --------------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    return found


def test_dashboard_layout_is_well_formed() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "seqhub-overview"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {panel['title']!r} overlaps another"
                cells.add((x, y))
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "service"}


def test_dashboard_shows_every_exported_metric_family() -> None:
    used = " ".join(expr for _, expr in _queries(_dashboard()))
    # every metric of the catalogue appears (histograms through their _bucket series)
    missing = {m for m in METRICS - {"http_server_requests_in_progress", "seqhub_outbox_pending"} if m not in used}
    assert missing == set()


def test_dashboard_queries_parse_and_use_known_metrics(tmp_path: Path) -> None:
    rules = []
    for i, (title, expr) in enumerate(_queries(_dashboard())):
        concrete = expr.replace("$__rate_interval", "5m").replace("$service", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete, "labels": {"panel": title}})
        for name in metric_names(concrete):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in METRICS | BUILTIN or base in METRICS, f"{title}: unknown metric {name}"
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    code, out = _promtool("check", "rules", str(path))
    assert code == 0, out


def test_metric_name_extraction() -> None:
    assert metric_names('sum by (service, le) (rate(x_bucket{a="b",c=~"5.."}[5m])) / y > 1e9 unless z') == {
        "x_bucket",
        "y",
        "z",
    }


def test_dashboard_query_check_rejects_a_typo(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {
                                "record": "x:y",
                                "expr": "sum by (service (rate(http_server_requests_total[5m]))",
                            }
                        ],
                    }
                ]
            }
        )
    )
    code, out = _promtool("check", "rules", str(path))
    assert code == 1 and "parse error" in out


# --- metrics exposition gate --------------------------------------------------------------------------------


def test_promtool_check_metrics_gate_works() -> None:
    bad = promtool_check_metrics("# HELP x A counter.\n# TYPE x counter\nx 1\n")
    assert bad.returncode == 3 and "_total" in bad.output
    garbage = promtool_check_metrics("this is { not an exposition\n")
    assert garbage.returncode == 1
    good = promtool_check_metrics(
        "# HELP seqhub_upload_bytes_total Bytes received.\n# TYPE seqhub_upload_bytes_total counter\n"
        "seqhub_upload_bytes_total 42\n"
    )
    assert good.clean, good.output


def test_libs_common_metrics_exposition_is_lint_clean() -> None:
    """The shared registry (RED + bus metrics of libs/common) as every service exposes it."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.metrics import MetricWrapperBase

    from libs.common import metrics

    registry = CollectorRegistry()
    families = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    assert families, "no metric objects found in libs.common.metrics"
    for family in families:
        registry.register(family)
    text = generate_latest(registry).decode()
    result = promtool_check_metrics(text)
    assert result.clean, result.output
    # every RED and bus metric the rules and the dashboard rely on is exported by libs/common
    for name in (
        "http_server_requests_total",
        "http_server_request_duration_seconds",
        "seqhub_messages_published_total",
        "seqhub_messages_consumed_total",
        "seqhub_message_processing_seconds",
        "seqhub_consumer_up",
        "seqhub_dead_letters",
        "seqhub_outbox_backlog_age_seconds",
    ):
        assert f"# TYPE {name}" in text or f"# TYPE {name.removesuffix('_total')}" in text, name


def test_rules_use_only_known_metrics_and_their_own_recordings() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    for group in groups:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert name in METRICS | BUILTIN | recorded or base in METRICS, (
                    rule.get("alert") or rule["record"],
                    name,
                )
