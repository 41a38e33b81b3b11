"""The one way a feature module registers its Slack listeners.

Each ``register(on, commands)`` gets a :class:`Listeners`, not the Bolt app: every listener it
adds is wrapped in :func:`~handlers.errors.guarded` (a ``UserError`` answered to the person
inside the listener, before Bolt's runner can lose the ack), and ``admin="do this"`` puts the
admin gate (:func:`~handlers.gate.admin_only`) in front of a listener that changes something.
``tests/handlers/test_wiring.py`` checks that every listener of the built app is guarded.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.errors import Listener, guarded
from handlers.gate import admin_only


class Listeners:
    def __init__(self, app: AsyncApp) -> None:
        self._app = app

    def command(self, name: str, listener: Listener) -> None:
        """A slash command (``/brincr``; its subcommands go through the router)."""
        self._app.command(name)(guarded(listener))

    def action(self, action_id: str, listener: Listener, *, admin: str | None = None) -> None:
        """A button or menu; ``admin``: what it changes, for the gate's refusal."""
        middleware = [admin_only(admin)] if admin is not None else None
        self._app.action(action_id, middleware=middleware)(guarded(listener))

    def view(self, callback_id: str, listener: Listener) -> None:
        """A modal's submission."""
        self._app.view(callback_id)(guarded(listener))

    def event(self, event_type: str, listener: Listener) -> None:
        """An Events API event (``app_home_opened``)."""
        self._app.event(event_type)(guarded(listener))
