"""The generated blocks of docs/benchmarks.md: each benchmark that writes its figures owns one
block between its own ``begin`` and ``end`` markers and replaces it in place, leaving
everything around it (the hand-written notes, other benchmarks' blocks) alone."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def replace_block(begin: str, end: str, body: str, *, first: bool = False) -> None:
    """Write ``begin``, ``body``, ``end`` where the block was; a block not there yet goes at
    the end of the document (``first``: after its title)."""
    block = f"{begin}\n{body}\n{end}"
    doc = DOC.read_text(encoding="utf-8")
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    elif first:
        title, _, rest = doc.partition("\n\n")
        doc = f"{title}\n\n{block}\n\n{rest}"
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc, encoding="utf-8")
