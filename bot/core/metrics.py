"""Prometheus metrics (``GET /metrics``).

Counters and histograms are updated where things happen (checks, the outbox sender, the
upstream clients). The gauges that describe the database (customers per state, open incidents,
outbox backlog) are defined here and set by ``/metrics`` (:mod:`bot.web.metrics`) when it is
scraped, so every replica reports the same fleet-wide numbers.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics

# Counters and histograms would also expose a ``*_created`` series each (the time the process
# created them): noise that doubles the series count and that nobody alerts on.
disable_created_metrics()


def _version() -> str:
    try:
        return metadata.version("brincr-bot")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


VERSION = _version()
BUILD_INFO = Info("brincr_build", "The running brincr-bot's version (always 1)")
BUILD_INFO.info({"version": VERSION})

CHECKS = Counter("brincr_checks_total", "Health checks run, by outcome state", ["state"])
CHECK_LATENCY = Histogram(
    "brincr_check_duration_seconds",
    "Wall time of one check (token request + probe)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_REQUESTS = Counter(
    "brincr_upstream_requests_total",
    "Requests to Visma Connect, the Brincr API and Slack, by service and outcome",
    ["service", "outcome"],
)
RATE_LIMITED = Counter(
    "brincr_upstream_rate_limited_total", "HTTP 429 answers, by service", ["service"]
)
OUTBOX_DELIVERED = Counter("brincr_outbox_delivered_total", "Slack notifications delivered")
OUTBOX_FAILURES = Counter(
    "brincr_outbox_delivery_failures_total", "Failed Slack delivery attempts", ["permanent"]
)
ALERT_HOLDS = Counter(
    "brincr_alert_holds_total",
    "Alerts held while the bot looked for customers with the same cause, by how the hold "
    "ended: group (a group covers it), single (alerted alone), healed, muted (snoozed or "
    "a maintenance window), gone (customer removed)",
    ["outcome"],
)
ALERT_LOOK_CHECKS = Counter(
    "brincr_alert_look_checks_total",
    "Checks brought forward to look for customers sharing a held alert's cause",
)
ALERT_FOLDS = Counter(
    "brincr_alert_folds_total", "Single incidents folded into a group with the same cause"
)
CUSTOMERS = Gauge(
    "brincr_customers", "Customers per connection state and environment", ["state", "environment"]
)
OPEN_INCIDENTS = Gauge("brincr_open_incidents", "Open incidents, by kind", ["kind"])
OUTBOX_BACKLOG = Gauge("brincr_outbox_backlog", "Slack notifications not yet delivered")
OUTBOX_FAILED = Gauge("brincr_outbox_failed", "Slack notifications given up on")
LAST_SWEEP = Gauge(
    "brincr_last_sweep_completed_timestamp_seconds",
    "Unix time at which this process last completed a sweep (looked for due customers and "
    "started their checks); 0 before the first",
)
PAGER_BACKLOG = Gauge("brincr_pagerduty_backlog", "PagerDuty events not yet sent")
PAGER_FAILED = Gauge("brincr_pagerduty_failed", "PagerDuty events given up on")
PAGER_SENT = Counter("brincr_pagerduty_sent_total", "PagerDuty events accepted by PagerDuty")
PAGER_FAILURES = Counter(
    "brincr_pagerduty_delivery_failures_total",
    "Failed attempts to send a PagerDuty event",
    ["permanent"],
)
SLACK_DELIVERY_FAILING = Gauge(
    "brincr_slack_delivery_failing",
    "Slack notifications whose last delivery attempt failed, by channel and error "
    "(pending ones are retried until delivered); 0 series: nothing is failing",
    ["channel", "error", "given_up"],
)


def pager_answered(accepted: bool, *, given_up: bool = False) -> None:
    """Count one PagerDuty send: accepted, or a failed attempt (``given_up``: not retried)."""
    if accepted:
        PAGER_SENT.inc()
    else:
        PAGER_FAILURES.labels(permanent=str(given_up).lower()).inc()


@functools.cache
def _upstream(service: str, outcome: str) -> Any:
    """The labelled counter child, looked up once (two requests a check: a hot path)."""
    return UPSTREAM_REQUESTS.labels(service=service, outcome=outcome)


@functools.cache
def checks_with(state: str) -> Any:
    return CHECKS.labels(state=state)


def record_upstream(service: str, status: int | None, *, error: str | None = None) -> None:
    """Count one upstream request: ``status`` is the HTTP status, or None with an ``error``."""
    outcome = error or (f"{status // 100}xx" if status else "unknown")
    _upstream(service, outcome).inc()
    if status == 429:
        RATE_LIMITED.labels(service=service).inc()
