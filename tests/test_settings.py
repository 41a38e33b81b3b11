from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.errors import ConfigError
from bot.settings import load_settings

ALL_SETTINGS = [
    "DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL",
    "ALERT_CHANNEL", "ONBOARDING_CHANNEL", "BOT_ADMINS", "PRODUCTION_CLIENT_ID",
    "PRODUCTION_CLIENT_SECRET", "PRODUCTION_TOKEN_URL", "PRODUCTION_API_URL", "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET", "SANDBOX_TOKEN_URL", "SANDBOX_API_URL", "BRINCR_SCOPES",
    "BRINCR_PROBE_PATH", "CHECK_INTERVAL", "CHECK_CONCURRENCY", "FAILURE_THRESHOLD",
    "ALERT_REPEAT", "ALERT_GROUP_WAIT", "INVITE_STALE_AFTER", "VISMA_WEBHOOK_SECRETS", "HOST",
    "PORT", "LOG_FORMAT",
    "SANDBOX_ALERT_CHANNEL", "ALERT_MENTION", "PAGERDUTY_ROUTING_KEY", "PAGERDUTY_EVENTS_URL",
    "PAGERDUTY_ENVIRONMENTS", "BRINCR_ROLLOUT_SCOPES", "BRINCR_ROLLOUT_DEADLINE", "SECRETS_DIR",
    "DATABASE_PASSWORD",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///brincr-bot.db"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.production_token_url == "https://connect.visma.com/connect/token"
    assert s.sandbox_token_url == "https://connect.identity.stagaws.visma.com/connect/token"
    assert s.production_api_url == "https://api.brincr.com/api/v1/"
    assert s.sandbox_api_url == "https://sandbox-api.brincr.com/api/v1/"
    assert s.brincr_probe_path == "categories"
    assert s.check_interval == timedelta(minutes=15)
    assert (s.check_concurrency, s.failure_threshold) == (50, 2)
    assert s.alert_repeat == timedelta(hours=4)
    assert s.alert_group_wait == timedelta(seconds=60)
    assert s.invite_stale_after == timedelta(days=7)
    assert (s.host, s.port, s.log_format) == ("0.0.0.0", 3000, "text")
    assert s.bot_admins == () and s.visma_webhook_secrets == ()


def test_env_example_lists_every_setting() -> None:
    from pathlib import Path

    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    for name in ALL_SETTINGS:
        assert f"{name}=" in example, name


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRINCR_SCOPES", "brincr:category  brincr:country brincr:category")
    monkeypatch.setenv("BOT_ADMINS", "U123, S456")
    monkeypatch.setenv("CHECK_INTERVAL", "90s")
    monkeypatch.setenv("VISMA_WEBHOOK_SECRETS", "old,new")
    monkeypatch.setenv("PRODUCTION_CLIENT_ID", "app")
    monkeypatch.setenv("PRODUCTION_CLIENT_SECRET", "shh")
    s = load_settings()
    assert s.brincr_scopes == ("brincr:category", "brincr:country")
    assert s.bot_admins == ("U123", "S456")
    assert s.check_interval == timedelta(seconds=90)
    assert [x.get_secret_value() for x in s.visma_webhook_secrets] == ["old", "new"]
    prod = s.environment("production")
    assert prod is not None and prod.client_id == "app"
    assert s.environment("sandbox") is None  # no client id: simply not available


def test_bad_values_give_one_readable_line_each_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHECK_INTERVAL", "15x")
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("BOT_ADMINS", "bob")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("PRODUCTION_CLIENT_SECRET", "super-secret-value")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    problems = caught.value.problems
    assert len(problems) == 4
    assert any(p.startswith("CHECK_INTERVAL:") for p in problems)
    assert any(p.startswith("PORT:") for p in problems)
    assert any(p.startswith("BOT_ADMINS:") for p in problems)
    assert any(p.startswith("LOG_FORMAT:") for p in problems)
    assert "super-secret-value" not in str(caught.value)


def test_repr_hides_the_database_password_and_every_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:db-pass-w0rd@db.internal:5432/brincr")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("VISMA_WEBHOOK_SECRETS", "whsec-one,whsec-two")
    settings = load_settings()
    for text in (repr(settings), str(settings)):
        assert "db-pass-w0rd" not in text and "postgresql://bot:***@db.internal" in text
        for secret in ("signing-secret-value", "whsec-one", "whsec-two"):
            assert secret not in text
    assert settings.database_url.endswith("bot:db-pass-w0rd@db.internal:5432/brincr")


def test_repr_hides_a_database_password_given_as_a_query_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://bot@db.internal/brincr?sslmode=require&password=db-pass-w0rd"
    )
    settings = load_settings()
    for text in (repr(settings), str(settings)):
        assert "db-pass-w0rd" not in text and "sslmode=require&password=***" in text
    assert settings.database_url.endswith("password=db-pass-w0rd")


