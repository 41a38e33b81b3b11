"""The bot's error tree.

    BotError                  anything the bot raises on purpose
    ├── ConfigError           settings missing or wrong (the CLI prints them and exits 2)
    ├── UserError             bad input from a person: the message is shown to them as is
    │   └── PermissionDenied  a changing command from someone not in BOT_ADMINS
    └── UpstreamError         Visma Connect, Brincr or Slack could not answer a question the
                              bot must have answered (confirming a webhook delivery);
                              ``transient`` says whether trying again later may help

A check never raises for upstream trouble: it classifies it into its outcome
(:mod:`bot.domain.outcomes`); the outbox records it on the row it could not deliver.

Messages never contain secrets, tokens or invitation codes: they are shown to users and logged.
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """Settings are missing or wrong; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class UserError(BotError):
    """Bad input: ``str(error)`` says what was wrong; ``usage`` shows the right form.

    ``echo``: the bad value the message repeats, where ``{echo}`` stands in ``message``. It
    is the person's own text, so it may hold Slack markup (``<!channel>``, a backtick that
    ends a code span): ``str(error)`` quotes it plainly (logs, the CLI, the API), and the
    Slack renderer shows it inert (:func:`bot.slack.blocks.render_error`)."""

    def __init__(self, message: str, *, usage: str | None = None, echo: str | None = None) -> None:
        super().__init__(message if echo is None else message.replace("{echo}", f"`{echo}`"))
        self.usage = usage
        self.template = message
        self.echo = echo


class PermissionDenied(UserError):
    """A changing command from a user who is not a bot admin."""


class UpstreamError(BotError):
    """An outside service did not give an answer the bot needs; ``transient`` errors may
    succeed when tried again later."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
