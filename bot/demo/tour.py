"""The scripted tour: what a support engineer would type in a first hour with the bot, one
step per Enter (or all at once with ``brincr-bot demo --tour``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.demo.printer import Clickable
from bot.demo.slack import Delivery
from bot.demo.terminal import render_payload
from bot.demo.world import ALERTS, HEALTHY, MISSING, NEW_SCOPE, REVOKED, REVOKED_SCOPE, Demo
from bot.slack.ids import Action

ALERT_TIMEOUT = 45.0  # revocation delay + one check interval + the sender, with room to spare
UPDATE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Demo], Awaitable[object]]


def _typed(text: str) -> Callable[[Demo], Awaitable[object]]:
    async def run(demo: Demo) -> object:
        demo.printer.line(f"> /brincr {text}")
        return await demo.command(text)

    return run


def is_revocation_alert(delivery: Delivery) -> bool:
    """The alert in #alerts about :data:`REVOKED` losing its scope (not a thread reply)."""
    if delivery.where != "post" or delivery.channel != ALERTS:
        return False
    text = render_payload(delivery.payload)
    return REVOKED.name in text and REVOKED_SCOPE in text


async def _wait_for_alert(demo: Demo) -> Delivery:
    """The revocation alert; one that arrived before this step is shown again."""
    earlier = [d for d in demo.slack.deliveries if is_revocation_alert(d)]
    if earlier:
        demo.printer.show(earlier[0], note=" (it arrived earlier)")
        return earlier[0]
    demo.printer.line(f"(waiting for the scheduler to notice {REVOKED.name}'s change…)")
    return (await demo.slack.wait_for_deliveries(is_revocation_alert, ALERT_TIMEOUT))[0]


async def _acknowledge(demo: Demo) -> object:
    alert = (await demo.slack.wait_for_deliveries(is_revocation_alert, ALERT_TIMEOUT))[0]
    button = _button_of(demo, alert, Action.ACKNOWLEDGE)
    demo.printer.line(f"> click {button.number}   ({button.label}, on the alert in #alerts)")
    await demo.user.click(button)
    await demo.slack.wait_for_deliveries(
        lambda d: d.where == "update" and d.ts == alert.ts, UPDATE_TIMEOUT
    )
    # The note "Acknowledged by …" goes to the alert's thread: a row of its own in the outbox,
    # which may come a tick after the update.
    return await demo.slack.wait_for_deliveries(
        lambda d: d.where == "reply" and d.thread_ts == alert.ts, UPDATE_TIMEOUT
    )


def _button_of(demo: Demo, message: Delivery, action: Action) -> Clickable:
    for button in reversed(demo.printer.buttons.values()):
        if button.delivery is message and button.action_id == action.value:
            return button
    raise LookupError(f"no {action.name} button on that message")


TOUR = (
    Step("What can the bot do?", _typed("help")),
    Step("One customer by KvK number: healthy, every scope granted",
         _typed(f"status {HEALTHY.kvk}")),
    Step("The whole fleet, worst first", _typed("list")),
    Step("A customer found by part of its name, one scope missing",
         _typed(f"status {MISSING.name.split()[-1]}")),
    Step("Check a customer now instead of waiting for the schedule",
         _typed(f"check {HEALTHY.kvk}")),
    Step(f"The app now asks for {NEW_SCOPE} too: who has switched it ON? (no alerts for it)",
         _typed("rollout")),
    Step(f"An alert: {REVOKED.name} switched off {REVOKED_SCOPE}", _wait_for_alert),
    Step("Acknowledge the alert: it is updated in place", _acknowledge),
)  # fmt: skip


class Tour:
    """The steps, one at a time."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.done = 0

    @property
    def finished(self) -> bool:
        return self.done >= len(TOUR)

    async def next_step(self) -> None:
        if self.finished:
            self.demo.printer.line("The tour is over: type a command, or Ctrl-D to quit.")
            return
        step = TOUR[self.done]
        self.done += 1
        self.demo.printer.line()
        self.demo.printer.line(f"▶ Tour {self.done}/{len(TOUR)}: {step.title}")
        await step.run(self.demo)

    async def run_all(self) -> None:
        while not self.finished:
            await self.next_step()
        self.demo.printer.line()
        self.demo.printer.line(
            "▶ That was the tour. Run `brincr-bot demo` to try commands yourself."
        )
