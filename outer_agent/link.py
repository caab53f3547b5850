"""The outer agent's two link ends, built from ``[link]`` and ``[keys]``: the inbound Sender
(stream ``inbound``) and the outbound LinkReader (stream ``outbound``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from outer_agent.config import OuterConfig
from outer_agent.errors import AlreadyPublished

__all__ = ["SenderPublisher", "inbound_publisher", "outbound_poller", "outbound_reader"]

log = logging.getLogger(__name__)


class SenderPublisher:
    """The pipeline's Publisher on top of protocol.Sender."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender

    def publish(self, bundle: bytes, bundle_id: bytes) -> int:
        from protocol import BundleIdConflict

        try:
            return int(self.sender.publish(bundle, bundle_id).seq)
        except BundleIdConflict as exc:
            raise AlreadyPublished(str(exc)) from exc

    def heartbeat_if_due(self) -> None:
        self.sender.heartbeat_if_due()

    def close(self) -> None:
        self.sender.close()


def inbound_publisher(config: OuterConfig, state_dir: Path) -> SenderPublisher:
    from agentkit.links import build_sender

    return SenderPublisher(build_sender(config.link, config.keys, state_dir, "inbound"))


def outbound_poller(
    config: OuterConfig, state_dir: Path
) -> Callable[[Callable[[Any], None]], int] | None:
    """A function that polls the out link once, calling the handler per complete bundle."""
    reader = outbound_reader(config, state_dir)
    return None if reader is None else reader.poll


def outbound_reader(config: OuterConfig, state_dir: Path) -> Any:
    """The out link's LinkReader (its ``poll`` for delivery, its ``status`` for the status
    report), or None when this agent reads no link."""
    from agentkit.links import build_reader

    link = config.link
    if link.transport == "folder" and link.recv_dir is None:
        log.warning("no link.recv_dir: outbound delivery is off")
        return None
    return build_reader(
        link,
        config.keys,
        state_dir,
        "outbound",
        work_dir=state_dir / "work",
        quarantine_dir=state_dir / "quarantine",
    )
