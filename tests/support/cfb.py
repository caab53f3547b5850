"""A minimal writer of OLE compound files (CFB version 3), for HWP test fixtures.

olefile reads these files but cannot create them, and there is no other writer among our
dependencies, so tests build them here from the published format ([MS-CFB]):
512-byte header, 512-byte sectors, a FAT, a directory of 128-byte entries, and streams
smaller than 4096 bytes kept in the mini stream (64-byte mini sectors) as the format demands.
Directory siblings are written as a simple right-leaning chain of black nodes, which is a
valid (if unbalanced) red-black tree. Enough for a few small streams; not a general library.
"""

from __future__ import annotations

import itertools
import struct

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data
        self.children: list[_Entry] = []
        self.start, self.size = END, len(data)
        self.sid = 0
        self.left = self.right = self.child = NOSTREAM


def _pad(data: bytes, size: int) -> bytes:
    return data + b"\0" * (-len(data) % size)


def build_cfb(streams: dict[str, bytes]) -> bytes:
    """Compound file holding ``streams`` ({"BodyText/Section0": b"...", "FileHeader": ...})."""
    root = _Entry("Root Entry", 5)
    storages: dict[str, _Entry] = {"": root}
    for path, data in streams.items():
        parts = path.split("/")
        parent = root
        for depth in range(1, len(parts)):
            key = "/".join(parts[:depth])
            if key not in storages:
                storages[key] = _Entry(parts[depth - 1], 1)
                parent.children.append(storages[key])
            parent = storages[key]
        parent.children.append(_Entry(parts[-1], 2, data))
    entries = _number(root)

    sectors: list[bytes] = []
    fat: list[int] = []

    def allocate(data: bytes) -> int:
        if not data:
            return END
        first = len(sectors)
        chunks = [data[i : i + SECTOR] for i in range(0, len(data), SECTOR)]
        for index, chunk in enumerate(chunks):
            sectors.append(_pad(chunk, SECTOR))
            fat.append(first + index + 1 if index + 1 < len(chunks) else END)
        return first

    mini_stream, mini_fat = b"", []
    for entry in entries:
        if entry.kind != 2:
            continue
        if entry.size >= MINI_CUTOFF:
            entry.start = allocate(entry.data)
        elif entry.size:
            entry.start = len(mini_stream) // MINI_SECTOR
            count = -(-entry.size // MINI_SECTOR)
            mini_fat += [entry.start + i + 1 for i in range(count - 1)] + [END]
            mini_stream += _pad(entry.data, MINI_SECTOR)
    root.start, root.size = allocate(mini_stream), len(mini_stream)
    mini_fat_start = allocate(b"".join(struct.pack("<I", v) for v in mini_fat))
    mini_fat_sectors = -(-len(mini_fat) * 4 // SECTOR)
    directory_start = allocate(b"".join(_directory_entry(e) for e in entries))

    fat_count = 1
    while fat_count * (SECTOR // 4) < len(sectors) + fat_count:
        fat_count += 1
    fat_start = len(sectors)
    fat += [FATSECT] * fat_count
    fat += [FREE] * (fat_count * (SECTOR // 4) - len(fat))
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat)
    sectors += [fat_bytes[i * SECTOR : (i + 1) * SECTOR] for i in range(fat_count)]

    difat = [fat_start + i for i in range(fat_count)] + [FREE] * (109 - fat_count)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        MAGIC, b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
        0, fat_count, directory_start, 0, MINI_CUTOFF,
        mini_fat_start if mini_fat else END, mini_fat_sectors, END, 0,
    ) + b"".join(struct.pack("<I", v) for v in difat)  # fmt: skip
    return header + b"".join(sectors)


def _number(root: _Entry) -> list[_Entry]:
    ordered: list[_Entry] = []

    def visit(entry: _Entry) -> None:
        entry.sid = len(ordered)
        ordered.append(entry)
        kids = sorted(entry.children, key=lambda e: (len(e.name), e.name.upper()))
        for kid in kids:
            visit(kid)
        if kids:
            entry.child = kids[0].sid
            for left, right in itertools.pairwise(kids):
                left.right = right.sid

    visit(root)
    return ordered


def _directory_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\0\0"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name, len(name), entry.kind, 1, entry.left, entry.right, entry.child,
        b"\0" * 16, 0, 0, 0, entry.start if entry.size or entry.kind == 5 else END, entry.size,
    )  # fmt: skip
