"""Renderers stay inside Slack's limits for long names, many scopes and long upstream errors,
always carry a text fallback, and escape what people typed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.alerts.render import render_incident
from bot.core.clock import utcnow
from bot.domain import State
from bot.domain.scopes import ScopeTerms
from bot.fleet.render import render_list, render_status
from bot.fleet.render_home import home_view_dict
from storage.models import CheckResult, Customer, Incident, Invitation
from storage.reads import FleetPage, HomeData, StatusData, Uptime
from storage.slack_delivery import DeliveryProblem

NOW = utcnow()
LONG_NAME = "<!channel> Bouw & Infra " + "Zeer Lange Naam " * 12  # 200 characters
SCOPES = tuple(f"brincr:scope{i:02d}" for i in range(60))


def customer(i: int = 1, **extra: Any) -> Customer:
    values: dict[str, Any] = {
        "id": i, "kvk": f"{10000000 + i}", "name": LONG_NAME[:200], "environment": "production",
        "tenant_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "account_manager": "U0ADMIN",
        "created_at": NOW, "state": State.SCOPES_MISSING.value,
        "state_since": NOW - timedelta(hours=3),
        "state_reason": "invalid_scope: " + "x" * 5000, "required_scopes": " ".join(SCOPES),
        "granted_scopes": " ".join(SCOPES[:30]), "missing_scopes": " ".join(SCOPES[30:]),
        "consecutive_failures": 1, "snoozed_until": NOW + timedelta(hours=1),
    }  # fmt: skip
    values.update(extra)
    return Customer(**values)


def result(i: int) -> CheckResult:
    return CheckResult(
        id=i, customer_id=1, checked_at=NOW - timedelta(minutes=15 * i), state="scopes_missing",
        token_outcome="scopes", probe_status=None, token_ms=120, probe_ms=None,
        error_code="invalid_scope", error_text="<b>" + "upstream said no " * 400,
    )  # fmt: skip


def check_limits(payload: dict[str, Any], max_blocks: int = 50) -> None:
    blocks = payload["blocks"]
    assert payload.get("text") or payload.get("type") == "home"
    assert len(blocks) <= max_blocks
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "header":
            assert len(text) <= 150
        if block["type"] == "section":
            assert len(text) <= 3000
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
                assert len(element.get("value", "")) <= 2000
            if element.get("type") == "mrkdwn":
                assert len(element["text"]) <= 3000


def mrkdwn_texts(payload: dict[str, Any]) -> str:
    parts = [payload.get("text", "")]
    for block in payload["blocks"]:
        if block["type"] != "header":
            parts.append((block.get("text") or {}).get("text", ""))
            parts += [
                e.get("text", "") for e in block.get("elements", []) if e.get("type") == "mrkdwn"
            ]
    return "\n".join(p for p in parts if isinstance(p, str))


def test_status_of_a_long_named_customer_with_many_scopes_fits_slack() -> None:
    incident = Incident(id=5, kind="customer", customer_id=1, state="scopes_missing",
                        opened_at=NOW - timedelta(hours=2), acknowledged_by="U0ONCALL")  # fmt: skip
    invitation = Invitation(id=1, customer_id=1, code="SECRET", language="nl",
                            invited_by="U0ADMIN", created_at=NOW - timedelta(days=9))  # fmt: skip
    data = StatusData(customer(), result(0), [result(i) for i in range(20)], Uptime(672, 40),
                      incident, invitation)  # fmt: skip
    payload = render_status(data, ScopeTerms(SCOPES[:40], SCOPES[40:]), NOW).kwargs()
    check_limits(payload)
    text = mrkdwn_texts(payload)
    assert "<!channel>" not in text and "&lt;!channel&gt; Bouw &amp; Infra" in text
    assert "&lt;b&gt;" in text  # upstream text escaped too
    assert "SECRET" not in text


def test_a_list_page_of_long_names_fits_slack() -> None:
    page = FleetPage({"healthy": 5000, "revoked": 40}, [customer(i) for i in range(20)], 5040, 0, 3)
    payload = render_list(page, "all", NOW).kwargs()
    check_limits(payload)
    assert "<!channel>" not in mrkdwn_texts(payload)


def test_the_app_home_fits_its_100_blocks() -> None:
    broken = [customer(i) for i in range(15)]
    incidents = [(Incident(id=i, kind="customer", customer_id=i, state="revoked", opened_at=NOW),
                  broken[i]) for i in range(15)]  # fmt: skip
    invitations = [(Invitation(id=i, customer_id=i, code="C", language="en", invited_by="U1",
                               created_at=NOW), broken[i]) for i in range(15)]  # fmt: skip
    view = home_view_dict(HomeData({"revoked": 15}, broken, incidents, invitations), NOW)
    check_limits(view, max_blocks=100)
    assert "<!channel>" not in mrkdwn_texts(view)


def test_an_alert_with_a_long_upstream_error_fits_slack() -> None:
    incident = Incident(id=9, kind="customer", customer_id=1, state="failing",
                        reason="<!here> " + "e" * 6000, opened_at=NOW)  # fmt: skip
    payload = render_incident(incident, customer(state="failing"), NOW).kwargs()
    check_limits(payload)
    assert "<!here>" not in mrkdwn_texts(payload)


def test_the_app_home_puts_slack_delivery_problems_first_and_caps_them() -> None:
    problems = [
        DeliveryProblem("C0ALERTS", "not_in_channel", NOW - timedelta(hours=2), 3, False),
        DeliveryProblem("U0GONE", "<!channel>", NOW - timedelta(days=1), 1, False),
        DeliveryProblem("C0BUG", "invalid_blocks", NOW, 1, True),
    ] + [DeliveryProblem(f"C0X{n}", "channel_not_found", NOW, 1, False) for n in range(5)]
    view = home_view_dict(HomeData({}, [], [], [], delivery=problems), NOW)
    text = view["blocks"][3]["text"]["text"]
    assert text.startswith("*Slack delivery*\n:warning: alerts to <#C0ALERTS> are failing: ")
    assert "`not_in_channel` since" in text and "(3 messages)" in text
    assert "DMs to <@U0GONE> are failing: `&lt;!channel&gt;`" in text
    assert "alerts to <#C0BUG> failed for good: `invalid_blocks`" in text
    assert text.endswith("… and 3 more delivery problems")
