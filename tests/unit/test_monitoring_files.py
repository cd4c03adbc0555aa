"""deploy/grafana-dashboard.json and deploy/prometheus-alerts.yml load and only use metrics the hub exports.

(`promtool check rules` / `promtool test rules deploy/prometheus-alerts.test.yml` check the PromQL itself.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hub.metrics import HubMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_METRIC = re.compile(r"\bhub_[a-z_]+\b")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in HubMetrics.create().registry.collect():
        suffixes = _SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_has_a_severity_and_a_sentence_saying_what_to_do() -> None:
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {"HubDeadLetterQueueGrowing", "HubOldestMessageTooOld", "HubAdapterFailing"} <= names
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 40, rule["alert"]


def test_alerts_and_dashboard_use_only_metrics_the_hub_exports() -> None:
    exported = _exported_names()
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = [rule["expr"] for rule in _alert_rules()]
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {name for expr in expressions for name in _METRIC.findall(expr)}
    assert used, "the files use no hub metric at all"
    assert used <= exported, f"not exported by hub.metrics: {sorted(used - exported)}"


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] == "lgsp-hub"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "target"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
