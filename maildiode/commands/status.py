"""``maildiode status -c FILE``: the receiving link's state as the agent last recorded it.

Reads the agent's protocol state (SQLite, shared safely with a running agent) and answers what
an operator on call asks first: is the link alive, is anything missing, what was refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from maildiode.commands.check import config_for_command


def receive_side(config: Any, agent: str) -> tuple[str, Path]:
    """(stream, state folder) of the direction this agent receives; as the agents lay it out."""
    if agent == "outer":
        return "outbound", config.spool.dir / "link-out"
    return "inbound", config.state.dir


def link_status(config: Any, agent: str) -> dict[str, Any]:
    from protocol import Keyring, Receiver

    stream, state_dir = receive_side(config, agent)
    if not (state_dir / f"receiver-{stream}.db").exists():
        return {"agent": agent, "stream": stream, "state": "nothing received yet"}
    receiver = Receiver(state_dir, stream, Keyring.load(config.keys.peer_keys),
                        gap_wait_s=config.link.gap_wait_s)  # fmt: skip
    try:
        status = asdict(receiver.status())
    finally:
        receiver.close()
    now_ms = int(time.time() * 1000)
    last_seen = status["last_seen_ms"]
    status["silent"] = not last_seen or now_ms - last_seen > config.link.silence_alarm_s * 1000
    status["counters"] = dict(status["counters"])
    return {"agent": agent, **status}


def describe(status: dict[str, Any]) -> str:
    if "state" in status:
        return f"{status['agent']} agent, stream {status['stream']}: {status['state']}\n"
    now_ms = int(time.time() * 1000)

    def ago(ms: int) -> str:
        return "never" if not ms else f"{(now_ms - ms) / 1000:.0f} s ago"

    lines = [
        f"{status['agent']} agent, receiving stream {status['stream']}",
        f"  link:            {'SILENT' if status['silent'] else 'alive'}",
        f"  last chunk:      {ago(status['last_seen_ms'])}",
        f"  last heartbeat:  {ago(status['last_heartbeat_ms'])}",
        f"  sender epoch:    {status['sender_epoch']}, highest sequence {status['highest_seq']}",
        f"  gaps:            {', '.join(map(str, status['gaps'])) or 'none'}",
        f"  in flight:       {status['in_flight']} partial bundles, {status['bytes_held']} bytes",
    ]
    lines += [f"  {name + ':':<16} {value}" for name, value in sorted(status["counters"].items())]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    status = link_status(config, agent)
    if args.json:
        print(json.dumps(status, default=str))
    else:
        sys.stdout.write(describe(status))
    return 1 if status.get("silent") or status.get("gaps") else 0
