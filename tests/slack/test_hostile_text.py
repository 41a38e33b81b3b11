"""No surface renders text from outside as markup (issue 19, docs/security.md, hostile text).

Arbitrary customer names, scope names and upstream texts go through every renderer; what
comes out may hold no live ``<!…>``, ``<@…>``, ``<#…>`` or ``<http…|…>`` of theirs, and no
outside text may open, close or leave a code span: the backticks in the output are exactly
the template's, and no code span holds a line break.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts.render import (
    reminder_note,
    render_customer_snooze_ended,
    render_incident,
)
from bot.alerts.render_groups import render_group, render_member_list
from bot.alerts.render_maintenance import (
    WindowView,
    render_maintenance_list,
    render_maintenance_start,
)
from bot.core.clock import utcnow
from bot.domain import State
from bot.domain.scopes import ScopeTerms
from bot.fleet.digest_data import DigestData, WeekIncident
from bot.fleet.render import (
    render_candidates,
    render_forget_confirm,
    render_list,
    render_shared,
    render_status,
)
from bot.fleet.render_digest import render_digest
from bot.fleet.render_history import render_history
from bot.fleet.render_home import home_view_dict
from bot.fleet.timeline import HistoryPage
from bot.onboarding.reapproval import render_reapproval
from bot.onboarding.render import render_handoff
from bot.slack.blocks import Message
from bot.slack.text import code, escape
from storage.customers import Candidate
from storage.groups import Member
from storage.models import CheckResult, Customer, Incident, Invitation
from storage.reads import FleetPage, HomeData, StatusData, Uptime
from storage.slack_delivery import DeliveryProblem
from storage.timeline import Entry

NOW = utcnow()
UTC_ZONE = ZoneInfo("UTC")
REQUIRED = ("brincr:category", "brincr:country")


def _terms(o: Outside) -> ScopeTerms:
    return ScopeTerms(REQUIRED, rollout=("brincr:product", *o.scopes), deadline=NOW.date())


#: What the templates themselves may write: Slack dates, mentions of stored user IDs (an
#: imported account manager shaped like a user ID is meant to be mentioned) and channels, the
#: on-call user group. Anything else between < and > came from outside.
TEMPLATE_ENTITY = re.compile(
    r"<!date\^\d+\^[^|<>]*\|[^<>]*>|<@[UW][A-Z0-9]{2,20}>|<#C0[A-Z0-9]+>|<!subteam\^S0[A-Z0-9]+>"
)
LIVE = re.compile(r"<[!@#]|<https?:|<mailto:")

PIECES = [*"`<>&!@#|*_~:/.\n\r ahtpsx", "\u2028", "<!channel>", "<https://e.example|x>", "```"]
HOSTILE = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=25).map("".join), st.text(max_size=60)
)
SCOPES = st.lists(HOSTILE.filter(lambda s: s and not any(c.isspace() for c in s)), max_size=4)


@dataclass(frozen=True)
class Outside:
    """Every value a renderer shows that someone outside the team controls."""

    name: str
    scopes: tuple[str, ...]
    upstream: str


def _customer(o: Outside, **extra: Any) -> Customer:
    values: dict[str, Any] = {
        "id": 1, "kvk": "12345678", "name": o.name, "account_manager": o.name or "U0ADMIN",
        "environment": "production", "tenant_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "created_at": NOW, "state": State.SCOPES_MISSING.value,
        "state_since": NOW - timedelta(hours=3), "state_reason": o.upstream,
        "required_scopes": " ".join((*REQUIRED, *o.scopes)),
        "granted_scopes": REQUIRED[0], "missing_scopes": " ".join(o.scopes),
        "consecutive_failures": 1, "snoozed_until": None,
        "rollout_missing_scopes": " ".join(o.scopes) or "brincr:product",
    }  # fmt: skip
    values.update(extra)
    return Customer(**values)


def _result(o: Outside) -> CheckResult:
    return CheckResult(id=1, customer_id=1, checked_at=NOW, state="failing", token_outcome="error",
                       probe_status=None, token_ms=5, probe_ms=None, error_code=o.upstream[:20],
                       error_text=o.upstream)  # fmt: skip


def _incident(o: Outside, **extra: Any) -> Incident:
    values: dict[str, Any] = {
        "id": 7, "kind": "customer", "customer_id": 1, "state": "scopes_missing",
        "reason": o.upstream, "opened_at": NOW - timedelta(hours=1), "reminders_sent": 1,
    }  # fmt: skip
    values.update(extra)
    return Incident(**values)


def _renders(o: Outside) -> list[dict[str, Any] | str]:
    c = _customer(o)
    failing = _customer(o, state="failing", missing_scopes="")
    group = _incident(o, kind="upstream", customer_id=None, affected_count=3,
                      upstream_key="group:production:failing:abc")  # fmt: skip
    invitation = Invitation(id=1, customer_id=1, code=o.name or "C", language="nl",
                            invited_by="U0ADMIN", created_at=NOW)  # fmt: skip
    status = StatusData(c, _result(o), [_result(o)], Uptime(10, 1), _incident(o), invitation)
    entries = [Entry(NOW, "state", new="failing", old="healthy", detail=o.upstream),
               Entry(NOW, "action", who="U0ADMIN", action=o.name)]  # fmt: skip
    digest = DigestData(NOW, NOW - timedelta(days=7), {"failing": 1}, {}, [c], [failing],
                        {"U0ADMIN": [(invitation, c)]},
                        [WeekIncident(_incident(o), c, timedelta(hours=1), True),
                         WeekIncident(group, None, timedelta(hours=1), False)], [c])  # fmt: skip
    window = WindowView("production", NOW, NOW + timedelta(hours=1), o.upstream, "U0ADMIN")
    delivery = [DeliveryProblem("C0ALERTS", o.upstream, NOW, 2, False)]
    home = HomeData({"failing": 1}, [c], [(_incident(o), c), (group, None)], [(invitation, c)],
                    delivery=delivery, rollout_pending=[c])  # fmt: skip
    messages: list[Message] = [
        render_status(status, _terms(o), NOW),
        render_shared(status, _terms(o), NOW, "U0SHARER"),
        render_list(FleetPage({"failing": 1}, [c, failing], 2, 0, 1), "all", NOW),
        render_incident(_incident(o), c, NOW, mention="<!subteam^S0ONCALL>"),
        render_incident(_incident(o, state="failing"), failing, NOW),
        render_incident(group, None, NOW),
        render_group(group, [Member(o.name, "12345678")], NOW),
        render_member_list([Member(o.name, "12345678")], 1, 1),
        render_customer_snooze_ended(c),
        render_digest(digest, UTC_ZONE),
        render_history(HistoryPage(c, entries, 0, 2), UTC_ZONE),
        render_candidates(o.name, [Candidate("12345678", o.name, "failing")]),
        render_forget_confirm(c),
        render_maintenance_start(["production"], NOW, o.upstream, "U0ADMIN"),
        render_maintenance_list([window], NOW),
        render_reapproval(c, o.scopes or REQUIRED, sent_by="U0ADMIN"),
        render_handoff(invitation, c, o.scopes or REQUIRED, status="partial", missing=o.scopes),
    ]
    notes = [reminder_note(_incident(o), c, NOW, last=3)]
    return [*(m.kwargs() for m in messages), home_view_dict(home, NOW), *notes]


def mrkdwn_of(payload: dict[str, Any] | str) -> list[str]:
    """Every mrkdwn string of a message or view (headers are plain text: no markup)."""
    if isinstance(payload, str):
        return [payload]
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload.get("blocks", []))
    return [payload.get("text") or "", *found]


def _live_markup(text: str) -> list[str]:
    return LIVE.findall(TEMPLATE_ENTITY.sub("", text))


def _spans_with_line_breaks(text: str) -> list[str]:
    spans = re.findall(r"```.*?```|`[^`]*`", text, flags=re.DOTALL)
    return [s for s in spans if not s.startswith("```") and ("\n" in s or "\r" in s)]


def _inert(o: Outside) -> None:
    hostile = [t for p in _renders(o) for t in mrkdwn_of(p)]

    def tame(text: str) -> str:
        return text.replace("`", "'")

    # the same values without backticks: every backtick in the output is the template's
    reference = Outside(tame(o.name), tuple(map(tame, o.scopes)), tame(o.upstream))
    benign = [t for p in _renders(reference) for t in mrkdwn_of(p)]
    assert len(hostile) == len(benign)
    for text, reference in zip(hostile, benign, strict=True):
        assert not _live_markup(text), text
        assert not _spans_with_line_breaks(text), text
        assert text.count("`") == reference.count("`"), (text, reference)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=HOSTILE, scopes=SCOPES, upstream=HOSTILE)
def test_no_renderer_lets_outside_text_through_as_markup(
    name: str, scopes: list[str], upstream: str
) -> None:
    _inert(Outside(name, tuple(scopes), upstream))


def test_the_issue_s_hostile_scope_pings_and_links_nobody() -> None:
    scopes = ("x`<!channel>`y", "x`<https://evil.example/reauth|Re-approve>`y")
    _inert(Outside("x`*bold* https://evil.example`y", scopes, "a`\n*b* https://evil.example"))


def test_text_in_a_code_span_stays_in_it_whatever_it_holds() -> None:
    assert code("a`b\nc *d*") == "`aˋb c *d*`"
    assert code("") == "` `"
    assert escape("<!channel> & `x`") == "&lt;!channel&gt; &amp; ˋxˋ"


def test_the_checker_itself_sees_markup() -> None:
    """The property would pass vacuously if the checks saw nothing: they do see raw text."""
    assert _live_markup("hi <!channel> <https://e.example|x> <@U0ADMIN>")
    assert not _live_markup("<@U0ADMIN> <!date^1^{time}|12:00> <#C0ALERTS>")
    assert _spans_with_line_breaks("`a\nb`")
