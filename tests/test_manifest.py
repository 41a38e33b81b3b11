"""The Slack app manifest: manifest.yml up to date, valid against Slack's schema, both modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.core.errors import UserError
from bot.slack.manifest import (
    BOT_EVENTS,
    BOT_SCOPES,
    SLASH_COMMAND,
    build_manifest,
    manifest_listeners,
    render_manifest,
)
from tests.conftest import TEST_DATA

ROOT = Path(__file__).resolve().parents[1]
# Slack validates a manifest against the schema of its _metadata.major_version (1.0.0 when absent).
MAJOR = build_manifest(None).get("_metadata", {}).get("major_version", 1)
SCHEMA = TEST_DATA / f"slack-manifest.schema.{MAJOR}.0.0.json"
URL = "https://bot.example.com"
EVENTS_URL = f"{URL}/slack/events"
BIN = str(Path(sys.executable).with_name("brincr-bot"))
BAD_URLS = ["ftp://x", "not a url", "https://x/?q=1", "https://x/#top", "https://", "x.com", ""]


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft7Validator

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _errors(validator: Any, manifest: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]


def test_manifest_yml_is_the_rendered_socket_mode_manifest() -> None:
    on_disk = (ROOT / "manifest.yml").read_text(encoding="utf-8")
    assert on_disk == render_manifest(None), "manifest.yml is stale: brincr-bot manifest >it"
    assert yaml.safe_load(on_disk) == build_manifest(None)
    assert "connections:write" in on_disk  # the app-level token's scope, in a comment


@pytest.mark.parametrize("url", [None, URL], ids=["socket-mode", "http"])
def test_both_variants_validate_against_slacks_schema(validator: Any, url: str | None) -> None:
    rendered = yaml.safe_load(render_manifest(url))
    assert rendered == build_manifest(url)
    assert _errors(validator, rendered) == []


def test_the_schema_catches_a_broken_manifest(validator: Any) -> None:
    broken = build_manifest(URL)
    broken["features"]["slash_commands"][0]["command"] = "brincr"  # no leading slash
    broken["settings"]["surprise"] = True
    assert len(_errors(validator, broken)) == 2


def test_socket_mode_variant_has_no_request_urls() -> None:
    manifest = build_manifest()
    settings = manifest["settings"]
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    assert settings["socket_mode_enabled"] is True
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in settings["interactivity"]
    assert "request_url" not in settings["event_subscriptions"]
    assert "http" not in yaml.safe_dump(manifest)


@pytest.mark.parametrize("url", [URL, f"{URL}/", f"{URL}//", f"  {URL}/ "])
def test_http_variant_points_all_three_urls_at_slack_events(url: str) -> None:
    manifest = build_manifest(url)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert manifest["features"]["slash_commands"][0]["url"] == EVENTS_URL
    assert settings["interactivity"]["request_url"] == EVENTS_URL
    assert settings["event_subscriptions"]["request_url"] == EVENTS_URL


def test_http_variant_keeps_a_path_and_port() -> None:
    manifest = build_manifest("http://localhost:3000/brincr/")
    assert manifest["settings"]["interactivity"]["request_url"] == (
        "http://localhost:3000/brincr/slack/events"
    )


@pytest.mark.parametrize("url", [*BAD_URLS, "https://user:pw@x.com", "https://x.com:99999"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(UserError) as caught:
        render_manifest(url)
    assert caught.value.usage
    if "pw" in url:
        assert "pw" not in str(caught.value)  # never echo a password


@pytest.mark.parametrize("url", [None, URL])
def test_scopes_are_exactly_the_bot_scopes(url: str | None) -> None:
    scopes = build_manifest(url)["oauth_config"]["scopes"]
    assert scopes == {"bot": list(BOT_SCOPES)}
    assert set(BOT_SCOPES) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "im:write",
        "usergroups:read",
        "channels:read",
        "groups:read",
    }


def test_display_information_and_app_home() -> None:
    manifest = build_manifest()
    assert manifest["display_information"]["name"] == "Brincr bot"
    assert manifest["features"]["bot_user"]["display_name"] == "Brincr bot"
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    command = manifest["features"]["slash_commands"][0]
    assert command["usage_hint"].startswith("status <customer>")


@pytest.mark.parametrize("url", [None, URL])
def test_manifest_listeners(url: str | None) -> None:
    assert manifest_listeners(build_manifest(url)) == {
        "commands": frozenset({SLASH_COMMAND}),
        "events": frozenset(BOT_EVENTS),
        "interactivity": True,
    }


def test_cli_prints_the_socket_mode_manifest_without_any_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SLACK_BOT_TOKEN", "ALERT_CHANNEL", "BRINCR_SCOPES", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["manifest"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_manifest(None)
    assert yaml.safe_load(result.stdout)["settings"]["socket_mode_enabled"] is True


def test_cli_prints_the_http_manifest() -> None:
    result = CliRunner().invoke(main, ["manifest", "--url", f"{URL}/"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == build_manifest(URL)


@pytest.mark.parametrize("url", ["ftp://x", "not a url", "https://x/?q=1"])
def test_cli_bad_url_exits_2_with_a_message_on_stderr(url: str) -> None:
    result = CliRunner().invoke(main, ["manifest", "--url", url])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--url" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_as_a_real_process(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "PYTHONUTF8": "1"}
    ok = subprocess.run([BIN, "manifest", "--url", URL], capture_output=True, text=True,
                        env=env, cwd=tmp_path, timeout=60, encoding="utf-8")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout) == build_manifest(URL)
    bad = subprocess.run([BIN, "manifest", "--url", "ftp://x"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60, encoding="utf-8")  # fmt: skip
    assert bad.returncode == 2
    assert "ftp://x" in bad.stderr
    assert "Traceback" not in bad.stderr
