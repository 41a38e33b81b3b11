"""The PagerDuty Events API stand-in the tests talk to: the demo's (``bot.demo.pagerduty``),
a real HTTP server on 127.0.0.1; see there for what it validates and answers."""

from __future__ import annotations

from bot.demo.pagerduty import PagerDutyStandIn, problems

FakePagerDuty = PagerDutyStandIn
ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, as PagerDuty's are

__all__ = ["ROUTING_KEY", "FakePagerDuty", "problems"]
