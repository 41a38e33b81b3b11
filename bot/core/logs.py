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
    # A tick that runs long delays the next one (max_instances=1, coalesce: by design), and
    # APScheduler warns for every run it skips meanwhile; the scheduler itself reports stalls.
    logging.getLogger("apscheduler.scheduler").addFilter(_NOT_SKIPPED_RUNS)
    quiet_payload_logs()


class _NotSkippedRuns(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_NOT_SKIPPED_RUNS = _NotSkippedRuns()  # one instance: addFilter ignores a filter already there


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
