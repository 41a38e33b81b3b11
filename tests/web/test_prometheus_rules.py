"""examples/prometheus-rules.yml names only metrics that ``GET /metrics`` exposes.

Each rule's expression is parsed as PromQL (promql-parser, the Rust parser's Python binding),
every metric it selects is collected from the syntax tree, and each must appear in a real
scrape of the bot's exposition (with the database gauges read)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.web.metrics import refresh_gauges, render
from storage.db import Database

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus-rules.yml"
LEAVES = (promql_parser.NumberLiteral, promql_parser.StringLiteral)


def _selected(node: Any) -> Iterator[str]:
    """Every metric name a PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node.name
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from _selected(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _selected(node.lhs)
        yield from _selected(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from _selected(arg)
    elif isinstance(node, LEAVES) or node is None:
        return
    elif hasattr(node, "expr"):  # aggregation, parentheses, unary minus, subquery
        yield from _selected(node.expr)
    else:
        raise AssertionError(f"a PromQL node this test does not know: {type(node).__name__}")


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


async def _exposed(db: Database) -> set[str]:
    await refresh_gauges(db)
    body, _ = await render(db)
    names: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        # a labelled metric with no series yet has HELP and TYPE lines but no sample
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        names.update(sample.name for sample in family.samples)
    return names


def test_the_rules_cover_what_operators_ask_for() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    assert {
        "BrincrBotNotSweeping",
        "BrincrBotOutboxBacklogGrowing",
        "BrincrBotSlackDeliveryFailing",
        "BrincrBotPagerDutyFailing",
        "BrincrBotManyCustomersNotHealthy",
    } <= alerts
    for rule in _rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


async def test_every_metric_a_rule_names_is_exposed(db: Database) -> None:
    exposed = await _exposed(db)
    for rule in _rules():
        names = set(_selected(promql_parser.parse(rule["expr"])))
        assert names, rule["alert"]
        assert names <= exposed, f"{rule['alert']} names {sorted(names - exposed)}"


def test_the_check_sees_a_misspelt_metric() -> None:
    expr = "time() - max(brincr_last_sweep_completed_timestamp) > 300"
    assert set(_selected(promql_parser.parse(expr))) == {"brincr_last_sweep_completed_timestamp"}
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (environment (brincr_customers)")


async def test_build_info_and_no_created_series(db: Database) -> None:
    from bot.core.metrics import VERSION

    exposed = await _exposed(db)
    assert not [name for name in exposed if name.endswith("_created")]
    body, _ = await render(db)
    assert f'brincr_build_info{{version="{VERSION}"}} 1.0' in body.decode()
    assert VERSION not in ("", "unknown")
