"""What an acceptor process tells the main process through the pipe."""

from __future__ import annotations

import os
import threading
import time

from outer_agent.acceptors import Acceptors, MainProcessLink


def test_mail_names_and_segments_reach_the_main_process_in_order() -> None:
    """Every line arrives whole, in order, also when the reader gets them in pieces."""
    read_end, write_end = os.pipe()
    acceptors = Acceptors([], read_end)
    names: list[str] = []
    segments = threading.Semaphore(0)
    acceptors.on_messages(segment=segments.release, received=names.append)
    link = MainProcessLink(write_end)
    sent = [f"{n:032x}.0" for n in range(500)]  # more than one read of 4096 bytes
    for index, name in enumerate(sent):
        link.mail_received(name)
        if index % 100 == 0:
            link.segment_written()
    os.close(write_end)  # the acceptors are gone: EOF ends the reader
    deadline = time.monotonic() + 10
    while len(names) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    acceptors.stop()
    assert names == sent
    assert segments.acquire(timeout=1)  # at least one wake-up per read with a segment in it


def test_a_gone_main_process_does_not_stop_an_acceptor() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    MainProcessLink(write_end).mail_received("0" * 32 + ".0")  # EPIPE is ignored
    os.close(write_end)
