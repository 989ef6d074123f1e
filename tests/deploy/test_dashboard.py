"""The Grafana dashboard in deploy/ is built on the names the server exports: every query in
it names only metrics `convertly.metrics` declares (and tests/api/test_observability.py
checks that a scrape shows exactly those)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convertly import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "convertly-dashboard.json"
METRIC = re.compile(r"\bconvertly_[a-z0-9_]+")


def _queries(node: Any) -> Iterator[str]:
    """Every PromQL string in the dashboard: panel targets and templating queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition", "query") and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def test_every_dashboard_query_names_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [q for q in _queries(dashboard) if q != "prometheus"]  # the datasource picker
    assert len(queries) >= 10
    used: set[str] = set()
    for query in queries:
        names = set(METRIC.findall(query))
        assert names, f"a query names no convertly metric: {query}"
        assert names <= metrics.EXPORTED, f"not exported: {names - metrics.EXPORTED} in {query}"
        used |= names
    # Every family is on the dashboard (a histogram through at least one of its series).
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in metrics.EXPORTED}
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert families == shown


def test_panels_have_titles_and_distinct_ids() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert all(panel["title"] and panel["targets"] for panel in panels)
    assert len({panel["id"] for panel in panels}) == len(panels)
