"""The web process: ``python -m inner_agent.webproc --listen-fd N --control-fd N --parent PID
--nice N`` with a ``WebSpec`` on standard input. Started by ``supervisor.WebProcess`` only.

In order, before anything heavy is imported: die with the agent (``PR_SET_PDEATHSIG``, and
exit at once if the agent is already gone), lower its own CPU priority (every thread made
after inherits it), read the spec, set up logging as the agent's, open the stores, then
serve on the listening socket the agent bound, and say ``ready``. A start-up error is logged
and sent to the agent as ``failed``. It stops on SIGTERM (requests in flight get
``GRACEFUL_STOP_S``) or when the agent's end of the control channel closes.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from inner_agent.webproc.channel import Failed, Message, Ready, Wake, encode

if TYPE_CHECKING:
    import uvicorn

    from inner_agent.webproc.site import WebSite

__all__ = ["main"]

log = logging.getLogger(__name__)

# <linux/prctl.h>: the signal the kernel sends this process when its parent thread ends.
PR_SET_PDEATHSIG = 1
# Exit codes the agent's supervisor names in its log.
EXIT_FAILED_START = 3
EXIT_NO_PARENT = 4


class Channel:
    """The child's end of the control channel; ``send`` is safe from any thread and never
    blocks (a wake that does not fit is dropped: the worker's poll runs the pass anyway)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            try:
                self.sock.send(encode(message), socket.MSG_DONTWAIT)
            except OSError as exc:  # full, or the agent is gone (then we are told to stop)
                log.debug("web process: %s not sent to the agent: %s", message, exc)

    def wake(self) -> None:
        self.send(Wake())


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if not _die_with(args.parent):
        return EXIT_NO_PARENT
    os.nice(args.nice)  # before any thread exists: every thread inherits it
    channel = Channel(socket.socket(fileno=args.control_fd))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    site = _open(channel, sys.stdin.buffer)
    if site is None:
        return EXIT_FAILED_START
    listener = socket.socket(fileno=args.listen_fd)
    try:
        if not stop.is_set():
            asyncio.run(_serve(site, listener, channel, stop))
    finally:
        site.close()
    log.info("web process stopped")
    return 0


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inner_agent.webproc")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--nice", type=int, required=True)
    return parser.parse_args(argv)


def _die_with(parent: int) -> bool:
    """Ask the kernel to kill this process when the agent dies (Linux); False when the agent
    is gone already (it died before the request could be made)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (AttributeError, OSError) as exc:  # not Linux: the channel's end closing stops us
        print(f"web process: cannot tie its life to the agent's: {exc}", file=sys.stderr)
    return os.getppid() == parent


def _open(channel: Channel, source: BinaryIO) -> WebSite | None:
    """The spec read, logging set up, the stores opened; None after reporting why not."""
    from agentkit.logs import setup_logging
    from inner_agent.webproc.spec import MAX_SPEC_BYTES, read_spec

    try:
        spec = read_spec(source.read(MAX_SPEC_BYTES + 1))
        setup_logging(spec.log, agent="maildiode-inner")
        from inner_agent.webproc.site import open_site

        return open_site(spec, on_decided=channel.wake)
    except Exception as exc:  # every start-up failure is reported, whatever it is
        log.exception("web process could not start")
        channel.send(Failed(f"{type(exc).__name__}: {exc}"))
        return None


async def _serve(
    site: WebSite, listener: socket.socket, channel: Channel, stop: threading.Event
) -> None:
    import uvicorn

    from inner_agent.webproc.site import server_config

    server = uvicorn.Server(server_config(site.app, site.web))
    loop = asyncio.get_running_loop()
    # The agent never writes: readable means its end closed (it stopped, or is gone).
    loop.add_reader(channel.sock.fileno(), _on_agent_gone, loop, channel, server)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        log.info("web process %d serving (nice %d)", os.getpid(), os.nice(0))
        channel.send(Ready())
    if stop.is_set():  # SIGTERM came before uvicorn took the signal over
        server.should_exit = True
    await serving


def _on_agent_gone(
    loop: asyncio.AbstractEventLoop, channel: Channel, server: uvicorn.Server
) -> None:
    loop.remove_reader(channel.sock.fileno())
    log.warning("web process: the agent's end of the control channel closed; stopping")
    server.should_exit = True
