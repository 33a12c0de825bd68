"""Write deploy/k8s/base/prometheusrule.yaml — the alerting rules of deploy/prometheus/alerts.yml as a PrometheusRule for the
Prometheus Operator (alerts.yml is the one definition; the tests check that the two agree).

    python scripts/prometheusrule.py
"""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE, TARGET = ROOT / "deploy/prometheus/alerts.yml", ROOT / "deploy/k8s/base/prometheusrule.yaml"


def rule_object() -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "sentiment-api"},
            "spec": {"groups": yaml.safe_load(SOURCE.read_text())["groups"]}}


def render() -> str:
    return ("# Generated from deploy/prometheus/alerts.yml by scripts/prometheusrule.py: edit that file, then run this script.\n"
            + yaml.safe_dump(rule_object(), sort_keys=False, allow_unicode=True, width=1000))


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}")
