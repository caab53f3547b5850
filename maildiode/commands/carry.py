"""``maildiode carry SRC DST [--once] [--interval S]``: play the linkage product.

Moves complete files from SRC (a pickup folder) to DST (a delivery folder) the way a
network-linkage product does: copy into a staging folder beside DST (same file system, outside
DST) under a temporary name, fsync, rename into DST, fsync DST, then delete the source.
Only regular files are carried; a file is carried once its size and times stayed the same over
one polling interval, so files still being written are left alone. Sub-folders, symlinks and
other special files are ignored.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from maildiode.trial.carrier import carry_pass, snapshot, staging_for


def run(args: argparse.Namespace) -> int:
    src, dst = Path(args.src), Path(args.dst)
    interval = float(getattr(args, "interval", 0.2) or 0.2)
    for folder in (src, dst):
        if not folder.is_dir():
            print(f"carry: {folder} is not a folder", file=sys.stderr)
            return 2
    staging = staging_for(dst)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    previous = snapshot(src)
    total = 0
    try:
        while True:
            if stop.wait(interval):
                break
            carried, previous = carry_pass(src, dst, staging, previous)
            total += carried
            if args.once:
                break
    except KeyboardInterrupt:
        pass
    print(f"carried {total} file(s) from {src} to {dst}", file=sys.stderr)
    return 0
