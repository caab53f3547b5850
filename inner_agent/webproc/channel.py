"""The control channel between the agent and its web process: a ``SOCK_SEQPACKET`` socket
pair, so each message is one record and the agent's end sees the child's end close.

The child sends (one JSON object per record, at most ``MAX_MESSAGE_BYTES``)::

    {"kind": "ready"}                  serving: the listening socket is being accepted on
    {"kind": "wake"}                   a decision was stored: run the worker's pass now
    {"kind": "failed", "error": TEXT}  it could not start (TEXT at most MAX_ERROR_CHARS)

The agent sends nothing: its end closing (the agent stopping or gone) tells the child to
stop. Pure: bytes in, typed messages out; anything else is ``ChannelRefused``. The agent
treats the child as a less trusted process (it parses what clients send), so a message can
only wake the worker or report a start, never carry a command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from inner_agent.webproc.errors import ChannelRefused

__all__ = ["MAX_ERROR_CHARS", "MAX_MESSAGE_BYTES", "Failed", "Message", "Ready", "Wake",
           "decode", "encode"]  # fmt: skip

# A record longer than this is not one of ours (the longest is a start-up error).
MAX_MESSAGE_BYTES = 1024
# A start-up error is a line for the operator (the full traceback is in the child's log).
MAX_ERROR_CHARS = 600


@dataclass(frozen=True)
class Ready:
    pass


@dataclass(frozen=True)
class Wake:
    pass


@dataclass(frozen=True)
class Failed:
    error: str


Message = Ready | Wake | Failed


def encode(message: Message) -> bytes:
    match message:
        case Ready():
            fields: dict[str, str] = {"kind": "ready"}
        case Wake():
            fields = {"kind": "wake"}
        case Failed(error):
            fields = {"kind": "failed", "error": error[:MAX_ERROR_CHARS]}
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()


def decode(untrusted: bytes) -> Message:
    """The message in one record; ChannelRefused for anything else."""
    if len(untrusted) > MAX_MESSAGE_BYTES:
        raise ChannelRefused(f"a record of {len(untrusted)} bytes")
    try:
        untrusted_fields = json.loads(untrusted.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ChannelRefused("a record that is not ASCII JSON") from None
    if not isinstance(untrusted_fields, dict):
        raise ChannelRefused("a record that is not an object")
    kind = untrusted_fields.get("kind")
    if untrusted_fields == {"kind": "ready"}:
        return Ready()
    if untrusted_fields == {"kind": "wake"}:
        return Wake()
    error = untrusted_fields.get("error")
    if kind == "failed" and set(untrusted_fields) == {"kind", "error"} and isinstance(error, str):
        return Failed(_printable(error[:MAX_ERROR_CHARS]))
    raise ChannelRefused("an unknown message")


def _printable(text: str) -> str:
    """Control characters escaped: the text goes into the agent's log and exception."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
