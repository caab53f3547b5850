"""A stand-in internal mail server for ``maildiode check``'s probe: it greets with 220 and
hangs up after QUIT. Enough for a check to find the server answering; it takes no mail."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def smtp_greeter() -> Iterator[str]:
    """``HOST:PORT`` of a listener greeting every connection with 220, while the block runs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.sendall(b"220 greeter.test ESMTP\r\n")
                    conn.recv(512)
                    conn.sendall(b"221 bye\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
