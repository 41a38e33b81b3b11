"""CONTRIBUTING.md's worked example is real code: every line of its Python snippets is found,
in order, in the module the step names, so the example cannot drift from the code again."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"^\d+\. \*\*[^*]+\*\* \([^)]*?`([\w/]+\.py)`", re.MULTILINE)
SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _snippets() -> list[tuple[str, list[str]]]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    example = text[text.index("## Adding a subcommand, end to end") :]
    found = []
    for step in re.split(r"\n(?=\d+\. \*\*)", example):
        module = STEP.search(step)
        for code in SNIPPET.findall(step):
            lines = [x.strip() for x in code.splitlines() if x.strip() not in ("", "...")]
            found.append((module.group(1) if module else "", lines))
    return found


def test_the_worked_example_quotes_real_code() -> None:
    snippets = _snippets()
    assert len(snippets) >= 3
    for module, lines in snippets:
        assert module, f"a snippet under a step that names no module: {lines[:1]}"
        source = [line.strip() for line in (ROOT / module).read_text().splitlines()]
        at = 0
        for line in lines:
            assert line in source[at:], f"{module} has no line {line!r} (after line {at})"
            at = source.index(line, at) + 1
