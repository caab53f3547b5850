"""Compressed files (gzip, bzip2, xz) and tar archives, unpacked without trusting them.

A ``.csv.gz`` or a ``.tar.gz`` is how many systems export data; without these readers such a
file was neither read nor reported, and went out unscanned. Decompression is streamed with a
cap of one byte over the file limit, so a bomb stops there, and the expansion ratio is judged
as for ZIP members. Tar is read by the standard library's pure-Python parser, in memory;
only regular files are read, each under the same limits as a ZIP member.
"""

from __future__ import annotations

import bz2
import io
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Final, Protocol

from mailsafe.errors import HostileInput, LimitExceeded
from mailsafe.extract.limits import MIB, Budget

__all__ = ["compression_of", "decompress", "inner_name", "is_tar", "tar_members"]

# gzip (RFC 1952), bzip2, xz.
_MAGICS: Final = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
# Extension -> what the file is once decompressed.
_INNER_SUFFIX: Final = {
    ".gz": "", ".gzip": "", ".bz2": "", ".xz": "", ".tgz": ".tar", ".tbz": ".tar",
    ".tbz2": ".tar", ".txz": ".tar",
}  # fmt: skip
_USTAR_OFFSET: Final = 257


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


_DECOMPRESSORS: Final[dict[str, Callable[[], _Decompressor]]] = {
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``xz`` from a file's first bytes; None for anything else."""
    for magic, kind in _MAGICS.items():
        if head.startswith(magic):
            return kind
    return None


def inner_name(name: str) -> str:
    """What a compressed file is called once unpacked: ``a.csv.gz`` -> ``a.csv``,
    ``a.tgz`` -> ``a.tar``; a name without a known extension stays as it is."""
    stem, extension = posixpath.splitext(posixpath.basename(name))
    suffix = _INNER_SUFFIX.get(extension.lower())
    return stem + suffix if suffix is not None and stem else posixpath.basename(name)


def decompress(kind: str, data: bytes, name: str, budget: Budget) -> bytes:
    """The whole of a compressed file (every member or stream), within the limits."""
    limits = budget.limits
    cap = limits.max_file_bytes + 1
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest and size < cap:
            stream = _DECOMPRESSORS[kind]()
            piece = stream.decompress(rest, cap - size)
            out.append(piece)
            size += len(piece)
            if not stream.eof:
                if size >= cap:
                    break
                raise HostileInput(f"{name}: the {kind} data ends too early", code="corrupt")
            rest = stream.unused_data.lstrip(b"\x00")  # gzip and tar pad with zeros
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise HostileInput(f"{name}: cannot unpack {kind} ({exc})", code="corrupt") from None
    if size > limits.max_file_bytes:
        raise LimitExceeded(
            f"{name}: over {limits.max_file_bytes // MIB} MiB unpacked", code="too-big"
        )
    if size >= limits.ratio_floor_bytes and size / max(len(data), 1) > limits.max_compression_ratio:
        raise LimitExceeded(
            f"{name}: expands {size / max(len(data), 1):.0f} times "
            f"(limit {limits.max_compression_ratio})",
            code="zip-bomb",
        )
    budget.spend(size)
    return b"".join(out)


def is_tar(data: bytes, name: str) -> bool:
    """A POSIX (ustar) tar by its magic, or an old one named ``.tar``."""
    if data[_USTAR_OFFSET : _USTAR_OFFSET + 5] == b"ustar":
        return True
    return name.lower().endswith(".tar") and len(data) >= 512


def tar_members(
    data: bytes, name: str, budget: Budget
) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(member name, reader) for every regular file of a tar archive, in order."""
    try:
        # In memory, nothing to close; the readers use it after this function has yielded.
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
        members = [member for member in archive.getmembers() if member.isreg()]
    except (tarfile.TarError, OSError, ValueError, EOFError, UnicodeError) as exc:
        raise HostileInput(f"{name}: not a readable tar archive ({exc})", code="corrupt") from None
    for member in members:
        yield member.name, _member_reader(archive, member, budget)


def _member_reader(
    archive: tarfile.TarFile, member: tarfile.TarInfo, budget: Budget
) -> Callable[[], bytes]:
    def read() -> bytes:
        if member.size > budget.limits.max_file_bytes:
            raise LimitExceeded(
                f"{member.name}: {member.size // MIB} MiB is over the "
                f"{budget.limits.max_file_bytes // MIB} MiB limit",
                code="too-big",
            )
        budget.spend(member.size)
        try:
            stream = archive.extractfile(member)
            data = stream.read(member.size) if stream is not None else b""
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            raise HostileInput(f"{member.name}: cannot unpack ({exc})", code="corrupt") from None
        return data

    return read
