"""The converter's parent side: a hang or a death costs only that document, the next one gets
a fresh sandbox; refusals have names; office documents of every kind become pages."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from mailsafe.office.converter import (
    ConverterLimits,
    OfficeConverter,
    OfficeRefused,
    OfficeUnavailable,
)
from mailsafe.render import RenderOptions, render_message
from tests.support.documents import make_docx, make_mail, make_pdf

FAKE = [sys.executable, str(Path(__file__).with_name("fake_child.py"))]
QUICK = ConverterLimits(wall_seconds=1.0, start_seconds=10.0)
DOCX = b"PK\x03\x04 a document"


def test_a_hanging_document_is_refused_and_the_next_gets_a_fresh_converter() -> None:
    with OfficeConverter(QUICK, FAKE) as converter:
        assert converter.convert(DOCX, "docx").startswith(b"%PDF")
        started = time.monotonic()
        with pytest.raises(OfficeRefused) as refused:
            converter.convert(DOCX + b"HANG", "docx")
        assert refused.value.code == "office_timeout"
        assert time.monotonic() - started < 5
        assert converter.convert(DOCX, "docx").startswith(b"%PDF")
        assert converter.started == 2


def test_a_converter_that_dies_costs_only_its_document() -> None:
    with OfficeConverter(QUICK, FAKE) as converter:
        with pytest.raises(OfficeRefused) as refused:
            converter.convert(DOCX + b"DIE", "docx")
        assert refused.value.code == "office_failed"
        assert converter.convert(DOCX, "docx").startswith(b"%PDF")


def test_a_converter_near_its_memory_limit_tries_once_more_in_a_fresh_sandbox() -> None:
    """The sandbox answers no PDF near its limit (it may lack a font it failed to load); the
    memory may be the earlier documents', so a fresh sandbox converts it."""
    with OfficeConverter(QUICK, FAKE) as converter:
        assert converter.convert(DOCX, "docx").startswith(b"%PDF")
        assert converter.convert(DOCX + b"MEMORY", "docx").startswith(b"%PDF")
        assert converter.started == 2


def test_a_document_that_needs_too_much_memory_even_alone_is_refused_by_name() -> None:
    with OfficeConverter(QUICK, FAKE) as converter:
        with pytest.raises(OfficeRefused) as refused:
            converter.convert(DOCX + b"MEMORY_ALWAYS", "docx")
        assert (refused.value.code, converter.started) == ("office_memory_limit", 2)
        assert converter.convert(DOCX, "docx").startswith(b"%PDF")
        assert converter.started == 3


def test_a_converter_that_does_not_start_is_unavailable() -> None:
    never_ready = [sys.executable, "-c", "import time; time.sleep(60)"]
    limits = ConverterLimits(start_seconds=0.5)
    with OfficeConverter(limits, never_ready) as converter, pytest.raises(OfficeUnavailable):
        converter.convert(DOCX, "docx")


def test_a_document_over_the_size_limit_is_not_sent() -> None:
    limits = ConverterLimits(max_document_bytes=10)
    with OfficeConverter(limits, FAKE) as converter:
        with pytest.raises(OfficeRefused) as refused:
            converter.convert(DOCX, "docx")
        assert (refused.value.code, converter.started) == ("too_large", 0)


def test_a_hanging_document_costs_only_its_own_attachment() -> None:
    """In a mail: the hanging document is withheld with its reason, the PDF beside it and the
    document after it are drawn."""
    raw = make_mail(attachments=[("hang.docx", DOCX + b"HANG"), ("report.pdf", make_pdf("PDF")),
                                 ("after.docx", DOCX)])  # fmt: skip
    with OfficeConverter(QUICK, FAKE) as converter:
        options = RenderOptions(office_wall_seconds=QUICK.wall_seconds)
        rendered = render_message(raw, options, converter)
    assert [(w.filename, w.reason) for w in rendered.manifest.withheld] == [
        ("hang.docx", "office_timeout")
    ]
    sources = {page.source for page in rendered.manifest.pages}
    assert {"attachment:report.pdf", "attachment:after.docx"} <= sources


def test_a_mail_of_hanging_documents_costs_twice_one_document_s_limit() -> None:
    """Not one limit per document, which would outlast the render worker's own limit and lose
    the whole mail: the mail's documents share twice one document's limit."""
    names = ["a.docx", "b.docx", "c.docx"]
    raw = make_mail(attachments=[(name, DOCX + b"HANG") for name in names])
    options = RenderOptions(office_wall_seconds=QUICK.wall_seconds)
    with OfficeConverter(QUICK, FAKE) as converter:
        started = time.monotonic()
        rendered = render_message(raw, options, converter)
        elapsed = time.monotonic() - started
    assert [(w.filename, w.reason) for w in rendered.manifest.withheld] == [
        ("a.docx", "office_timeout"),
        ("b.docx", "office_timeout"),
        ("c.docx", "office_skipped"),
    ]
    assert elapsed < 2 * QUICK.wall_seconds + 1.5  # the fake's fresh starts are quick


def test_without_a_converter_office_documents_are_withheld_with_a_reason() -> None:
    raw = make_mail(attachments=[("a.docx", make_docx("x"))])
    on = render_message(raw, RenderOptions())
    off = render_message(raw, RenderOptions(office_documents=False))
    assert [w.reason for w in on.manifest.withheld] == ["office_unavailable"]
    assert [w.reason for w in off.manifest.withheld] == ["not_rendered_type"]
