"""The command line, run as a real process against the stand-in (`brincr-bot simulate`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
BIN = str(Path(sys.executable).with_name("brincr-bot"))
CSV = f"""kvk,name,environment,tenant_id,account_manager
12345678,Bouwbedrijf De Vries B.V.,production,{T1},U0AM
2345.6789,Installatietechniek Jansen,sandbox,{T2},
34567890,Dakwerken <!channel>,production,,U0AM
"""


@pytest.fixture(scope="module")
def stand_in() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [BIN, "simulate", "--port", "0"], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while len(env) < 8 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("export "):
            name, _, value = line[7:].strip().partition("=")
            env[name] = value
    assert len(env) == 8, "the stand-in did not start"
    yield env
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


@pytest.fixture
def run(stand_in: dict[str, str], tmp_path: Path) -> Iterator[object]:
    url = stand_in["PRODUCTION_TOKEN_URL"].split("/production/")[0]
    httpx.post(f"{url}/_control/reset")
    for tenant, env in ((T1, "production"), (T2, "sandbox")):
        body = {"tenant_id": tenant, "environment": env, "scopes": ["brincr:category"]}
        httpx.post(f"{url}/_control/tenants", json=body).raise_for_status()
    env = {**os.environ, **stand_in, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "BRINCR_SCOPES": "brincr:category"}  # fmt: skip

    def invoke(
        *args: str, stdin: str | None = None, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BIN, *args], env={**env, **(extra or {})}, capture_output=True,
                              text=True, input=stdin, cwd=tmp_path, timeout=60)  # fmt: skip

    (tmp_path / "customers.csv").write_text(CSV)
    yield invoke


def test_import_then_check_reports_each_customer_as_json(run: object) -> None:
    invoke = run  # type: ignore[assignment]
    assert invoke("customers", "import", "customers.csv").returncode == 0  # type: ignore[operator]
    result = invoke("check", "--json")  # type: ignore[operator]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    by_kvk = {row["kvk"]: row for row in rows}
    assert by_kvk["12345678"]["state"] == "healthy"
    assert by_kvk["12345678"]["probe_status"] == 200
    assert by_kvk["23456789"]["environment"] == "sandbox"
    assert by_kvk["34567890"]["state"] == "invited"
    for row in rows:
        for key in ("kvk", "name", "environment", "tenant_id", "state", "granted_scopes",
                    "missing_scopes", "probe_status", "error"):  # fmt: skip
            assert key in row
    secret = os.environ.get("PRODUCTION_CLIENT_SECRET", "sim-production-secret")
    assert secret not in result.stdout + result.stderr


def test_check_exits_1_when_a_customer_is_not_healthy(
    run: object, stand_in: dict[str, str]
) -> None:
    invoke = run
    invoke("customers", "import", "customers.csv")  # type: ignore[operator]
    url = stand_in["PRODUCTION_TOKEN_URL"].split("/production/")[0]
    httpx.post(f"{url}/_control/tenants/{T1}/revoke", json={"scopes": ["brincr:category"]})
    result = invoke("check", "12345678")  # type: ignore[operator]
    assert result.returncode == 1
    assert "scopes_missing" in result.stdout and "brincr:category" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("check", "1234"), "not a KvK number"), (("check", "99999999"), "no customer with KvK")],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    run: object, args: tuple[str, ...], needle: str
) -> None:
    assert run("db", "upgrade").returncode == 0  # type: ignore[operator]
    result = run(*args)  # type: ignore[operator]
    assert result.returncode == 2 and needle in result.stderr
    assert "Traceback" not in result.stderr
    assert "configuration error" not in result.stderr  # a usage mistake, said as one
    assert "Usage: brincr-bot check [OPTIONS] [KVKS]..." in result.stderr


def test_missing_settings_exit_2(run: object, tmp_path: Path) -> None:
    result = subprocess.run([BIN, "check"], env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "BRINCR_SCOPES is not set" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_its_settings_names_each_and_exits_2(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECK_INTERVAL": "soon"}
    result = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "check_interval" in result.stderr.lower()
    env.pop("CHECK_INTERVAL")
    result = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    for needle in ("SLACK_BOT_TOKEN", "ALERT_CHANNEL", "SLACK_SIGNING_SECRET", "BRINCR_SCOPES"):
        assert sum(needle in line for line in lines) == 1, lines


def test_a_bad_csv_imports_nothing_and_names_each_line(run: object, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(
        "kvk,name,environment,tenant_id,account_manager\n"
        "12345678,Good Row,production,,\n"
        "123,Short KvK,production,,\n"
        "23456789,Bad Env,staging,,\n"
        "12345678,Duplicate,production,,\n"
        "34567890,Bad Tenant,production,not-a-uuid,\n"
    )
    result = run("customers", "import", "bad.csv")  # type: ignore[operator]
    assert result.returncode == 1
    for needle in ("line 3:", "line 4:", "line 5: duplicate kvk", "line 6:", "nothing was"):
        assert needle in result.stderr
    assert run("customers", "export").stdout.count("\n") == 1  # type: ignore[operator]


def test_import_is_idempotent_and_export_round_trips(run: object, tmp_path: Path) -> None:
    first = run("customers", "import", "customers.csv")  # type: ignore[operator]
    again = run("customers", "import", "customers.csv")  # type: ignore[operator]
    assert first.stdout.startswith("3 added") and again.stdout.startswith("0 added, 0 updated")
    exported = run("customers", "export").stdout  # type: ignore[operator]
    (tmp_path / "exported.csv").write_text(exported)
    assert run("customers", "import", "exported.csv").stdout.startswith("0 added, 0 updated")  # type: ignore[operator]
    assert "2345.6789" not in exported and "23456789" in exported


def test_a_missing_column_is_named(run: object, tmp_path: Path) -> None:
    (tmp_path / "cols.csv").write_text("kvk,name\n12345678,X\n")
    result = run("customers", "import", "cols.csv")  # type: ignore[operator]
    assert result.returncode == 1 and "missing column(s): environment" in result.stderr


def test_a_rollout_shows_in_check_json_and_the_export_and_bad_rollout_settings_exit_2(
    run: object,
) -> None:
    invoke = run  # type: ignore[assignment]
    rollout = {"BRINCR_ROLLOUT_SCOPES": "brincr:country"}  # the tenants granted category only
    assert invoke("customers", "import", "customers.csv").returncode == 0  # type: ignore[operator]
    result = invoke("check", "--json", extra=rollout)  # type: ignore[operator]
    assert result.returncode == 0, result.stderr  # lacking only a rollout scope: healthy
    by_kvk = {row["kvk"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert by_kvk["12345678"]["state"] == "healthy"
    assert by_kvk["12345678"]["rollout_missing_scopes"] == ["brincr:country"]
    export = invoke("customers", "export", "--with-state", extra=rollout)  # type: ignore[operator]
    header, first = export.stdout.splitlines()[:2]
    assert header.endswith(",last_checked_at,rollout_missing_scopes")
    assert first.endswith(",brincr:country")
    plain = invoke("customers", "export", "--with-state")  # type: ignore[operator]
    assert plain.stdout.splitlines()[0].endswith(",last_checked_at")  # no rollout: no column

    bad = {"BRINCR_ROLLOUT_SCOPES": "brincr:category", "BRINCR_ROLLOUT_DEADLINE": "31-01-2027"}
    refused = invoke("check", extra=bad)  # type: ignore[operator]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert any("BRINCR_ROLLOUT_SCOPES: brincr:category also in" in line for line in lines)
    assert any("BRINCR_ROLLOUT_DEADLINE: not a date in the form YYYY-MM-DD" in ln for ln in lines)
