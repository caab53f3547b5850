"""The demo's internal mail server: an aiosmtpd server that stores every message in a Maildir.

It stands in for the organisation's internal mail server (Postfix, Exchange): it accepts any
recipient from loopback and writes the message as ``new/<unique>`` the Maildir way (write in
``tmp/``, fsync, rename into ``new/``) before answering 250.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from protocol.durable import write_durably

__all__ = ["MaildirMailbox"]

# The demo's notifications are at most 10 MiB; leave room for a larger configuration.
MAX_MESSAGE_BYTES = 64 << 20
MESSAGE_FILE_MODE = 0o644  # as before (open()'s default under the usual umask): the demo's
# user opens these files with a mail reader


_COUNTER = itertools.count()


def store(root: Path, data: bytes) -> Path:
    """Write ``data`` into the Maildir at ``root``: tmp/, fsync, rename into new/ (no folder
    fsync, as before: this mailbox only stands in for the real server)."""
    name = f"{time.time_ns()}.P{os.getpid()}Q{next(_COUNTER)}.{socket.gethostname()}"
    new = root / "new" / name
    write_durably(new, data, mode=MESSAGE_FILE_MODE, staging=root / "tmp", sync_folder=False)
    return new


class _StoreHandler:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        store(self.root, envelope.original_content or b"")
        return "250 2.0.0 stored"


class MaildirMailbox:
    """``start()`` listens on ``host:port``; messages land in ``root/new``."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 2526) -> None:
        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            _StoreHandler(root), hostname=host, port=port,
            data_size_limit=MAX_MESSAGE_BYTES, decode_data=False,
        )  # fmt: skip
        self.host, self.port = host, port

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Path]:
        """Delivered messages, oldest first."""
        new = self.root / "new"
        paths = [new / name for name in os.listdir(new)] if new.is_dir() else []
        return sorted(paths, key=lambda p: p.stat().st_mtime_ns)
