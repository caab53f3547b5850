"""docs/compliance.md names a test for every article; each named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "compliance.md"
ARTICLES = ("제15조", "제17조", "제18조", "제60조", "제22조", "제5조", "제6조", "제7조", "제8조",
            "제13조")  # fmt: skip
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def test_every_named_test_exists() -> None:
    named = NAMED.findall(DOC.read_text(encoding="utf-8"))
    assert len(named) >= 20
    missing = [
        f"{file}::{test}"
        for file, test in named
        if not re.search(rf"^def {test}\(", (ROOT / file).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []


def test_every_article_has_a_row_with_a_test() -> None:
    rows = [
        line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| 제")
    ]
    for article in ARTICLES:
        row = next((r for r in rows if r.startswith(f"| {article}")), None)
        assert row is not None, f"{article} has no row"
        assert NAMED.search(row), f"{article} names no test"
