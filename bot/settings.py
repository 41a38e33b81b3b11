"""Settings: every name of docs/interface.md, read from the environment and from ``.env``.

Build one :class:`Settings` in the entry point with :func:`load_settings` and pass it down.
Wrong values become :class:`~bot.core.errors.ConfigError` with one readable line per problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.core.errors import ConfigError, UserError
from bot.core.redact import hide_url_secrets
from bot.domain import Environment, parse_duration, parse_scopes
from bot.domain.scopes import ScopeTerms
from bot.domain.weekly import parse_weekly


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(str(value))
    except UserError as error:  # its message quotes the value: never echo a setting's value
        raise ValueError(f"not a duration; {error.usage}") from None


def _csv(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value or "").split(",") if part.strip())


def _wait(value: Any) -> timedelta:
    """A duration that may be ``0`` (off): ``ALERT_GROUP_WAIT``."""
    if isinstance(value, str) and re.fullmatch(r"\s*0+\s*[smhd]?\s*", value):
        return timedelta(0)
    return _duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Wait = Annotated[timedelta, BeforeValidator(_wait)]
CsvList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_csv)]


@dataclass(frozen=True)
class EnvironmentConfig:
    """What the bot needs to reach one Visma Developer Portal app and its Brincr API."""

    name: Environment
    client_id: str
    client_secret: SecretStr
    token_url: str
    api_url: str


class Settings(BaseSettings):
    # Sources, strongest first: keyword arguments, the environment, .env, files in SECRETS_DIR
    # (see load_settings). An empty variable (NAME=, as in .env.example) is no value at all, so
    # it neither shadows a secret file nor overrides a default.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    database_url: str = "sqlite:///brincr-bot.db"
    # The password for a postgresql DATABASE_URL that has none, kept apart so that it can be a
    # secret file (compose.yml hands the same file to the postgres container).
    database_password: SecretStr | None = None
    secrets_dir: str = "/run/secrets"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    alert_channel: str | None = None
    onboarding_channel: str | None = None
    bot_admins: CsvList = ()

    production_client_id: str | None = None
    production_client_secret: SecretStr | None = None
    production_token_url: str = "https://connect.visma.com/connect/token"
    production_api_url: str = "https://api.brincr.com/api/v1/"
    sandbox_client_id: str | None = None
    sandbox_client_secret: SecretStr | None = None
    sandbox_token_url: str = "https://connect.identity.stagaws.visma.com/connect/token"
    sandbox_api_url: str = "https://sandbox-api.brincr.com/api/v1/"

    brincr_scopes: Annotated[tuple[str, ...], NoDecode] = ()
    brincr_probe_path: str = "categories"
    # scope rollouts (#17): requested, tracked, not alerted until the deadline
    brincr_rollout_scopes: Annotated[tuple[str, ...], NoDecode] = ()
    brincr_rollout_deadline: date | None = None
    check_interval: Duration = timedelta(minutes=15)
    check_concurrency: int = Field(default=50, ge=1, le=1000)
    check_timeout: Duration = timedelta(seconds=10)
    failure_threshold: int = Field(default=2, ge=1, le=100)
    alert_repeat: Duration = timedelta(hours=4)
    alert_group_wait: Wait = timedelta(seconds=60)  # bot.alerts.holds; 0: alert at once
    invite_stale_after: Duration = timedelta(days=7)
    visma_webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()

    # support and reporting (#14)
    digest_channel: str | None = None
    digest_schedule: str = "mon 09:00"
    timezone: str = "Europe/Amsterdam"
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = ()

    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # on-call (#13)
    sandbox_alert_channel: str | None = None
    alert_mention: CsvList = ()
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    pagerduty_environments: CsvList = ("production",)

    @field_validator("alert_mention")
    @classmethod
    def _mention(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not (v[:1] in ("U", "W", "S") and v.isalnum())]
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected a user-group ID (S…) or user IDs (U…)")
        return value

    @field_validator("pagerduty_environments")
    @classmethod
    def _paging(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.lower() for v in value)
        bad = [v for v in names if v not in {e.value for e in Environment}]
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected production and/or sandbox")
        return names

    def alert_channel_for(self, environment: str) -> str:
        """Where an environment's incidents go: sandbox to SANDBOX_ALERT_CHANNEL if set."""
        if environment == Environment.SANDBOX and self.sandbox_alert_channel:
            return self.sandbox_alert_channel
        return self.alert_channel or ""

    def pages(self, environment: str) -> bool:
        """True when the environment's incidents are mirrored to PagerDuty."""
        key = self.pagerduty_routing_key
        return bool(key and key.get_secret_value()) and environment in self.pagerduty_environments

    def alert_mention_text(self) -> str:
        """ALERT_MENTION as Slack mrkdwn: ``<!subteam^S…>`` for groups, ``<@U…>`` for users."""
        return " ".join(
            f"<!subteam^{v}>" if v[:1] == "S" else f"<@{v}>" for v in self.alert_mention
        )

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, values: Any) -> Any:
        """``NAME=`` (as in .env.example) means the same as no NAME at all: the default.
        Without this an empty SLACK_APP_TOKEN turned Socket Mode on."""
        if not isinstance(values, dict):
            return values
        return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            backend = make_url(value.strip().replace("postgres://", "postgresql://", 1))
        except ArgumentError:
            raise ValueError(
                "not a database URL: use sqlite:///path/to/file.db or postgresql://user@host/db"
            ) from None
        if backend.get_backend_name() not in ("sqlite", "postgresql"):
            name = backend.get_backend_name()
            raise ValueError(f"unsupported database {name!r}: use sqlite:/// or postgresql://")
        return value.strip()

    @model_validator(mode="after")
    def _database_password(self) -> Settings:
        """Put DATABASE_PASSWORD into a postgresql DATABASE_URL that has no password."""
        password = self.database_password.get_secret_value() if self.database_password else ""
        if not password:
            return self
        url = make_url(self.database_url.replace("postgres://", "postgresql://", 1))
        if url.get_backend_name() == "postgresql" and not url.password:
            self.database_url = url.set(password=password).render_as_string(hide_password=False)
        return self

    @field_validator("brincr_scopes", "brincr_rollout_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, list | tuple):
            return tuple(value)
        return parse_scopes(str(value or ""))

    @field_validator("brincr_rollout_scopes")
    @classmethod
    def _rollout_not_required(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        both = [s for s in value if s in info.data.get("brincr_scopes", ())]
        if both:
            raise ValueError(
                f"{' '.join(both)} also in BRINCR_SCOPES: a scope is either required or being "
                "rolled out (when the rollout is done, keep it in BRINCR_SCOPES only)"
            )
        return value

    @field_validator("brincr_rollout_deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> date | None:
        if value is None or isinstance(value, date):
            return value
        text = str(value).strip()
        if not text:
            return None
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError("not a date in the form YYYY-MM-DD, e.g. 2027-01-31")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("not a date in the form YYYY-MM-DD, e.g. 2027-01-31") from None

    @field_validator("visma_webhook_secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> tuple[SecretStr, ...]:
        return tuple(SecretStr(part) for part in _csv(value))

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _api_tokens(cls, value: Any) -> tuple[SecretStr, ...]:
        return tuple(SecretStr(part) for part in _csv(value))

    @field_validator("digest_schedule")
    @classmethod
    def _digest_schedule(cls, value: str) -> str:
        parse_weekly(value)  # ValueError names the right form
        return value.strip().lower()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name, e.g. Europe/Amsterdam") from None
        return value.strip()

    @field_validator("bot_admins")
    @classmethod
    def _admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not (v[:1] in ("U", "W", "S") and v.isalnum())]
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected Slack user IDs (U…) or group IDs (S…)")
        return value

    @field_validator("brincr_probe_path")
    @classmethod
    def _probe_path(cls, value: str) -> str:
        return value.strip().lstrip("/")

    @field_validator("production_api_url", "sandbox_api_url", "slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def __repr_args__(self) -> Any:
        """``repr`` and ``str``: secrets are SecretStr already; URLs lose their password."""
        for name, value in super().__repr_args__():
            yield name, hide_url_secrets(value) if isinstance(value, str) else value

    @property
    def onboarding_channel_id(self) -> str | None:
        return self.onboarding_channel or self.alert_channel

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def environment(self, name: Environment | str) -> EnvironmentConfig | None:
        """The environment's app, or None when its client ID is not set (not available)."""
        env = Environment(name)
        prefix = env.value
        client_id = getattr(self, f"{prefix}_client_id")
        if not client_id:
            return None
        secret = getattr(self, f"{prefix}_client_secret") or SecretStr("")
        return EnvironmentConfig(
            name=env,
            client_id=client_id,
            client_secret=secret,
            token_url=getattr(self, f"{prefix}_token_url"),
            api_url=getattr(self, f"{prefix}_api_url"),
        )

    def rollout_enforced(self, now: datetime) -> bool:
        """From ``BRINCR_ROLLOUT_DEADLINE`` on (in ``TIMEZONE``) rollout scopes are required."""
        deadline = self.brincr_rollout_deadline
        return deadline is not None and now.astimezone(self.tz).date() >= deadline

    def required_scopes(self, now: datetime) -> tuple[str, ...]:
        """The scopes every customer must grant at ``now``: ``BRINCR_SCOPES``, and the rollout
        scopes too once the deadline has come."""
        if self.rollout_enforced(now):
            return self.brincr_scopes + self.brincr_rollout_scopes
        return self.brincr_scopes

    def rollout_scopes(self, now: datetime) -> tuple[str, ...]:
        """The scopes being rolled out at ``now`` (tracked, never alerted): none once the
        deadline has come (then they are required) or when no rollout runs."""
        return () if self.rollout_enforced(now) else self.brincr_rollout_scopes

    @property
    def requested_scopes(self) -> tuple[str, ...]:
        """Every scope the app requests: required and being rolled out. A new customer is
        asked to switch all of them ON (the hand-off)."""
        return self.brincr_scopes + self.brincr_rollout_scopes

    def terms(self, now: datetime) -> ScopeTerms:
        """The scopes required and being rolled out at ``now``, with the deadline."""
        return ScopeTerms(
            self.required_scopes(now), self.rollout_scopes(now), self.brincr_rollout_deadline
        )

    def configured_environments(self) -> list[EnvironmentConfig]:
        return [cfg for env in Environment if (cfg := self.environment(env)) is not None]

    def problems_for_checks(self) -> list[str]:
        problems = []
        if not self.brincr_scopes:
            problems.append("BRINCR_SCOPES is not set: name the scopes every customer must grant")
        if not self.configured_environments():
            problems.append(
                "neither PRODUCTION_CLIENT_ID nor SANDBOX_CLIENT_ID is set: no Visma app to check"
            )
        for env in self.configured_environments():
            if not env.client_secret.get_secret_value():
                problems.append(f"{env.name.upper()}_CLIENT_SECRET is not set")
        return problems


def _readable(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper() or "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return lines


def secrets_directory(overrides: dict[str, Any] | None = None) -> Path | None:
    """SECRETS_DIR (keyword, environment, ``.env``, else ``/run/secrets``) when it is a
    directory; None when it is missing: most deployments mount no secrets, and that is fine."""
    named = (overrides or {}).get("secrets_dir") or os.environ.get("SECRETS_DIR")
    if not named and Path(".env").is_file():
        named = dotenv_values(".env", encoding="utf-8").get("SECRETS_DIR")
    path = Path(str(named or "/run/secrets")).expanduser()
    return path if path.is_dir() else None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings (``overrides``, environment, ``.env``, then a file per setting in
    SECRETS_DIR); ConfigError if wrong.

    Messages never echo the offending value: it could be a secret.
    """
    directory = secrets_directory(overrides)
    try:
        return Settings(**overrides, _secrets_dir=directory)
    except ValidationError as error:
        raise ConfigError(_readable(error)) from None
