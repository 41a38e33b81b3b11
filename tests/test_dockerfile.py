"""The Dockerfile is checked by reading (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.upper().startswith(name + " ")
    ]


def test_it_is_multi_stage_on_a_slim_base() -> None:
    bases = _instructions("FROM")
    assert len(bases) >= 2
    assert all("slim" in base for base in bases)


def test_it_runs_as_a_non_root_user() -> None:
    users = _instructions("USER")
    assert users and users[-1].strip() not in ("root", "0")
    assert DOCKERFILE.index("USER") > DOCKERFILE.rindex("FROM")


def test_it_exposes_the_port_and_checks_readyz() -> None:
    assert "3000" in " ".join(_instructions("EXPOSE"))
    healthcheck = " ".join(_instructions("HEALTHCHECK"))
    assert "/readyz" in healthcheck


def test_it_starts_the_bot_which_migrates_first() -> None:
    assert _instructions("CMD")[-1].strip() == '["brincr-bot", "serve"]'


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", "*.db"):
        assert entry in ignored
