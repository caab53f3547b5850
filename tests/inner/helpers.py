"""Small builders for inner-agent unit tests: manifests, images, packages."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from agentkit.audit import AuditLog
from inner_agent.bundle_check import ImagePolicy
from inner_agent.bundle_handler import BundleHandler
from inner_agent.inject import InjectionQueue
from inner_agent.notify import CheckedImage, CheckedMail, NotifyOptions
from mailsafe.payload import (
    AuthResults,
    Envelope,
    HeaderBlock,
    Manifest,
    PageInfo,
    RenderedMail,
    Withheld,
)


def png(width: int = 40, height: int = 30, color: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def manifest(
    *,
    subject: str = "견적 요청",
    from_: str = "김철수 <kim@partner.example>",
    rcpt: tuple[str, ...] = ("user@corp.example",),
    pages: int = 1,
    width: int = 40,
    height: int = 30,
    mail_id: str = "0123456789abcdef0123456789abcdef",
    mail_from: str = "kim@partner.example",
) -> Manifest:
    return Manifest(
        version=1, mail_id=mail_id, status="rendered", reason=None,
        envelope=Envelope(mail_from=mail_from, rcpt_to=rcpt, received_at="2026-11-23T10:00:00Z",
                          client_addr="192.0.2.1", helo="mx.partner.example", tls=True),
        headers=HeaderBlock(from_=from_, to="user@corp.example", cc="", date="Mon, 23 Nov 2026",
                            subject=subject, message_id="<orig@partner.example>",
                            in_reply_to="<prev@partner.example>", references=""),
        auth=AuthResults(spf="pass", dkim="pass", dmarc="pass", summary="spf=pass dkim=pass dmarc=pass"),
        pages=tuple(PageInfo("image/png", width, height, "body", i) for i in range(pages)),
        withheld=(Withheld("setup.exe", "application/x-msdownload", 1_200_000, "ab" * 32,
                           "executable"),),
    )  # fmt: skip


def rendered(**kwargs: object) -> RenderedMail:
    info = manifest(**kwargs)  # type: ignore[arg-type]
    images = tuple(png(p.width, p.height) for p in info.pages)
    return RenderedMail(manifest=info, images=images, text="안녕하세요\n본문입니다")


def checked(**kwargs: object) -> CheckedMail:
    mail = rendered(**kwargs)
    images = tuple(
        CheckedImage(data, "image/png", p.width, p.height)
        for data, p in zip(mail.images, mail.manifest.pages, strict=True)
    )
    return CheckedMail(mail.manifest, images, mail.text)


def make_handler(folder: Path, *, max_pixels: int = 1_000_000) -> BundleHandler:
    """A BundleHandler on its own queue, audit log and quarantine folder in ``folder``."""
    return BundleHandler(
        InjectionQueue(folder / "q.db"), AuditLog(folder / "audit.db"),
        NotifyOptions(our_domains=("corp.example",)), ImagePolicy(max_pixels=max_pixels),
        folder / "quarantine",
    )  # fmt: skip
