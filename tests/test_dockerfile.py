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


# Reproducible, cached builds (#20)


def _runs() -> list[str]:
    return _instructions("RUN")


def test_dependencies_come_from_the_lock_file_with_hashes_before_the_source() -> None:
    locked = [run for run in _runs() if "requirements.lock" in run]
    assert len(locked) == 1 and "--require-hashes" in locked[0]
    assert DOCKERFILE.index("COPY requirements.lock") < DOCKERFILE.index("COPY bot")
    assert DOCKERFILE.index(locked[0].split()[0]) < DOCKERFILE.index("COPY bot")
    source = [run for run in _runs() if "install --no-deps ." in run]
    assert len(source) == 1  # the project itself: no dependency resolved or downloaded again


def test_pip_is_pinned_with_hashes_and_installs_through_a_cache_mount() -> None:
    pins = (ROOT / "requirements-build.lock").read_text()
    assert re.search(r"^pip==[\d.]+ \\$", pins, re.M) and "--hash=sha256:" in pins
    build = [run for run in _runs() if "requirements-build.lock" in run]
    assert build and "--require-hashes" in build[0]
    for run in _runs():
        if " install " in run:
            assert "--mount=type=cache,target=/root/.cache/pip" in run, run


def test_the_runtime_image_carries_neither_pip_nor_setuptools() -> None:
    runtime = DOCKERFILE[DOCKERFILE.rindex("FROM") :]
    assert "venv --without-pip" in DOCKERFILE[: DOCKERFILE.rindex("FROM")]
    assert re.search(r"pip uninstall --yes\b.* pip setuptools wheel", runtime)
    assert "pip install" not in runtime


def test_it_carries_oci_labels() -> None:
    labels = " ".join(_instructions("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
