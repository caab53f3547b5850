"""The outer agent's two link ends, built from ``[link]`` and ``[keys]``: the inbound publisher
(stream ``link.stream``: ``inbound`` for the one outer agent of a pair) and the outbound
LinkReader (``outbound``, or ``ID-out`` for one of several outer agents, agentkit.streams):
its poll for delivery, its status for the status report."""

from __future__ import annotations

import logging
from pathlib import Path

from agentkit.links import LinkPublisher, build_reader, build_sender
from agentkit.streams import outbound_stream
from outer_agent.config import OuterConfig
from outer_agent.delivery import LinkPoll
from protocol import LinkReader

__all__ = ["inbound_publisher", "outbound_poller", "outbound_reader"]

log = logging.getLogger(__name__)


def inbound_publisher(config: OuterConfig, state_dir: Path) -> LinkPublisher:
    return LinkPublisher(build_sender(config.link, config.keys, state_dir, config.link.stream))


def outbound_poller(config: OuterConfig, state_dir: Path) -> LinkPoll | None:
    """A function that polls the out link once, calling the handler per complete bundle."""
    reader = outbound_reader(config, state_dir)
    return None if reader is None else reader.poll


def outbound_reader(config: OuterConfig, state_dir: Path) -> LinkReader | None:
    """The out link's LinkReader, or None when this agent reads no link."""
    link = config.link
    if link.transport == "folder" and link.recv_dir is None:
        log.warning("no link.recv_dir: outbound delivery is off")
        return None
    return build_reader(
        link,
        config.keys,
        state_dir,
        outbound_stream(config.link.stream),
        work_dir=state_dir / "work",
        quarantine_dir=state_dir / "quarantine",
    )
