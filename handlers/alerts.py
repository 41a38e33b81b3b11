"""The alert message's buttons: Acknowledge, Snooze (1 h / 4 h / 1 d / 1 week), Send
reconnect instructions and Resolve ("Check now" is the status module's), and
``/brincr resolve <customer>``. The message itself is updated in place through the outbox,
like every alert change."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Action
from bot.domain import parse_duration
from bot.errors import UserError
from bot.incidents import Alerts
from bot.invites import has_invitation, send_reconnect
from bot.render import render_notice
from bot.slack_text import escape
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors
from storage.customers import CUSTOMER_USAGE

RESOLVE_USAGE = "`/brincr resolve <customer>`: " + CUSTOMER_USAGE


def _incident_id(text: str) -> int:
    if not text.isdigit():
        raise UserError("That button no longer points at an incident.")
    return int(text)


def register(app: AsyncApp, deps: Deps) -> None:
    alerts: Alerts = deps.services.extras["alerts"]

    async def ephemeral(respond: AsyncRespond, text: str) -> None:
        await respond(
            **render_notice(text).kwargs(), response_type="ephemeral", replace_original=False
        )

    @app.action(Action.ACKNOWLEDGE.value)
    @answers_user_errors
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        if await alerts.acknowledge(_incident_id(body["actions"][0]["value"]), user):
            alerts.services.extras["outbox"].wake()
        else:
            await ephemeral(respond, "Already acknowledged or resolved: nothing changed.")

    @app.action(Action.SNOOZE.value)
    @answers_user_errors
    async def snooze(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        await deps.permissions.require_admin(user, "snooze alerts")
        choice = (body["actions"][0].get("selected_option") or {}).get("value", "")
        ref, _, duration = choice.partition(":")
        until = await alerts.snooze(_incident_id(ref), parse_duration(duration), user)
        if until is None:
            await ephemeral(respond, "That incident is already resolved: nothing to snooze.")
        alerts.services.extras["outbox"].wake()

    def wake() -> None:
        alerts.services.extras["outbox"].wake()
        if alerts.pager_sender is not None:
            alerts.pager_sender.wake()

    @app.action(Action.RESOLVE.value)
    @answers_user_errors
    async def resolve_button(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        await deps.permissions.require_admin(user, "resolve incidents")
        if await alerts.resolve_by_hand(_incident_id(body["actions"][0]["value"]), user):
            wake()
        else:
            await ephemeral(respond, "Already resolved: nothing changed.")

    async def resolve(inv: Invocation) -> None:
        await deps.permissions.require_admin(inv.user_id, "resolve incidents")
        if not inv.rest:
            raise UserError("Which customer?", usage=RESOLVE_USAGE)
        customer = await deps.fleet.resolve(inv.rest)
        incident_id = await alerts.open_incident_of(customer.id)
        if incident_id is None or not await alerts.resolve_by_hand(incident_id, inv.user_id):
            await inv.reply(render_notice(f"*{escape(customer.name)}* has no open incident."))
            return
        wake()
        await inv.reply(
            render_notice(
                f":white_check_mark: Resolved the incident of *{escape(customer.name)}*; "
                "its next failing check opens a new one."
            )
        )

    deps.commands.add("resolve", resolve)

    @app.action(Action.RECONNECT.value)
    @answers_user_errors
    async def reconnect(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        await deps.permissions.require_admin(user, "send reconnect instructions")
        customer = await deps.fleet.resolve(body["actions"][0]["value"])
        channel = body.get("channel", {}).get("id") or alerts.channel
        thread = await alerts.root_notification(customer.id)
        sent = await send_reconnect(
            deps.services, customer.id, user_id=user, channel_id=channel, thread_target_id=thread
        )
        if not sent:
            await ephemeral(respond, f"KvK {customer.kvk} no longer exists: nothing was sent.")
        elif customer.state == "revoked" and not await has_invitation(deps.services, customer.id):
            await ephemeral(
                respond,
                f"Sent the re-approval steps. If the customer removed the app entirely, it needs "
                f"a new invitation: `/brincr invite {customer.kvk} <code>`.",
            )
