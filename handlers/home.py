"""The App Home tab, refreshed each time someone opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import utcnow
from bot.render_home import home_view_dict
from handlers.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        home = await deps.fleet.home()
        await client.views_publish(user_id=event["user"], view=home_view_dict(home, utcnow()))
