"""manifest.yml in step with the app: the slash commands and events the Bolt app registers are
exactly those the manifest declares, and every button the bot renders has a listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from bot.slack.ids import Action, View
from bot.slack.manifest import build_manifest, manifest_listeners
from tests.harness import ADMIN, BotHarness, start_bot

# Inputs inside modals: Slack sends their values with the view submission, not as actions.
MODAL_INPUTS = {Action.INVITE_FIELD, Action.LINK_CUSTOMER}


@pytest.fixture
async def registered(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[dict[str, set[str]], BotHarness]]:
    seen: dict[str, set[str]] = {
        "commands": set(),
        "events": set(),
        "actions": set(),
        "views": set(),
    }

    def spy(kind: str, original: Any) -> Any:
        def register(self: AsyncApp, name: Any, *args: Any, **kwargs: Any) -> Any:
            seen[kind].add(str(name))
            return original(self, name, *args, **kwargs)

        return register

    for kind, method in (("commands", "command"), ("events", "event"), ("actions", "action"),
                         ("views", "view")):  # fmt: skip
        monkeypatch.setattr(AsyncApp, method, spy(kind, getattr(AsyncApp, method)))
    async with FakeSlack() as slack, Simulator() as sim:
        bot = await start_bot(sqlite_url, slack, sim)
        try:
            yield seen, bot
        finally:
            await bot.close()


async def test_the_manifest_declares_exactly_the_registered_commands_and_events(
    registered: tuple[dict[str, set[str]], BotHarness],
) -> None:
    seen, _ = registered
    for manifest in (build_manifest(None), build_manifest("https://bot.example.com")):
        declared = manifest_listeners(manifest)
        assert declared["commands"] == seen["commands"]
        assert declared["events"] == seen["events"]
        assert declared["interactivity"] is bool(seen["actions"] or seen["views"])


async def test_every_button_and_view_has_a_listener(
    registered: tuple[dict[str, set[str]], BotHarness],
) -> None:
    seen, _ = registered
    assert {a.value for a in Action} - MODAL_INPUTS <= seen["actions"]
    assert {v.value for v in View} <= seen["views"]


@pytest.mark.parametrize("action", sorted(set(Action) - MODAL_INPUTS))
async def test_each_button_is_acknowledged_not_left_unhandled(
    registered: tuple[dict[str, set[str]], BotHarness], action: Action
) -> None:
    _, bot = registered
    response, _key = await bot.action(action.value, "0", user=ADMIN)
    assert response.status_code == 200, (action, response.text)
