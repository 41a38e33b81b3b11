"""compose.yml is checked by reading (no Docker engine runs here): valid against the Compose
Specification's JSON Schema, and shaped as the README promises — the bot on PostgreSQL 16 with
a named volume, started once the database is healthy, settings from .env, secrets as files that
the bot reads through SECRETS_DIR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator
from sqlalchemy import make_url

from bot.settings import Settings, load_settings
from tests.conftest import TEST_DATA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_it_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((TEST_DATA / "compose-spec.json").read_text())
    errors = [e.message for e in Draft201909Validator(schema).iter_errors(compose)]
    assert errors == []


def test_the_schema_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads((TEST_DATA / "compose-spec.json").read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["bot"]["depends_on"]["db"]["condition"] = "service_ready"
    assert not Draft201909Validator(schema).is_valid(broken)


def test_postgres_16_keeps_its_data_in_a_named_volume_and_reports_health(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    volume, target = db["volumes"][0].split(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_the_bot_is_built_here_and_waits_for_a_healthy_database(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot["build"]["context"] == "."
    assert bot["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert bot["env_file"] == ".env"
    assert bot["ports"] == ["3000:3000"]


def test_every_secret_is_a_file_named_after_a_setting(compose: dict[str, Any]) -> None:
    secrets = compose["secrets"]
    fields = set(Settings.model_fields)
    for service in compose["services"].values():
        for name in service.get("secrets", []):
            assert secrets[name] == {"file": f"./secrets/{name}"}
    for name in compose["services"]["bot"]["secrets"]:
        assert name.lower() in fields, name
    ignored = (ROOT / ".gitignore").read_text() + (ROOT / "secrets" / ".gitignore").read_text()
    assert "*" in ignored.split()  # secrets/ keeps only its README in git
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


def test_postgres_and_the_bot_share_one_password_file_and_no_password_is_written_down(
    compose: dict[str, Any],
) -> None:
    db, bot = compose["services"]["db"], compose["services"]["bot"]
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/DATABASE_PASSWORD"
    assert "DATABASE_PASSWORD" in db["secrets"] and "DATABASE_PASSWORD" in bot["secrets"]
    url = make_url(bot["environment"]["DATABASE_URL"])
    assert url.password is None
    assert (url.username, url.host, url.database) == (
        db["environment"]["POSTGRES_USER"],
        "db",
        db["environment"]["POSTGRES_DB"],
    )


def test_the_bot_reads_its_settings_as_the_container_would(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The container's view: .env made from .env.example, compose's environment over it, and
    /run/secrets holding the files (SLACK_APP_TOKEN left empty: HTTP mode)."""
    bot = compose["services"]["bot"]
    run_secrets = tmp_path / "run-secrets"
    run_secrets.mkdir()
    values = {"DATABASE_PASSWORD": "pw-from-file", "SLACK_BOT_TOKEN": "xoxb-from-file"}
    for name in bot["secrets"]:
        (run_secrets / name).write_text(values.get(name, "") + "\n")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    for name, value in bot["environment"].items():
        monkeypatch.setenv(name, run_secrets.as_posix() if name == "SECRETS_DIR" else value)
    s = load_settings()
    assert make_url(s.database_url).password == "pw-from-file"
    assert make_url(s.database_url).host == "db"
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-from-file"
    assert not s.socket_mode  # an empty SLACK_APP_TOKEN file is no token
    assert s.pagerduty_routing_key is None
