"""Reading ZIP containers (plain archives, Office Open XML, HWPX) without trusting them.

Sizes in a ZIP's directory are the sender's claims: each member is checked against them
before reading, and read with a cap of one byte more than claimed, so a lying header cannot
make us unpack more than the budget allows.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from mailsafe.errors import HostileInput, LimitExceeded
from mailsafe.extract.limits import MIB, Budget

# Bit 0 of a ZIP member's general-purpose flags: the member is encrypted.
_ZIP_ENCRYPTED_FLAG = 0x1


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise HostileInput(f"not a readable ZIP file ({exc})", code="corrupt") from None


def member_names(archive: zipfile.ZipFile) -> list[str]:
    return [info.filename for info in archive.infolist() if not info.is_dir()]


def read_member(archive: zipfile.ZipFile, name: str, budget: Budget) -> bytes:
    """The bytes of one member, after the encryption, size and ratio checks."""
    info = archive.getinfo(name)
    _check_member(info, budget)
    budget.spend(info.file_size)
    try:
        with archive.open(info) as member:
            untrusted_data = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise HostileInput(f"{name}: cannot unpack ({exc})", code="corrupt") from None
    if len(untrusted_data) > info.file_size:
        raise LimitExceeded(f"{name}: unpacks to more than its stated size", code="zip-bomb")
    return untrusted_data


def iter_members(archive: zipfile.ZipFile, budget: Budget) -> Iterator[tuple[str, bytes]]:
    for name in member_names(archive):
        yield name, read_member(archive, name, budget)


def _check_member(info: zipfile.ZipInfo, budget: Budget) -> None:
    limits = budget.limits
    if info.flag_bits & _ZIP_ENCRYPTED_FLAG:
        raise HostileInput(f"{info.filename}: encrypted", code="encrypted")
    if info.file_size > limits.max_file_bytes:
        raise LimitExceeded(
            f"{info.filename}: {info.file_size // MIB} MiB unpacked is over the "
            f"{limits.max_file_bytes // MIB} MiB limit",
            code="too-big",
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_floor_bytes and ratio > limits.max_compression_ratio:
        raise LimitExceeded(
            f"{info.filename}: expands {ratio:.0f} times (limit {limits.max_compression_ratio})",
            code="zip-bomb",
        )
