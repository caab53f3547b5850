"""The checks a decoded inbound package must pass, pure: bytes in, a checked mail or a refusal.

:func:`check_package` refuses anything but a package that decodes under limits
(``decode_package``), has a safe mail id and a recipient in our domains, and whose every image
decodes again under the pixel cap (re-encoded by policy: ``inner_agent.images``,
``inner_agent.pngrewrite``). A refusal is a :class:`BundleRefused` with a stable reason code.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentkit.routing import routing_in_local_part
from inner_agent.images import ImageRefused, check_image
from inner_agent.notify import (
    MAX_ADDRESS_CHARS,
    CheckedImage,
    CheckedMail,
    clean_header_text,
    valid_mail_id,
)
from mailsafe.payload import MAX_IMAGE_PIXELS, PackageRefused, decode_package

__all__ = ["BundleRefused", "ImagePolicy", "check_package"]


class BundleRefused(Exception):
    """A bundle failed a check; ``code`` is the stable quarantine reason."""

    def __init__(self, code: str, detail: str, mail_id: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.mail_id = mail_id  # known once the package decoded and its id was checked


@dataclass(frozen=True)
class ImagePolicy:
    max_pixels: int = MAX_IMAGE_PIXELS
    reencode: bool = True


def check_package(
    untrusted: bytes, policy: ImagePolicy, our_domains: tuple[str, ...]
) -> tuple[CheckedMail, tuple[str, ...]]:
    """Decode and check one inbound package; (mail, recipients) or raises BundleRefused."""
    try:
        rendered = decode_package(untrusted)
    except PackageRefused as exc:
        raise BundleRefused("bad_package", str(exc)) from None
    manifest = rendered.manifest
    if not valid_mail_id(manifest.mail_id):
        raise BundleRefused("bad_mail_id", f"mail id {manifest.mail_id[:80]!r} is not safe")
    recipients = _recipients(manifest.envelope.rcpt_to, our_domains)
    if not recipients:
        raise BundleRefused("no_recipients", "no recipient in our domains", manifest.mail_id)
    images: list[CheckedImage] = []
    for index, (data, page) in enumerate(zip(rendered.images, manifest.pages, strict=True)):
        try:
            images.append(
                check_image(
                    data, page.media_type, max_pixels=policy.max_pixels, reencode=policy.reencode
                )
            )
        except ImageRefused as exc:
            raise BundleRefused(
                exc.code, f"image {index}: {exc.detail}", manifest.mail_id
            ) from None
    return CheckedMail(manifest, tuple(images), rendered.text), recipients


def _recipients(untrusted: tuple[str, ...], our_domains: tuple[str, ...]) -> tuple[str, ...]:
    """Plain addresses in our domains; anything else is dropped (never relayed onwards).

    Plain excludes sender-specified routing (``%``, ``!`` or ``@`` in the local part): the
    outer agent refuses it at RCPT, and a compromised one must not get it injected, since the
    internal server would relay such a notification back to the internet (issue 15.1).
    """
    found: list[str] = []
    for value in untrusted:
        address = clean_header_text(value, MAX_ADDRESS_CHARS)
        local, at, domain = address.rpartition("@")
        domain = domain.lower()
        plain = at and local and "." in domain and address.isascii()
        plain = plain and not any(c in address for c in ' <>()[],;:"\\')
        plain = plain and routing_in_local_part(address) is None
        ours = not our_domains or any(domain == d or domain.endswith("." + d) for d in our_domains)
        if plain and ours and address not in found:
            found.append(address)
    return tuple(found)
