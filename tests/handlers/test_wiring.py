"""Every Slack listener goes through :class:`handlers.wiring.Listeners`, so none can miss the
guard that answers a person's mistake inside the listener (before Bolt can drop the ack)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.ids import Action, View
from tests.harness import BotHarness


def _listeners(app: AsyncApp) -> list[object]:
    return list(app._async_listeners)  # Bolt keeps no public list of them


def test_every_registered_listener_is_guarded(bot: BotHarness) -> None:
    listeners = _listeners(bot.runtime.app)
    unguarded = [
        getattr(listener.ack_function, "__name__", repr(listener))  # type: ignore[attr-defined]
        for listener in listeners
        if not getattr(listener.ack_function, "guarded", False)  # type: ignore[attr-defined]
    ]
    assert len(listeners) >= len(Action) // 2  # the wiring ran at all
    assert unguarded == []


def test_a_listener_added_behind_the_helpers_back_is_caught(bot: BotHarness) -> None:
    app = bot.runtime.app

    @app.view(View.LINK.value)
    async def bare(ack: object) -> None:  # what a forgotten guarded(...) looked like
        return None

    names = [
        listener.ack_function.__name__  # type: ignore[attr-defined]
        for listener in _listeners(app)
        if not getattr(listener.ack_function, "guarded", False)  # type: ignore[attr-defined]
    ]
    assert names == ["bare"]
