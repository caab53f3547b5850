"""The signed content of opaque-signed S/MIME (``application/pkcs7-mime;
smime-type=signed-data``, RFC 8551 3.5.2): the MIME entity inside a CMS SignedData (RFC 5652
5.1), read without a key and without verifying the signature (the picture says so).

A small BER reader, not a CMS library: it walks ContentInfo → SignedData → its version and
digest algorithms → EncapsulatedContentInfo, checks the content types (signedData, then
data), and joins the eContent OCTET STRING, which senders write definite (DER) or as a
constructed string of chunks with indefinite lengths (BER, as Outlook and ``openssl -stream``
do). Certificates and signer infos after it are never read. Every element walked counts
against ``MAX_ELEMENTS`` and nesting against ``MAX_NESTING``; anything else (a detached
signature with no content, another content type, a length past the end) gives None, and the
caller withholds the part with a reason.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["MAX_ELEMENTS", "MAX_NESTING", "signed_content"]

# Elements walked in one file: the content's chunks (1 KiB each in streaming writers: 64 MiB is
# 65,536 of them) and the few around them.
MAX_ELEMENTS: Final = 100_000
# Nesting walked: ContentInfo/SignedData/EncapsulatedContentInfo/[0]/OCTET STRING and chunks
# are 6 levels; skipping the digest algorithms adds 3.
MAX_NESTING: Final = 16

_SEQUENCE, _SET, _OID, _INTEGER = 0x30, 0x31, 0x06, 0x02
_OCTETS, _OCTETS_CONSTRUCTED, _EXPLICIT_0 = 0x04, 0x24, 0xA0
_SIGNED_DATA: Final = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_DATA: Final = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_INDEFINITE = -1


class _Element(NamedTuple):
    tag: int
    start: int  # of the content
    end: int  # of the content (before an end-of-contents marker)
    after: int  # where the next element starts


class _Malformed(Exception):
    """The BER does not hold a readable signed content."""


def signed_content(untrusted_ber: bytes) -> bytes | None:
    """The MIME entity signed in ``untrusted_ber`` (a CMS ContentInfo), or None."""
    try:
        return _Reader(untrusted_ber).content()
    except (_Malformed, IndexError, RecursionError):
        return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.elements = 0

    def content(self) -> bytes:
        info = self._expect(0, len(self.data), _SEQUENCE, 0)
        oid = self._expect(info.start, info.end, _OID, 1)
        self._check_oid(oid, _SIGNED_DATA)
        wrapper = self._expect(oid.after, info.end, _EXPLICIT_0, 1)
        signed = self._expect(wrapper.start, wrapper.end, _SEQUENCE, 2)
        version = self._expect(signed.start, signed.end, _INTEGER, 3)
        algorithms = self._expect(version.after, signed.end, _SET, 3)
        encapsulated = self._expect(algorithms.after, signed.end, _SEQUENCE, 3)
        kind = self._expect(encapsulated.start, encapsulated.end, _OID, 4)
        self._check_oid(kind, _DATA)
        explicit = self._expect(kind.after, encapsulated.end, _EXPLICIT_0, 4)
        return self._octets(self._element(explicit.start, explicit.end, 5), 5)

    def _check_oid(self, element: _Element, expected: bytes) -> None:
        if self.data[element.start : element.end] != expected:
            raise _Malformed("another content type")

    def _expect(self, offset: int, end: int, tag: int, depth: int) -> _Element:
        element = self._element(offset, end, depth)
        if element.tag != tag:
            raise _Malformed(f"tag {element.tag:#x}, expected {tag:#x}")
        return element

    def _octets(self, element: _Element, depth: int) -> bytes:
        """An OCTET STRING, primitive or constructed of chunks (themselves either)."""
        if element.tag == _OCTETS:
            return self.data[element.start : element.end]
        if element.tag != _OCTETS_CONSTRUCTED:
            raise _Malformed("eContent is not an OCTET STRING")
        chunks, position = [], element.start
        while position < element.end:
            chunk = self._element(position, element.end, depth + 1)
            chunks.append(self._octets(chunk, depth + 1))
            position = chunk.after
        return b"".join(chunks)

    def _element(self, offset: int, end: int, depth: int) -> _Element:
        """The element at ``offset`` (which must end by ``end``)."""
        self.elements += 1
        if self.elements > MAX_ELEMENTS or depth > MAX_NESTING or offset + 2 > end:
            raise _Malformed("too many, too deep or cut")
        tag = self.data[offset]
        if tag & 0x1F == 0x1F:
            raise _Malformed("high tag numbers are not used where we read")
        length, start = self._length(offset + 1, end)
        if length != _INDEFINITE:
            if start + length > end:
                raise _Malformed("length past the end")
            return _Element(tag, start, start + length, start + length)
        if not tag & 0x20:
            raise _Malformed("indefinite length on a primitive element")
        position = start
        while self.data[position : position + 2] != b"\x00\x00":
            position = self._element(position, end, depth + 1).after
        return _Element(tag, start, position, position + 2)

    def _length(self, offset: int, end: int) -> tuple[int, int]:
        first = self.data[offset]
        if first < 0x80:
            return first, offset + 1
        if first == 0x80:
            return _INDEFINITE, offset + 1
        size = first & 0x7F
        if size > 4 or offset + 1 + size > end:
            raise _Malformed("length of length")
        return int.from_bytes(self.data[offset + 1 : offset + 1 + size], "big"), offset + 1 + size
