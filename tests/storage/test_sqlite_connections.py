"""Several connections opening one SQLite file at once (``serve``'s listener and its check
engine each have a database engine; the CLI beside them another) never fail with "database is
locked": the busy timeout is set before any pragma that may meet another connection's lock.
A race, so it is run many times: with the timeout set last, about one opening in a hundred
failed here."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from storage.db import _sqlite_pragmas

OPENINGS = 300  # fresh copies of a WAL database, each opened by four connections at once


def _open(path: Path, failures: list[str]) -> None:
    try:
        connection = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            _sqlite_pragmas(connection, None)
            connection.execute("INSERT INTO t VALUES (1)")
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        failures.append(str(error))


def test_connections_opening_one_file_at_once_wait_for_each_other(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    setup = sqlite3.connect(template)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.commit()
    setup.close()
    failures: list[str] = []
    for i in range(OPENINGS):
        copy = tmp_path / f"copy-{i}.db"
        shutil.copy(template, copy)
        openers = [threading.Thread(target=_open, args=(copy, failures)) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []
