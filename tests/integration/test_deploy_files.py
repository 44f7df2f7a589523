"""deploy/: the alert rules and the dashboard are well-formed, their PromQL parses, and every metric they
name is one the worker, the sink or the notifier exports (a renamed metric fails here, not in production)."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from processors.live.metrics import WorkerMetrics
from processors.project import SinkMetrics
from processors.runtime.state_store import CacheBudget
from processors.webhooks.notifier import NotifyMetrics
from tests.conftest import ROOT

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
DURATION = re.compile(r"^\d+[smhd]$")


def _exported() -> set[str]:
    worker = WorkerMetrics()
    worker.watch_state(CacheBudget(), list)
    registries: list[CollectorRegistry] = [worker.registry, SinkMetrics().registry, NotifyMetrics().registry]
    return {
        family.name + suffix
        for registry in registries for family in registry.collect() for suffix in SUFFIXES[family.type]
    }


def _named(expr: str) -> set[str]:
    return set(re.findall(r"\bspoc_[a-z_]+\b", expr))


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((ROOT / "deploy" / "prometheus" / "spoc-alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "deploy" / "grafana" / "spoc-ledger.json").read_text())
    return loaded


def test_every_alert_rule_is_complete_parses_and_names_exported_metrics() -> None:
    exported, rules = _exported(), _rules()
    assert len(rules) >= 8
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
        promql_parser.parse(rule["expr"])  # raises on a syntax error
        assert _named(rule["expr"]) and _named(rule["expr"]) <= exported, rule["alert"]
    # What the issue asks to alert on: lag, dead letters, restore time, webhook failures.
    covered = set().union(*(_named(rule["expr"]) for rule in rules))
    assert {"spoc_consumer_lag", "spoc_events_dead_lettered_total", "spoc_partition_restore_seconds",
            "spoc_webhook_dead_lettered_total", "spoc_sink_lag"} <= covered


def test_the_dashboard_is_importable_and_every_query_names_exported_metrics() -> None:
    exported, dashboard = _exported(), _dashboard()
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 30
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphs = [p for p in panels if p["type"] != "row"]
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            promql_parser.parse(target["expr"].replace("$__rate_interval", "5m"))
            assert _named(target["expr"]) <= exported and _named(target["expr"]), panel["title"]
    # Panels do not overlap on the 24-column grid.
    cells = [(x, y) for p in panels for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells)) and all(x < 24 for x, _ in cells)
    shown = set().union(*(_named(t["expr"]) for p in graphs for t in p["targets"]))
    assert len(shown) >= 15


@pytest.mark.parametrize("expr", ["sum(spoc_consumer_lag", "rate(spoc_events_processed_total)"])
def test_the_parser_rejects_what_prometheus_would(expr: str) -> None:
    with pytest.raises(Exception, match=r"."):
        promql_parser.parse(expr)
