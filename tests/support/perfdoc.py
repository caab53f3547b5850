"""docs/performance.md: each benchmark replaces its own "## Title" section, the rest stays."""

from __future__ import annotations

import re
from pathlib import Path

PERFORMANCE_DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"


def replace_section(section: str, doc: Path = PERFORMANCE_DOC) -> None:
    """Put ``section`` (starting with its "## Title" line) in place of the section of that
    title, or at the end when the document has none yet."""
    title = section.split("\n", 1)[0]
    if not title.startswith("## "):
        raise ValueError(f"a section starts with '## ', not {title[:40]!r}")
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    body = section.rstrip("\n") + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    doc.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
