"""The benchmarks' writer of docs/performance.md replaces only its own section."""

from __future__ import annotations

import pytest

from tests.support.perfdoc import replace_section


def test_a_section_is_replaced_in_place_and_a_new_one_appended(tmp_path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## Protocol\n\nold\n\n## OCR\n\nold ocr\n", encoding="utf-8")
    replace_section("## Protocol\n\nnew\n| a | b |\n", doc)
    replace_section("## Scanning\n\nfirst\n", doc)
    replace_section("## OCR\n\nnew ocr\n", doc)
    assert doc.read_text(encoding="utf-8") == (
        "# Performance\n\n## Protocol\n\nnew\n| a | b |\n\n## OCR\n\nnew ocr\n\n"
        "## Scanning\n\nfirst\n"
    )
    before = doc.read_text(encoding="utf-8")
    replace_section("## OCR\n\nnew ocr\n", doc)
    assert doc.read_text(encoding="utf-8") == before  # the same text twice changes nothing


def test_a_section_without_its_title_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="starts with '## '"):
        replace_section("figures without a title", tmp_path / "performance.md")
