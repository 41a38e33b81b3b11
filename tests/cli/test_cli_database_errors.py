"""Every command facing a database it cannot use prints one line per problem and exits 2,
within seconds: a wrong URL, a missing directory, a server that refuses or never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = str(Path(sys.executable).with_name("brincr-bot"))
COMMANDS = [("db", "upgrade"), ("check",), ("customers", "export")]


class SilentServer:
    """A TCP server that accepts connections and never answers (a stalled PostgreSQL)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(
    tmp_path: Path, database_url: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": database_url,
           "BRINCR_SCOPES": "brincr:category", "PRODUCTION_CLIENT_ID": "id",
           "PRODUCTION_CLIENT_SECRET": "secret"}  # fmt: skip
    started = time.monotonic()
    result = subprocess.run([BIN, *args], env=env, capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)  # fmt: skip
    return result, time.monotonic() - started


def _assert_one_line_exit_2(result: subprocess.CompletedProcess[str], needle: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and needle in lines[0], lines
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://root:hunter2@127.0.0.1/brincr", "unsupported database 'mysql'"),
        ("this is not a url", "not a database URL"),
        ("sqlite:///{tmp}/no/such/dir/bot.db", "DATABASE_URL: "),
    ],
    ids=["mysql", "not-a-url", "missing-directory"],
)
def test_a_bad_database_url_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], url: str, needle: str
) -> None:
    result, _ = _run(tmp_path, url.format(tmp=tmp_path), *args)
    _assert_one_line_exit_2(result, needle)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_an_unreachable_postgresql_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{closed_port()}/brincr"
    result, _ = _run(tmp_path, url, *args)
    _assert_one_line_exit_2(result, "DATABASE_URL: the database at postgresql://postgres:***@")


def test_a_password_given_as_a_query_parameter_is_hidden_in_the_error_line(
    tmp_path: Path,
) -> None:
    """Issue 19, finding 5: libpq takes ``?password=`` too."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/brincr?password=hunter2"
    result, _ = _run(tmp_path, url, "db", "upgrade")
    _assert_one_line_exit_2(result, "/brincr?password=***")


def test_a_postgresql_that_accepts_and_never_answers_fails_upgrade_within_seconds(
    tmp_path: Path, silent_server: SilentServer
) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{silent_server.port}/brincr"
    result, took = _run(tmp_path, url, "db", "upgrade")
    _assert_one_line_exit_2(result, "DATABASE_URL: ")
    assert took < 15, f"took {took:.1f}s"


@pytest.mark.parametrize("args", [("check",), ("customers", "export")], ids=" ".join)
def test_a_reading_command_refuses_an_sqlite_database_that_does_not_exist(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    result, _ = _run(tmp_path, f"sqlite:///{missing}", *args)
    _assert_one_line_exit_2(result, "does not exist")
    assert not missing.exists()
