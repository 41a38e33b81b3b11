"""The lock files agree with pyproject.toml: every dependency is pinned, with hashes, to a
version its range allows (scripts/lock rewrites them; this fails until it has been run)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEV = PROJECT["optional-dependencies"]["dev"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.M)


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    pins = {canonicalize_name(n): v for n, v in PIN.findall(text)}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in b for b in blocks if PIN.match(b)), f"{name}: a pin has no hash"
    return pins


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        ("requirements-dev.lock", PROJECT["dependencies"] + DEV),
    ],
)
def test_every_dependency_is_pinned_within_its_range(lock: str, requirements: list[str]) -> None:
    pins = _pins(lock)
    for line in requirements:
        req = Requirement(line)
        version = pins.get(canonicalize_name(req.name))
        assert version is not None, f"{req.name} is not in {lock}: run scripts/lock"
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock} pins {req.name}=={version}, outside {req.specifier}: run scripts/lock"
        )


def test_the_runtime_lock_holds_no_development_tool() -> None:
    runtime = _pins("requirements.lock")
    for line in DEV:
        assert canonicalize_name(Requirement(line).name) not in runtime


def test_both_locks_pin_the_runtime_set_alike() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {n: dev.get(n) for n in runtime} == runtime
