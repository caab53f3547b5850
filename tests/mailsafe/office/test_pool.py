"""Render workers convert office documents with a warm converter of their own."""

from __future__ import annotations

from mailsafe.render import RenderOptions
from mailsafe.render.pool import RenderPool
from tests.support.documents import make_docx, make_mail


def test_a_render_worker_draws_office_documents_with_its_own_converter() -> None:
    with RenderPool(RenderOptions(), processes=1) as pool:
        for index in range(2):  # the second one reuses the warm converter
            name = f"보고서{index}.docx"
            rendered = pool.render(make_mail(attachments=[(name, make_docx("주간 보고"))]))
            assert rendered.manifest.status == "rendered"
            assert rendered.manifest.withheld == ()
            assert any(page.source == f"attachment:{name}" for page in rendered.manifest.pages)


def test_with_office_documents_off_a_worker_withholds_them_as_before() -> None:
    with RenderPool(RenderOptions(office_documents=False), processes=1) as pool:
        rendered = pool.render(make_mail(attachments=[("a.docx", make_docx("x"))]))
    assert [w.reason for w in rendered.manifest.withheld] == ["not_rendered_type"]
