"""``brincr-bot manifest [--url URL]``: print the Slack app manifest. Needs no settings."""

from __future__ import annotations

import click

from bot.core.errors import UserError
from bot.slack.manifest import EVENTS_PATH, normalize_url, render_manifest


def _checked_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Reject a bad --url the click way: the message on stderr and exit code 2."""
    if value is None:
        return None
    try:
        return normalize_url(value)
    except UserError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


@click.command("manifest")
@click.option(
    "--url",
    metavar="URL",
    callback=_checked_url,
    help=(
        "Public base URL of the deployment (e.g. https://bot.example.com): HTTP mode, with "
        f"every request URL at URL{EVENTS_PATH}. Without it: Socket Mode."
    ),
)
def manifest(url: str | None) -> None:
    """Print the Slack app manifest (manifest.yml) for a deployment.

    Paste it at https://api.slack.com/apps → Create New App → From a manifest. Socket Mode
    also needs an app-level token with connections:write (SLACK_APP_TOKEN).
    """
    click.echo(render_manifest(url), nl=False)
