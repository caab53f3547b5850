"""Text of PDF files, with PyMuPDF."""

from __future__ import annotations

from mailsafe.errors import HostileInput
from mailsafe.extract.limits import Budget
from mailsafe.mupdf import pymupdf


def pdf_text(data: bytes, budget: Budget) -> str:
    """The text layer of every page up to the page limit (scanned images carry none)."""
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except (RuntimeError, ValueError) as exc:
        raise HostileInput(f"not a readable PDF ({exc})", code="corrupt") from None
    with document:
        if document.needs_pass or document.is_encrypted:
            raise HostileInput("PDF is password-protected", code="encrypted")
        pages: list[str] = []
        for number in range(min(document.page_count, budget.limits.max_pdf_pages)):
            budget.check_time()
            try:
                page = document.load_page(number)
                pages.append(page.get_text("text"))
            except (RuntimeError, ValueError) as exc:
                raise HostileInput(
                    f"PDF page {number + 1} is broken ({exc})", code="corrupt"
                ) from None
        return "\n".join(pages)
