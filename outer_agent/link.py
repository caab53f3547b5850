"""The outer agent's two link ends, built from ``[link]`` and ``[keys]``: the inbound Sender
(stream ``inbound``) and the outbound LinkReader (stream ``outbound``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maildiode.settings import parse_host_port
from outer_agent.config import OuterConfig
from outer_agent.errors import AlreadyPublished

__all__ = ["SenderPublisher", "inbound_publisher", "outbound_poller"]

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
    from protocol import EncryptionPublicKey, FolderTransport, Sender, SigningKey, TcpTransport

    link, keys = config.link, config.keys
    transport: Any
    if link.transport == "tcp":
        if link.tcp_send is None:
            raise ValueError("link.tcp_send is required with the tcp transport")
        host, port = parse_host_port(link.tcp_send)
        transport = TcpTransport(host, port)
    else:
        if link.send_dir is None:
            raise ValueError("link.send_dir is required with the folder transport")
        transport = FolderTransport(link.send_dir, extension=link.extension, armor=link.armor)
    encrypt_to = None
    if link.encrypt and keys.encrypt_to is not None:  # the config refuses encrypt without a key
        encrypt_to = EncryptionPublicKey.load(keys.encrypt_to)
    sender = Sender(
        state_dir,
        "inbound",
        SigningKey.load(keys.signing_key),
        transport,
        chunk_size=link.chunk_size,
        encrypt_to=encrypt_to,
        resend_window_s=link.resend_window_s,
        heartbeat_s=link.heartbeat_s,
    )
    return SenderPublisher(sender)


def outbound_poller(
    config: OuterConfig, state_dir: Path
) -> Callable[[Callable[[Any], None]], int] | None:
    """A function that polls the out link once, calling the handler per complete bundle."""
    from protocol import EncryptionKey, FolderIntake, Keyring, LinkReader, Receiver

    link, keys = config.link, config.keys
    if link.recv_dir is None:
        log.warning("no link.recv_dir: outbound delivery is off")
        return None
    decrypt = EncryptionKey.load(keys.decrypt_key) if keys.decrypt_key is not None else None
    intake = FolderIntake(
        link.recv_dir,
        state_dir / "work",
        state_dir / "quarantine",
        max_file_bytes=link.max_file_bytes,
        settle_s=link.settle_s,
    )
    receiver = Receiver(
        state_dir,
        "outbound",
        Keyring.load(keys.peer_keys),
        decrypt_key=decrypt,
        gap_wait_s=link.gap_wait_s,
        silence_alarm_s=link.silence_alarm_s,
        resend_window_s=link.resend_window_s,
    )
    reader = LinkReader(intake=intake, receiver=receiver)
    return reader.poll
