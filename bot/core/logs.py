"""Logging, configured once by the entry point. ``LOG_FORMAT=json`` gives one JSON object per
line; a context variable carries the current request or check id into every line."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get() or "-"
        return True


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with control characters (newlines included) written as escapes, so nothing
    logged can start a line of its own or rewrite the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)


def iso_time(record: logging.LogRecord) -> str:
    """The record's time as ISO 8601 in UTC with milliseconds: ``2026-12-02T17:29:39.828Z``
    (what log shippers parse without a format string, the same on every host)."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line; ``time`` in ISO 8601 UTC."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)


class TextFormatter(logging.Formatter):
    """One record, one line: the message's control characters are escaped (a raw newline in
    a request would otherwise forge a log line). A traceback still follows on its lines.
    The time is ISO 8601 in UTC, as in the JSON lines."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class _LibraryPayloads(logging.Filter):
    """Slack's libraries put whole payloads into log messages: Bolt's "Invalid request
    signature detected (… body: …)" at INFO for every unverified request, "Unhandled
    request ({…})", "request body: …", Socket Mode envelopes at DEBUG. Those carry
    invitation codes, response URLs and anything a forger typed. Keep the words before the
    payload, never the payload, at every level."""

    PREFIXES = ("slack_bolt", "slack_sdk.socket_mode", "slack_sdk.web", "slack_sdk.webhook")
    MARKERS = ("(", "{", "[", "body:", "body :", "payload", "message:")
    LONGEST = 160

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiohttp.server":
            return self._malformed_http(record)
        if not record.name.startswith(self.PREFIXES):
            return True
        message = record.getMessage()
        cut = min((i for m in self.MARKERS if (i := message.find(m)) >= 0), default=-1)
        if cut >= 0:
            message = message[:cut].rstrip(" :,(") + " (payload not logged)"
        elif len(message) > self.LONGEST:
            message = message[: self.LONGEST] + "… (cut)"
        if record.name.startswith("slack_sdk.webhook"):  # response URLs: anyone may post there
            message = _URL.sub("<response url>", message)
        record.msg, record.args = message, ()
        return True

    @staticmethod
    def _malformed_http(record: logging.LogRecord) -> bool:
        """aiohttp logs a request it cannot parse with a traceback that quotes the raw request
        line or header (a code in a query string, a forged line): keep one line, the reason."""
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and type(error).__module__.startswith("aiohttp.http_exceptions"):
            reason = f"{type(error).__name__}, {getattr(error, 'code', 400)}"
            record.msg = f"{record.getMessage()}: malformed request refused ({reason})"
            record.args, record.exc_info, record.exc_text = (), None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure_logging(log_format: str = "text", level: int | str = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CorrelationFilter())
    handler.addFilter(_LibraryPayloads())
    if log_format == "json":
        handler.setFormatter(
            JsonLineFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler says "Added job …" per job and "Scheduler started" (14 INFO lines a start;
    # the bot logs its own start line); a job's failure is an ERROR it still logs. Alembic's
    # plugins announce themselves (7 lines) and its context describes the dialect; its
    # "Running upgrade a -> b" lines are kept.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_no_skipped_runs)
    migration = logging.getLogger("alembic.runtime.migration")
    if _no_dialect_lines not in migration.filters:
        migration.addFilter(_no_dialect_lines)
    quiet_payload_logs()


def _no_dialect_lines(record: logging.LogRecord) -> bool:
    """Alembic's "Context impl SQLiteImpl." and "Will assume non-transactional DDL.": true
    for every run, useful for none."""
    return not str(record.msg).startswith(("Context impl ", "Will assume "))


def _no_skipped_runs(record: logging.LogRecord) -> bool:
    """APScheduler warns on every tick a job is still running (5 lines a second while the
    database stalls a sweep); the job's own failure line says what is wrong."""
    return "maximum number of running instances reached" not in record.getMessage()


class _WithoutBodies(logging.Filter):
    """Debug logs of libraries that write whole payloads: slack_sdk logs request and response
    bodies (``Sending a request - url: …, json: {…}``), aiosqlite every call with its SQL
    parameters. Keep the first words (URL, status, the operation), never the payload."""

    PREFIXES = ("Sending a request", "Received the following response")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            return True
        if record.name == "aiosqlite":
            record.msg, record.args = f"{str(record.msg).split(' ')[0]} (arguments not logged)", ()
            return True
        message = record.getMessage()
        if message.startswith(self.PREFIXES):
            record.msg, record.args = message.split(", ", 1)[0] + " (body not logged)", ()
        return True


PAYLOAD_LOGGERS = (
    "slack_sdk.web.async_base_client",
    "slack_sdk.web.base_client",
    "slack_sdk.webhook.async_client",
    "slack_sdk.webhook.client",
    "aiosqlite",
)


def quiet_payload_logs() -> None:
    """Invitation codes travel in hand-off messages and invitation rows: keep these
    libraries' payloads out of the log (idempotent)."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutBodies) for f in logger.filters):
            logger.addFilter(_WithoutBodies())
