"""Receiving side of a TCP link (frames from a diode proxy) feeding the folder pipeline.

A listener thread reads length-prefixed frames and writes each into a private spool folder
(temp name, fsync, rename). A FolderIntake over that spool does the rest, so verification,
claiming and quarantine are exactly those of the folder link.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from protocol.durable import ensure_private_dir, remove_temps, write_durably
from protocol.intake import FolderIntake
from protocol.limits import DEFAULT_MAX_FILE_BYTES
from protocol.names import new_name
from protocol.refusals import QuarantineLimits
from protocol.transport import FRAME_HEADER

__all__ = ["TcpIntake"]

log = logging.getLogger("protocol.tcp_intake")

IDLE_TIMEOUT_S = 3600.0  # a proxy connection idle for an hour is dropped (it reconnects)


class TcpIntake(FolderIntake):
    """Listen on ``host:port``; frames become files in ``spool_dir``, then a FolderIntake."""

    def __init__(
        self,
        host: str,
        port: int,
        spool_dir: str | Path,
        work_dir: str | Path,
        quarantine_dir: str | Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        quarantine_limits: QuarantineLimits = QuarantineLimits(),  # noqa: B008 - frozen value
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        spool = ensure_private_dir(Path(spool_dir))
        super().__init__(
            spool, work_dir, quarantine_dir, max_file_bytes=max_file_bytes, settle_s=0.0,
            watch=False, quarantine_limits=quarantine_limits, random_bytes=random_bytes,
        )  # fmt: skip
        self._tmp_dir = ensure_private_dir(spool.parent / f".{spool.name}-tmp")
        remove_temps(self._tmp_dir)  # frames cut short by a crash; only this intake writes here
        intake = self

        class _Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                intake._serve(self.connection)

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = _Server((host, port), _Handler)
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IDLE_TIMEOUT_S)
        try:
            while True:
                head = _recv_exact(conn, FRAME_HEADER.size)
                if head is None:
                    return
                (length,) = FRAME_HEADER.unpack(head)
                if length > self.max_file_bytes:
                    self.counters["frames_too_large"] += 1
                    log.warning("frame of %d bytes exceeds %d; dropping the connection",
                                length, self.max_file_bytes)  # fmt: skip
                    return
                frame = _recv_exact(conn, length)
                if frame is None:
                    self.counters["frames_truncated"] += 1
                    return
                self._spool(frame)
        except OSError as exc:
            log.info("diode proxy connection ended: %s", exc)

    def _spool(self, frame: bytes) -> None:
        name = new_name(self._random_bytes, ".mdc")
        # No folder fsync, as before: nothing acknowledges a frame (one-way), so a power cut
        # that loses its name loses no more than the wire can; the claim right after it
        # fsyncs the work folder the file moves into.
        write_durably(self.recv_dir / name, frame, staging=self._tmp_dir, sync_folder=False)
        self._wake.set()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        super().close()


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    parts: list[bytes] = []
    remaining = size
    while remaining:
        block = conn.recv(min(remaining, 1 << 20))
        if not block:
            return None
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)