def test_a_bad_duration_is_not_echoed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_INTERVAL", "hunter2-looks-like-a-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    assert caught.value.problems[0].startswith("CHECK_INTERVAL: not a duration")


@pytest.mark.parametrize(("value", "seconds"), [("0", 0), ("0s", 0), ("90s", 90), ("2m", 120)])
def test_alert_group_wait_is_a_duration_and_zero_turns_the_hold_off(
    monkeypatch: pytest.MonkeyPatch, value: str, seconds: int
) -> None:
    monkeypatch.setenv("ALERT_GROUP_WAIT", value)
    assert load_settings().alert_group_wait == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["soon", "-5s", "01x"])
def test_a_bad_alert_group_wait_is_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ALERT_GROUP_WAIT", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [caught.value.problems[0]]
    assert caught.value.problems[0].startswith("ALERT_GROUP_WAIT: not a duration")


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    monkeypatch.setenv("SANDBOX_CLIENT_SECRET", "client-secret-value")
    text = repr(load_settings())
    assert "secret-value" not in text


def test_on_call_settings_default_to_paging_production_only_when_a_key_is_set() -> None:
    s = load_settings(alert_channel="C0ALERTS")
    assert s.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert s.pagerduty_environments == ("production",)
    assert not s.pages("production")  # no routing key: nobody is paged
    assert s.alert_channel_for("sandbox") == "C0ALERTS"  # SANDBOX_ALERT_CHANNEL defaults
    s = load_settings(
        alert_channel="C0ALERTS", sandbox_alert_channel="C0SANDBOX", pagerduty_routing_key="k" * 32
    )
    assert s.pages("production") and not s.pages("sandbox")
    assert s.alert_channel_for("sandbox") == "C0SANDBOX"
    assert s.alert_channel_for("production") == "C0ALERTS"


def test_alert_mention_renders_groups_and_users_and_refuses_other_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERT_MENTION", "S0ONCALL, U0ALICE")
    assert load_settings().alert_mention_text() == "<!subteam^S0ONCALL> <@U0ALICE>"
    monkeypatch.setenv("ALERT_MENTION", "@oncall")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "ALERT_MENTION" in str(error.value)
    monkeypatch.setenv("ALERT_MENTION", "")
    monkeypatch.setenv("PAGERDUTY_ENVIRONMENTS", "staging")
    with pytest.raises(ConfigError):
        load_settings()


def test_an_empty_setting_is_the_same_as_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_SETTINGS:
        monkeypatch.setenv(name, "")
    s = load_settings()
    assert not s.socket_mode and s.slack_app_token is None
    assert s.database_url == "sqlite:///brincr-bot.db"
    assert (s.check_interval, s.port, s.alert_channel) == (timedelta(minutes=15), 3000, None)
    assert load_settings(slack_app_token="  ", onboarding_channel="").onboarding_channel is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://root:hunter2@db/brincr", "unsupported database 'mysql'"),
        ("not a url at all", "not a database URL"),
    ],
)
def test_an_unusable_database_url_is_one_readable_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    (line,) = caught.value.problems
    assert line.startswith("DATABASE_URL: ") and problem in line
    assert "hunter2" not in line


