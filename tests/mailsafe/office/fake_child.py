"""A stand-in for the sandboxed converter child, for the parent's failure paths: says
"ready", then answers every document with a fixed one-page PDF, except that a document
containing HANG is never answered and one containing DIE ends the child. MEMORY is answered
as a sandbox near its memory limit does (a refusal, then the end) by a child that has
converted before; MEMORY_ALWAYS by every child."""

from __future__ import annotations

import struct
import sys
import time

FRAME = struct.Struct(">I")
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(FRAME.pack(5) + b"ready")
    stdout.flush()
    converted = 0
    while head := stdin.read(FRAME.size):
        job = stdin.read(FRAME.unpack(head)[0])
        if b"HANG" in job:
            time.sleep(3600)
        if b"DIE" in job:
            return
        if b"MEMORY_ALWAYS" in job or (b"MEMORY" in job and converted):
            stdout.write(FRAME.pack(13) + b"Ememory_limit")
            stdout.flush()
            return
        converted += 1
        reply = b"P" + PDF
        stdout.write(FRAME.pack(len(reply)) + reply)
        stdout.flush()


if __name__ == "__main__":
    main()
