"""``[streams]`` in inner.toml: the outer agents beyond the first (issue 23; D74, D75).

The pair's stream (``inbound`` / ``outbound`` from ``[link]`` and ``[keys]``) is always the
first; each ``[[streams.outer]]`` adds one outer agent with its own folder pair (or sockets)
and verify keys. Every other link setting is ``[link]``'s. docs/configuration.md, "[streams]".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agentkit.settings import (
    HostPort,
    LinkSection,
    Section,
    check_public_key_file,
    resolve_path,
)
from agentkit.streams import PAIR_INBOUND, PAIR_OUTBOUND, StreamId

__all__ = ["DEFAULT_DEDUP_WINDOW_S", "DEFAULT_TAKEOVER_AFTER_S", "OuterStream", "StreamsSection"]

# Longer than a sender's retry time (RFC 5321 §4.5.4.1 suggests 4-5 days) with a margin.
DEFAULT_DEDUP_WINDOW_S = 7 * 86400
# Ten report intervals of 30 s: past the three that make a report stale (D35), so a slow
# linkage pass does not move mail, and short enough that a dead host's share waits minutes.
DEFAULT_TAKEOVER_AFTER_S = 300


class OuterStream(Section):
    """One more outer agent: its stream id, its channel and its keys."""

    id: StreamId
    recv_dir: Path | None = None
    tcp_listen: HostPort | None = None
    send_dir: Path | None = None
    tcp_send: HostPort | None = None
    peer_keys: tuple[Path, ...] = Field(min_length=1, max_length=2)
    encrypt_to: Path | None = None  # None: keys.encrypt_to

    @field_validator("recv_dir", "send_dir", mode="before")
    @classmethod
    def _resolve(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else resolve_path(value, info)

    @field_validator("peer_keys", mode="before")
    @classmethod
    def _public_list(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of file paths")
        return tuple(check_public_key_file(resolve_path(v, info)) for v in value)

    @field_validator("encrypt_to", mode="before")
    @classmethod
    def _public(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else check_public_key_file(resolve_path(value, info))

    @model_validator(mode="after")
    def _one_way_each(self) -> OuterStream:
        if self.id in (PAIR_INBOUND, PAIR_OUTBOUND):
            raise ValueError(f"id {self.id!r} is the pair's own stream; give this outer agent "
                             "an id of its own")  # fmt: skip
        if (self.recv_dir is None) == (self.tcp_listen is None):
            raise ValueError(f"stream {self.id}: exactly one of recv_dir, tcp_listen")
        if (self.send_dir is None) == (self.tcp_send is None):
            raise ValueError(f"stream {self.id}: exactly one of send_dir, tcp_send")
        return self

    def receive_link(self, shared: LinkSection) -> LinkSection:
        """``[link]`` with this stream's receiving end in place of the pair's."""
        transport = "folder" if self.recv_dir is not None else "tcp"
        update = {"transport": transport, "recv_dir": self.recv_dir, "tcp_listen": self.tcp_listen}
        return shared.model_copy(update=update)

    def send_link(self, shared: LinkSection) -> LinkSection:
        """``[link]`` with this stream's sending end in place of the pair's."""
        transport = "folder" if self.send_dir is not None else "tcp"
        update = {"transport": transport, "send_dir": self.send_dir, "tcp_send": self.tcp_send}
        return shared.model_copy(update=update)


class StreamsSection(Section):
    """Several outer agents: the extra streams and how they share the work."""

    dedup_window_s: float = Field(default=DEFAULT_DEDUP_WINDOW_S, ge=3600, le=30 * 86400)
    # From 1 s so a test can kill an outer agent and watch its share move within seconds.
    takeover_after_s: float = Field(default=DEFAULT_TAKEOVER_AFTER_S, ge=1, le=7 * 86400)
    outer: tuple[OuterStream, ...] = Field(default=(), max_length=16)

    @model_validator(mode="after")
    def _unique(self) -> StreamsSection:
        ids = [stream.id for stream in self.outer]
        if len(ids) != len(set(ids)):
            raise ValueError(f"stream ids must be unique: {', '.join(ids)}")
        return self
