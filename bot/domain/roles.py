"""What one ``serve`` process is for (``brincr-bot serve --role``), for scale-out: web
replicas answer people behind the load balancer, worker replicas do the machine's work beside
them, and ``all`` (the default) is both from one ``serve``: it answers, and its check engine
(a child process it starts, :class:`bot.runtime.CheckEngine`) does the machine's work.

- ``web`` answers Slack (HTTP or Socket Mode), the Visma webhook, the API and the health
  endpoints. It never runs the sweep or the scheduled jobs and never delivers outbound rows
  (Slack outbox, PagerDuty): the rows it writes wait for a worker. A Visma delivery is
  stored and left to a worker's ``webhook-retry`` job. A check a person asks for (``/brincr
  check``, ``link``, the Re-check button) runs where the person asked: that is an answer.
- ``worker`` runs the sweep, the scheduled jobs and the senders. It never listens to Slack:
  its HTTP server serves only ``/healthz``, ``/readyz`` and ``/metrics``, and it needs no
  ``SLACK_SIGNING_SECRET`` or ``SLACK_APP_TOKEN``.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ALL = "all"
    WEB = "web"
    WORKER = "worker"

    @property
    def answers(self) -> bool:
        """Listens to Slack, the Visma webhook and the API."""
        return self is not Role.WORKER

    @property
    def works(self) -> bool:
        """Runs the sweep, the scheduled jobs, webhook processing and the senders."""
        return self is not Role.WEB

    @property
    def purpose(self) -> str:
        """What ``/readyz`` says this replica is for."""
        return _PURPOSE[self]


_PURPOSE = {
    Role.ALL: "answers Slack, webhooks and the API; checks, alerts and delivers",
    Role.WEB: "answers Slack, webhooks and the API; never checks on schedule or delivers",
    Role.WORKER: "checks, alerts and delivers; never listens to Slack",
}
