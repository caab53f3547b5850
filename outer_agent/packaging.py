"""From raw mail to the bundle content of stream ``inbound``: render in a worker process
(``mailsafe.render.pool.RenderPool``), then fill in what only the outer agent knows (mail id,
envelope, authentication results) and encode (``mailsafe.payload.encode_package``).

Importing this module loads the renderer (PyMuPDF): the agent imports it only when it runs
(``outer_agent.main``), so light commands and the SMTP acceptor processes never do."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from mailsafe.inbound_filter import FilterJob, FilterResult
from mailsafe.inbound_rules import UNIQUE_IDENTIFIERS
from mailsafe.payload import AuthResults, InboundMark, RenderedMail, encode_package
from mailsafe.payload import Envelope as PackageEnvelope
from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import RenderPool, headers_only
from outer_agent.authres import AuthVerdict
from outer_agent.config import RenderSection
from outer_agent.pipeline import PackageOutcome
from outer_agent.spool import Envelope

__all__ = ["WITHOUT_POLICY_MASK", "MailsafePackager", "render_pool"]

# What is masked while no inbound policy is in force: the default rules' default_mask.
WITHOUT_POLICY_MASK = frozenset(UNIQUE_IDENTIFIERS)


def render_pool(section: RenderSection, *, processes: int | None = None) -> RenderPool:
    """The render workers with the limits of ``[render]`` (the agent, ``maildiode render``)."""
    options = RenderOptions(
        backend=section.backend,
        text_layer=section.text_layer,
        font_dir=section.font_dir,
        office_documents=section.office_documents,
        office_wall_seconds=section.office_wall_seconds,
        # Documents' values hidden also where a page breaks them over lines (D97).
        mask_document_text=True,
    )
    return RenderPool(
        options,
        processes=section.processes if processes is None else processes,
        cpu_seconds=section.cpu_seconds,
        memory_bytes=section.memory_mb << 20,
        wall_seconds=section.wall_seconds,
        pin_cpus=section.pin_workers,
    )


class MailsafePackager:
    """The pipeline's Packager on top of mailsafe."""

    def __init__(self, pool: RenderPool) -> None:
        self.pool = pool

    @classmethod
    def from_config(cls, section: RenderSection) -> MailsafePackager:
        return cls(render_pool(section))

    def package(self, raw: bytes, envelope: Envelope, auth: AuthVerdict) -> PackageOutcome:
        """A mail rendered with no inbound policy in force (none published yet, or none kept):
        the unique identifiers masked all the same, as the default rules would (issue 17.3)."""
        return _finish(self.pool.render(raw, mask_types=WITHOUT_POLICY_MASK), envelope, auth)

    def not_displayable(
        self, raw: bytes, envelope: Envelope, auth: AuthVerdict, reason: str
    ) -> PackageOutcome:
        """Headers only, read with bounds in this process: the renderer is not trusted with it."""
        return _finish(headers_only(raw, reason, WITHOUT_POLICY_MASK), envelope, auth)

    # ---- the receive filters (outer_agent.filtering.FilterPackager)

    def filter(self, raw: bytes, job: FilterJob) -> tuple[FilterResult | None, str]:
        return self.pool.filter(raw, job)

    def render_masked(self, raw: bytes, mask: Sequence[str]) -> RenderedMail:
        return self.pool.render(raw, mask_types=frozenset(mask))

    def headers_only(self, raw: bytes, reason: str) -> RenderedMail:
        """Headers only, read with bounds in this process (the renderer failed on it)."""
        return headers_only(raw, reason)

    def finish(
        self, rendered: RenderedMail, envelope: Envelope, auth: AuthVerdict, mark: InboundMark
    ) -> bytes:
        return _finish(rendered, envelope, auth, mark).package

    def close(self) -> None:
        self.pool.close()


def _finish(
    rendered: RenderedMail, envelope: Envelope, auth: AuthVerdict, mark: InboundMark | None = None
) -> PackageOutcome:
    manifest = dataclasses.replace(
        rendered.manifest,
        mail_id=envelope.mail_id,
        envelope=PackageEnvelope(
            mail_from=envelope.mail_from,
            rcpt_to=envelope.rcpt_to,
            received_at=_iso(envelope.received_at),
            client_addr=envelope.client_addr,
            helo=envelope.helo,
            tls=envelope.tls,
        ),
        auth=AuthResults(spf=auth.spf, dkim=auth.dkim, dmarc=auth.dmarc, summary=auth.summary),
        inbound=mark,
    )
    final = dataclasses.replace(rendered, manifest=manifest)
    return PackageOutcome(
        package=encode_package(final),
        status=manifest.status,
        reason=manifest.reason,
        pages=len(manifest.pages),
    )


def _iso(epoch: float) -> str:
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"
