"""The inbound package (a rendered mail) and the outbound bundle, as versioned msgpack.

Both directions are decoded by the receiving side as hostile: :func:`decode_package` and
:func:`decode_outbound` check sizes before decoding, refuse unknown keys, wrong types, trailing
bytes, media types other than PNG/JPEG/WebP and images whose bytes do not start with the magic
of their declared type. Any input either decodes or raises :class:`PackageRefused`.

Layout (msgpack map, string keys)::

    {"v": 1, "kind": "inbound", "manifest": {...}, "images": [bin, ...], "text": str | nil}
    {"v": 1, "kind": "outbound", "mail_id": str, "mail_from": str, "rcpt_to": [str],
     "data": bin, "decided_by": str, "decided_at": str}
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import msgpack

from mailsafe.errors import HostileInput

__all__ = [
    "MAX_IMAGE_PIXELS",
    "PACKAGE_VERSION",
    "AuthResults",
    "Envelope",
    "HeaderBlock",
    "Manifest",
    "Masked",
    "OutboundMail",
    "PackageLimits",
    "PackageRefused",
    "PageInfo",
    "RenderedMail",
    "Unchecked",
    "Withheld",
    "decode_outbound",
    "decode_package",
    "encode_outbound",
    "encode_package",
]

PACKAGE_VERSION = 1
MIB = 1024 * 1024
# Pixels one picture may have, wherever it is decoded: by the renderer (a picture in a mail, a
# PDF page it rasterises), in a package (what an image claims), by the inner agent's re-decoder
# (its default `images.max_pixels`). 24 Mpx = 6000 x 4000, a large camera photo; a bigger one
# is a decompression bomb. One value end to end, so nothing one side makes the other refuses.
MAX_IMAGE_PIXELS = 24_000_000
MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}


class PackageRefused(HostileInput):
    """A package or outbound bundle did not decode under the limits."""

    code = "bad_package"


@dataclass(frozen=True)
class PackageLimits:
    """What a receiver accepts from the other side of a link."""

    # The renderer's byte budget is 8 MiB per mail; headroom for the manifest and text.
    max_package_bytes: int = 12 * MIB
    # The renderer caps a mail at 40 images (tiles + attachment pages); the double is refused.
    max_images: int = 80
    # One image of a 2000 x 6000 px tile as PNG is well under this.
    max_image_bytes: int = 8 * MIB
    # Pixels one image may claim: the renderer's own cap, so nothing it makes is refused.
    max_image_pixels: int = MAX_IMAGE_PIXELS
    # Plain-text layer: the renderer cuts at 1 MiB of characters.
    max_text_chars: int = 2 * MIB
    # Any string field of the manifest (subjects, file names, reasons).
    max_string_chars: int = 64 * 1024
    # Any list field of the manifest (recipients, withheld attachments, notes).
    max_list_items: int = 1000
    # An outbound mail is the original message; internal servers cap at ~50 MB.
    max_outbound_bytes: int = 64 * MIB


@dataclass(frozen=True)
class Envelope:
    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    received_at: str = ""
    client_addr: str = ""
    helo: str = ""
    tls: bool = False


@dataclass(frozen=True)
class HeaderBlock:
    from_: str = ""
    to: str = ""
    cc: str = ""
    date: str = ""
    subject: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""


@dataclass(frozen=True)
class AuthResults:
    spf: str = ""
    dkim: str = ""
    dmarc: str = ""
    summary: str = ""


@dataclass(frozen=True)
class PageInfo:
    media_type: str
    width: int
    height: int
    source: str  # "body", "attachment:<name>", "forwarded"
    index: int


@dataclass(frozen=True)
class Withheld:
    filename: str
    content_type: str
    size: int
    sha256: str
    reason: str


@dataclass(frozen=True)
class Masked:
    """Personal data of one type masked in one place before it became pixels or text
    (``RenderOptions.mask_types``; docs/rendering.md, "Masking")."""

    type: str  # a mailsafe.pii type: rrn, foreigner_id, driver_license, passport, ...
    source: str  # "header", "body", "attachment:<name>" (the name as shown, masked itself)
    page: int  # the page of a PDF attachment, from 1; 0 where the place has no pages
    method: str  # "text": found in text or a PDF's text; "ocr": read in pixels by Tesseract
    count: int


@dataclass(frozen=True)
class Unchecked:
    """A picture or page whose pixels could not be checked for the masked types: it is shown
    as it is, and the notification says so."""

    source: str
    page: int
    reason: str  # "ocr_unavailable", "ocr_budget", "ocr_failed"


@dataclass(frozen=True)
class Manifest:
    version: int
    mail_id: str
    status: Literal["rendered", "not_displayable"]
    reason: str | None
    envelope: Envelope = field(default_factory=Envelope)
    headers: HeaderBlock = field(default_factory=HeaderBlock)
    auth: AuthResults = field(default_factory=AuthResults)
    pages: tuple[PageInfo, ...] = ()
    withheld: tuple[Withheld, ...] = ()
    notes: tuple[str, ...] = ()
    masked: tuple[Masked, ...] = ()
    unchecked: tuple[Unchecked, ...] = ()


@dataclass(frozen=True)
class RenderedMail:
    manifest: Manifest
    images: tuple[bytes, ...] = ()
    text: str | None = None


@dataclass(frozen=True)
class OutboundMail:
    mail_id: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    decided_by: str
    decided_at: str


# --------------------------------------------------------------------------- encode


def _to_plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def encode_package(mail: RenderedMail) -> bytes:
    """The bundle content of stream "inbound" for one rendered mail."""
    document = {
        "v": PACKAGE_VERSION,
        "kind": "inbound",
        "manifest": _to_plain(mail.manifest),
        "images": list(mail.images),
        "text": mail.text,
    }
    return bytes(msgpack.packb(document, use_bin_type=True))


def encode_outbound(mail: OutboundMail) -> bytes:
    """The bundle content of stream "outbound": the original bytes and who decided."""
    document = {"v": PACKAGE_VERSION, "kind": "outbound", **_to_plain_dict(mail)}
    return bytes(msgpack.packb(document, use_bin_type=True))


def _to_plain_dict(value: object) -> dict[str, object]:
    plain = _to_plain(value)
    if not isinstance(plain, dict):
        raise TypeError("expected a dataclass")
    return plain


# --------------------------------------------------------------------------- decode


def _unpack(untrusted: bytes, max_bytes: int, limits: PackageLimits) -> dict[str, Any]:
    if not isinstance(untrusted, bytes | bytearray | memoryview):
        raise PackageRefused("package is not bytes")
    if len(untrusted) > max_bytes:
        raise PackageRefused(f"package of {len(untrusted)} bytes is over the {max_bytes} limit")
    try:
        document = msgpack.unpackb(
            bytes(untrusted),
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=max(limits.max_text_chars * 4, limits.max_string_chars * 4),
            max_bin_len=max(limits.max_image_bytes, limits.max_outbound_bytes),
            max_array_len=max(limits.max_images, limits.max_list_items),
            max_map_len=64,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as exc:
        raise PackageRefused(f"package is not valid msgpack ({type(exc).__name__})") from exc
    if not isinstance(document, dict):
        raise PackageRefused("package is not a map")
    return document


def _check_keys(untrusted: dict[str, Any], expected: Set[str], where: str) -> None:
    keys = set(untrusted)
    if keys != expected:
        unknown = sorted(str(k) for k in keys - expected)
        missing = sorted(expected - keys)
        raise PackageRefused(f"{where}: unknown keys {unknown}, missing keys {missing}")


def decode_package(untrusted: bytes, limits: PackageLimits = PackageLimits()) -> RenderedMail:
    """Decode and check a package from the other side; raises :class:`PackageRefused`."""
    document = _unpack(untrusted, limits.max_package_bytes, limits)
    _check_keys(document, {"v", "kind", "manifest", "images", "text"}, "package")
    if document["v"] != PACKAGE_VERSION or document["kind"] != "inbound":
        raise PackageRefused(f"package version {document['v']!r} kind {document['kind']!r}")
    manifest = _decode_dataclass(Manifest, document["manifest"], "manifest", limits)
    if manifest.version != PACKAGE_VERSION:
        raise PackageRefused(f"manifest version {manifest.version} is not {PACKAGE_VERSION}")
    images = _decode_images(document["images"], manifest, limits)
    text = document["text"]
    if text is not None and (not isinstance(text, str) or len(text) > limits.max_text_chars):
        raise PackageRefused("package text is not a string under the size limit")
    return RenderedMail(manifest=manifest, images=images, text=text)


def _decode_images(
    untrusted: object, manifest: Manifest, limits: PackageLimits
) -> tuple[bytes, ...]:
    if not isinstance(untrusted, list) or len(untrusted) > limits.max_images:
        raise PackageRefused("package images are not a list under the count limit")
    if len(untrusted) != len(manifest.pages):
        raise PackageRefused("package has a different number of images and pages")
    for index, (image, page) in enumerate(zip(untrusted, manifest.pages, strict=True)):
        if not isinstance(image, bytes) or len(image) > limits.max_image_bytes:
            raise PackageRefused(f"image {index} is not bytes under the size limit")
        if page.media_type not in MEDIA_TYPES:
            raise PackageRefused(f"image {index} has media type {page.media_type!r}")
        if not image.startswith(_MAGIC[page.media_type]):
            raise PackageRefused(f"image {index} is not a {page.media_type}")
        if (
            page.width <= 0
            or page.height <= 0
            or page.width * page.height > limits.max_image_pixels
        ):
            raise PackageRefused(f"image {index} claims {page.width}x{page.height} pixels")
    return tuple(untrusted)


def decode_outbound(untrusted: bytes, limits: PackageLimits = PackageLimits()) -> OutboundMail:
    """Decode an outbound bundle from the inner side; raises :class:`PackageRefused`."""
    document = _unpack(untrusted, limits.max_outbound_bytes + MIB, limits)
    expected = {f.name for f in dataclasses.fields(OutboundMail)} | {"v", "kind"}
    _check_keys(document, expected, "outbound bundle")
    if document.pop("v") != PACKAGE_VERSION or document.pop("kind") != "outbound":
        raise PackageRefused("outbound bundle has the wrong version or kind")
    mail = _decode_dataclass(OutboundMail, document, "outbound bundle", limits)
    if len(mail.data) > limits.max_outbound_bytes:
        raise PackageRefused("outbound mail is over the size limit")
    return mail


_T = TypeVar("_T")


# A decoder checks one untrusted value against one type of the contract and returns it (or a
# dataclass built from it); ``where`` names the value in the refusal. Decoders are made once per
# type, so a package costs no type introspection (``typing.get_origin`` on every value was over
# half of decoding a typical package).
_Decoder = Callable[[object, str, PackageLimits], object]


def _decode_dataclass(cls: type[_T], untrusted: object, where: str, limits: PackageLimits) -> _T:
    decode = _decoder(cast(Any, cls))  # a class is hashable, whatever its type says
    return cast(_T, decode(untrusted, where, limits))


def _decode_value(hint: Any, untrusted: object, where: str, limits: PackageLimits) -> object:
    return _decoder(hint)(untrusted, where, limits)


@functools.cache
def _decoder(hint: Any) -> _Decoder:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return _optional_decoder(hint)
    if origin is Literal:
        return _literal_decoder(typing.get_args(hint))
    if origin is tuple:
        return _tuple_decoder(_decoder(typing.get_args(hint)[0]))
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)  # type: ignore[arg-type]
    return functools.partial(_decode_scalar, hint)


def _optional_decoder(hint: Any) -> _Decoder:
    (inner_hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    inner = _decoder(inner_hint)
    may_be_none = type(None) in typing.get_args(hint)

    def decode(untrusted: object, where: str, limits: PackageLimits) -> object:
        if untrusted is None and may_be_none:
            return None
        return inner(untrusted, where, limits)

    return decode


def _literal_decoder(allowed: tuple[object, ...]) -> _Decoder:
    def decode(untrusted: object, where: str, limits: PackageLimits) -> object:
        if untrusted not in allowed:
            raise PackageRefused(f"{where}: {untrusted!r} is not one of {allowed}")
        return untrusted

    return decode


def _tuple_decoder(item: _Decoder) -> _Decoder:
    def decode(untrusted: object, where: str, limits: PackageLimits) -> object:
        if not isinstance(untrusted, list) or len(untrusted) > limits.max_list_items:
            raise PackageRefused(f"{where} is not a list under the length limit")
        inner = f"{where}[]"
        return tuple(item(v, inner, limits) for v in untrusted)

    return decode


def _dataclass_decoder(cls: type) -> _Decoder:
    """Resolving the type hints is slow: done once, here."""
    hints = typing.get_type_hints(cls)
    names = frozenset(f.name for f in dataclasses.fields(cls))
    fields = tuple((name, _decoder(hints[name])) for name in names)

    def decode(untrusted: object, where: str, limits: PackageLimits) -> object:
        if not isinstance(untrusted, dict):
            raise PackageRefused(f"{where} is not a map")
        if untrusted.keys() != names:
            _check_keys(untrusted, names, where)
        values = {
            name: field_decoder(untrusted[name], f"{where}.{name}", limits)
            for name, field_decoder in fields
        }
        return cls(**values)

    return decode


def _decode_scalar(hint: Any, untrusted: object, where: str, limits: PackageLimits) -> object:
    if hint is bool:
        ok = isinstance(untrusted, bool)
    elif hint is int:
        ok = isinstance(untrusted, int) and not isinstance(untrusted, bool)
        ok = ok and 0 <= untrusted < 2**31  # type: ignore[operator]
    elif hint is str:
        ok = isinstance(untrusted, str) and len(untrusted) <= limits.max_string_chars
    elif hint is bytes:
        ok = isinstance(untrusted, bytes)
    else:
        raise PackageRefused(f"{where}: no decoder for {hint!r}")
    if not ok:
        raise PackageRefused(f"{where}: {type(untrusted).__name__} is not a valid {hint.__name__}")
    return untrusted