# SECRETS_DIR: a file per setting, as Docker and Kubernetes mount secrets (#20)


def _secrets(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in files.items():
        (folder / name).write_text(value + "\n")  # as `echo value > file` writes it
    return folder


def test_a_file_in_secrets_dir_is_the_setting_of_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _secrets(
        tmp_path, SLACK_BOT_TOKEN="xoxb-from-a-file", PRODUCTION_CLIENT_SECRET="file-secret"
    )
    monkeypatch.setenv("SECRETS_DIR", str(folder))
    s = load_settings()
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-from-a-file"
    assert s.production_client_secret is not None
    assert s.production_client_secret.get_secret_value() == "file-secret"
    assert "xoxb-from-a-file" not in repr(s) and "file-secret" not in str(s)


def test_an_environment_variable_wins_over_the_file_and_an_empty_one_does_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _secrets(tmp_path, SLACK_BOT_TOKEN="xoxb-file", SLACK_SIGNING_SECRET="sign-file")
    monkeypatch.setenv("SECRETS_DIR", str(folder))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")  # NAME= as in .env.example: no value
    s = load_settings()
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-env"
    assert s.slack_signing_secret is not None
    assert s.slack_signing_secret.get_secret_value() == "sign-file"


def test_secrets_dir_can_be_named_in_dot_env(tmp_path: Path) -> None:
    folder = _secrets(tmp_path, ALERT_CHANNEL="C0FROMFILE")
    (tmp_path / ".env").write_text(f"SECRETS_DIR={folder}\n")
    assert load_settings().alert_channel == "C0FROMFILE"


def test_a_missing_secrets_dir_is_no_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "not-there"))
    assert load_settings().slack_bot_token is None  # and no warning (warnings are errors here)


def test_a_bad_value_in_a_secret_file_is_named_without_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _secrets(tmp_path, PORT="secret-looking-port")
    monkeypatch.setenv("SECRETS_DIR", str(folder))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "PORT" in str(caught.value) and "secret-looking-port" not in str(caught.value)


def test_database_password_goes_into_a_postgres_url_without_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _secrets(tmp_path, DATABASE_PASSWORD="p@ss/word")
    monkeypatch.setenv("SECRETS_DIR", str(folder))
    monkeypatch.setenv("DATABASE_URL", "postgresql://brincr@db:5432/brincr")
    s = load_settings()
    from sqlalchemy import make_url

    assert make_url(s.database_url).password == "p@ss/word"
    assert "p@ss/word" not in repr(s)
    monkeypatch.setenv("DATABASE_URL", "postgresql://brincr:own@db:5432/brincr")
    assert make_url(load_settings().database_url).password == "own"  # the URL's own wins
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    assert load_settings().database_url == "sqlite:///x.db"


def test_the_rollout_deadline_counts_from_its_first_day_in_the_team_timezone() -> None:
    from datetime import UTC, datetime

    s = load_settings(
        brincr_scopes="brincr:category",
        brincr_rollout_scopes="brincr:order",
        brincr_rollout_deadline="2027-01-31",
        timezone="Europe/Amsterdam",
    )
    before = datetime(2027, 1, 30, 22, 59, tzinfo=UTC)  # 23:59 on the 30th in Amsterdam
    on = datetime(2027, 1, 30, 23, 0, tzinfo=UTC)  # midnight: the 31st in Amsterdam
    assert s.rollout_scopes(before) == ("brincr:order",)
    assert s.required_scopes(before) == ("brincr:category",)
    assert s.rollout_scopes(on) == ()
    assert s.required_scopes(on) == ("brincr:category", "brincr:order")
    past = load_settings(brincr_scopes="a", brincr_rollout_scopes="b",
                         brincr_rollout_deadline="2020-01-01")  # fmt: skip
    assert past.rollout_enforced(before)  # a deadline already past is valid: enforce now
