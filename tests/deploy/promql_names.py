"""Metric and label names referenced by a PromQL expression, and the expressions the deploy files hold.

Not a PromQL parser: it removes what cannot be a metric name (strings, label matchers, range and
subquery brackets, grouping clauses, numbers, function calls, keywords) and keeps the identifiers
left. tests/deploy/test_promql_names.py pins the cases the dashboard and rules use; the live
Prometheus test evaluates every expression for real, which catches what this misses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE)
_OFFSET = re.compile(r"\boffset\s+-?\w+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "atan2"}  # fmt: skip

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "5m", "$model": ".*"}
"""What Grafana substitutes before a query reaches Prometheus, with values a test can evaluate."""


@dataclass(frozen=True)
class Expression:
    source: str
    """Where it lives, for test ids and messages: `dashboard: <panel> (<refId>)` or `alert: <name>`."""
    promql: str


def without_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    text = without_strings(expr)
    text = _MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    return {
        m.group(1)
        for m in _IDENTIFIER.finditer(text)
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS
    }


def label_names(expr: str) -> set[str]:
    """Labels used in matchers and in by/without/on/ignoring/group_* clauses."""
    text = without_strings(expr)
    labels = {m.group(1) for body in _MATCHERS.findall(text) for m in _MATCHER_LABEL.finditer(body)}
    for _, listed in _GROUPING.findall(text):
        labels.update(name.strip() for name in listed.split(",") if name.strip())
    return labels


def with_grafana_variables(expr: str) -> str:
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    return expr


def dashboard_expressions(path: Path) -> list[Expression]:
    """Every PromQL query in a Grafana dashboard: panel targets (rows included) and query variables."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    found: list[Expression] = []

    def visit(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append(
                        Expression(f"dashboard: {panel['title']} ({target['refId']})", target["expr"])
                    )
            visit(panel.get("panels", []))

    visit(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and text:
            # label_values(metric, label) is Grafana's, not PromQL: its first argument is the series.
            inner = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text)
            found.append(
                Expression(f"dashboard variable: {variable['name']}", inner.group(1) if inner else text)
            )
    return found


def rule_expressions(path: Path) -> list[Expression]:
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [
        Expression(
            f"{'alert' if 'alert' in rule else 'record'}: {rule.get('alert') or rule.get('record')}",
            rule["expr"],
        )
        for group in groups
        for rule in group["rules"]
    ]
