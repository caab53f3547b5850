"""``maildiode resend -c CONFIG FIRST LAST``: publish sent bundles FIRST..LAST again.

Uses the copies the agent's sender keeps for ``link.resend_window_s``; files go out under new
names with the same ids and sequence numbers, and the receiver de-duplicates. Safe to run while
the agent runs (the sender state is SQLite in WAL mode). Does not start a new sender epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agentkit.links import build_sender
from agentkit.streams import PAIR_INBOUND, outbound_stream
from agentkit.upgrade import StateDatabase
from maildiode.commands.check import config_for_command
from maildiode.commands.state_upgrade import upgrade_or_refusal
from protocol import ProtocolError
from protocol.sender import VERSIONS as SENDER_VERSIONS

# The stream each agent sends on (docs/architecture.md); an outer agent of several sends on
# its own id (outer.toml link.stream, decision D74).
STREAM_OF_AGENT = {"outer": "inbound", "inner": "outbound"}


def sent_stream(config: Any, agent: str) -> str:
    """The stream whose bundles this agent's sender keeps."""
    return str(getattr(config.link, "stream", None) or STREAM_OF_AGENT[agent])


def sender_state_dir(config: Any, agent: str) -> Path:
    """Where the agent keeps its Sender state (must match what the agent passes to Sender):
    outer: ``spool.dir/sender`` (outer_agent/main.py); inner: ``outbound.spool_dir/link-state``
    (inner_agent/outbound/service.py)."""
    explicit = getattr(config.link, "state_dir", None)
    if explicit is not None:
        return Path(explicit)
    if agent == "outer":
        return Path(config.spool.dir) / "sender"
    return Path(config.outbound.spool_dir) / "link-state"


def _chosen_stream(config: Any, agent: str, wanted: str | None) -> tuple[str, Any, Any] | str:
    """(stream, [link], [keys]) to resend on, or why not: an inner agent's ``--stream ID``
    names one of its ``[[streams.outer]]``, whose own channel and key the stream ``ID-out``
    goes through (decision D75)."""
    if wanted is None or wanted == PAIR_INBOUND:
        return sent_stream(config, agent), config.link, config.keys
    if agent != "inner":
        return "--stream is for the inner agent; an outer agent sends on its link.stream"
    streams = getattr(config, "streams", None)
    entry = next((s for s in streams.outer if s.id == wanted), None) if streams else None
    if entry is None:
        return f"no [[streams.outer]] with id {wanted!r} in the config"
    keys = config.keys.model_copy(update={"encrypt_to": entry.encrypt_to or config.keys.encrypt_to})
    return outbound_stream(entry.id), entry.send_link(config.link), keys


def run(args: argparse.Namespace) -> int:
    if args.first < 1 or args.last < args.first:
        print(f"resend: {args.first}..{args.last} is not a range of sequence numbers",
              file=sys.stderr)  # fmt: skip
        return 2
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    chosen = _chosen_stream(config, agent, getattr(args, "stream", None))
    if isinstance(chosen, str):
        print(f"resend: {chosen}", file=sys.stderr)
        return 2
    stream, link, keys = chosen
    state_dir = sender_state_dir(config, agent)
    sender_db = StateDatabase.at(state_dir / f"sender-{stream}.db", SENDER_VERSIONS)
    if refused := upgrade_or_refusal("resend", [sender_db], config.audit.path, agent=agent):
        return refused
    try:
        sender = build_sender(link, keys, state_dir, stream,
                              new_epoch=False)  # fmt: skip
        try:
            count = sender.resend(args.first, args.last)
        finally:
            sender.close()
    except ProtocolError as exc:
        print(f"resend: {exc}", file=sys.stderr)
        return 1
    wanted = args.last - args.first + 1
    print(f"re-sent {count} of {wanted} bundle(s) of stream {stream}")
    return 0 if count == wanted else 1
