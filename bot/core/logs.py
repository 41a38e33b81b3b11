"""Logging, configured once by the entry point. ``LOG_FORMAT=json`` gives one JSON object per
line; a context variable carries the current request or check id into every line."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get() or "-"
        return True


def configure_logging(log_format: str = "text", level: int | str = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_CorrelationFilter())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
                rename_fields={"levelname": "level", "asctime": "time"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_no_skipped_runs)
    quiet_payload_logs()


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
