"""``maildiode carry SRC DST [--once] [--interval S]``: play the linkage product.

How files are carried (settled, copied into staging, renamed in, the source deleted) is
:mod:`maildiode.trial.carrier`; this command polls until stopped (SIGTERM or Ctrl-C).
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
