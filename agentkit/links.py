"""The protocol's sending and receiving ends, built from an agent's ``[link]`` and ``[keys]``,
and the publisher both agents put their bundles on the link with.

Both agents and ``maildiode resend`` build them the same way; the stream id and the state
folders are theirs to choose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.settings import KeysSection, LinkSection, parse_host_port
from protocol import (
    BundleIdConflict,
    EncryptionKey,
    EncryptionPublicKey,
    FolderIntake,
    FolderTransport,
    Keyring,
    Kind,
    LinkReader,
    Receiver,
    Sender,
    SigningKey,
    TcpIntake,
    TcpTransport,
    Transport,
)
from protocol.refusals import RefusalSummary

__all__ = ["LinkPublisher", "audit_refusals", "build_reader", "build_sender", "build_transport"]

# The mail id of audit events about the link rather than a mail.
NO_MAIL = "-"

log = logging.getLogger(__name__)


class LinkPublisher:
    """Puts an agent's bundles on the link (its ``Publisher``), on top of protocol.Sender.

    ``publish`` returns the sequence number the bundle is on the link under. A bundle id the
    link already carries with other content (``protocol.BundleIdConflict``: a version that
    built its bundles differently published it first) keeps that first version: it is on the
    link, it is sent again, and its seq is returned, with a warning in the log. Both agents
    take it so (docs/protocol.md §14): raising instead would leave the mail in its spool,
    refused at every retry, forever.

    ``fence``: called before anything goes on the link; it raises (the inner agent's
    ``agentkit.leasekeeper.FenceClosed``) once this agent no longer holds its state's lease,
    so an agent that lost it publishes nothing more (the bundle stays for the new holder).
    """

    def __init__(self, sender: Sender, *, fence: Callable[[], None] | None = None) -> None:
        self.sender = sender
        self._fence = fence

    def _check_fence(self) -> None:
        if self._fence is not None:
            self._fence()

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        self._check_fence()
        try:
            return self.sender.publish(bundle, bundle_id, kind).seq
        except BundleIdConflict as conflict:
            log.warning("%s; keeping the version already on the link (seq %d)",
                        conflict, conflict.seq)  # fmt: skip
            return conflict.seq

    def publish_many(self, bundles: list[tuple[bytes, bytes]]) -> list[int]:
        """Several bundles with one group commit (``Sender.publish_many``); their seqs. An id
        conflict anywhere sends them one at a time instead, each as ``publish`` would (every
        bundle is idempotent per id, so those already on the link are not sent twice)."""
        self._check_fence()
        try:
            return [receipt.seq for receipt in self.sender.publish_many(bundles)]
        except BundleIdConflict:
            return [self.publish(bundle, bundle_id) for bundle, bundle_id in bundles]

    def knows(self, bundle_id: bytes) -> bool:
        """Whether the link carries a bundle of this id already (``Sender.knows``)."""
        return self.sender.knows(bundle_id)

    def heartbeat_if_due(self) -> None:
        self._check_fence()
        self.sender.heartbeat_if_due()

    def close(self) -> None:
        self.sender.close()


def build_transport(link: LinkSection) -> Transport:
    """The sending side of the link: a folder, or TCP toward a diode proxy."""
    if link.transport == "tcp":
        if link.tcp_send is None:
            raise ValueError("link.tcp_send is required with the tcp transport")
        return TcpTransport(*parse_host_port(link.tcp_send))
    if link.send_dir is None:
        raise ValueError("link.send_dir is required with the folder transport")
    return FolderTransport(link.send_dir, extension=link.extension, armor=link.armor)


def build_sender(
    link: LinkSection, keys: KeysSection, state_dir: Path, stream: str, *, new_epoch: bool = True
) -> Sender:
    """A Sender publishing on ``stream``, signing with our key, encrypting when configured."""
    encrypt_to = None
    if link.encrypt and keys.encrypt_to is not None:  # the configs refuse encrypt without a key
        encrypt_to = EncryptionPublicKey.load(keys.encrypt_to)
    return Sender(
        state_dir,
        stream,
        SigningKey.load(keys.signing_key),
        build_transport(link),
        chunk_size=link.chunk_size,
        encrypt_to=encrypt_to,
        resend_window_s=link.resend_window_s,
        heartbeat_s=link.heartbeat_s,
        new_epoch=new_epoch,
    )


def build_reader(
    link: LinkSection,
    keys: KeysSection,
    state_dir: Path,
    stream: str,
    *,
    work_dir: Path,
    quarantine_dir: Path,
    tcp_spool_dir: Path | None = None,
    done_group: int = 1,
) -> LinkReader:
    """A LinkReader for ``stream``: the folder (or TCP) intake plus the persistent Receiver;
    ``done_group`` as LinkReader's (how many handled bundles share one durable done mark)."""
    intake: FolderIntake | TcpIntake
    if link.transport == "tcp":
        if link.tcp_listen is None:
            raise ValueError("link.tcp_listen is required with the tcp transport")
        host, port = parse_host_port(link.tcp_listen)
        spool = tcp_spool_dir if tcp_spool_dir is not None else state_dir / "link-tcp"
        intake = TcpIntake(
            host, port, spool, work_dir, quarantine_dir, max_file_bytes=link.max_file_bytes,
            quarantine_limits=link.quarantine_limits(),
        )  # fmt: skip
    else:
        if link.recv_dir is None:
            raise ValueError("link.recv_dir is required with the folder transport")
        intake = FolderIntake(
            link.recv_dir,
            work_dir,
            quarantine_dir,
            max_file_bytes=link.max_file_bytes,
            settle_s=link.settle_s,
            quarantine_limits=link.quarantine_limits(),
        )
    decrypt = EncryptionKey.load(keys.decrypt_key) if keys.decrypt_key is not None else None
    receiver = Receiver(
        state_dir,
        stream,
        Keyring.load(keys.peer_keys),
        decrypt_key=decrypt,
        gap_wait_s=link.gap_wait_s,
        silence_alarm_s=link.silence_alarm_s,
        resend_window_s=link.resend_window_s,
    )
    return LinkReader(intake=intake, receiver=receiver, done_group=done_group)


def audit_refusals(summaries: list[RefusalSummary], audit: AuditLog) -> None:
    """One ``link_refused`` event per reason and interval: how many files the receive side
    refused, and how many of them it kept in quarantine, deleted or left in place."""
    for summary in summaries:
        audit.record(
            NO_MAIL, "link_refused", reason=summary.reason, refused=summary.refused,
            kept=summary.outcomes.get("kept", 0), dropped=summary.outcomes.get("dropped", 0),
            ignored=summary.outcomes.get("ignored", 0), since=_stamp(summary.since),
            until=_stamp(summary.until),
        )  # fmt: skip


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
