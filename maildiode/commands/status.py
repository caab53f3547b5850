"""``maildiode status -c FILE``: the receiving link's state and the agent's queues.

Reads the agent's protocol state and queues (SQLite and spool folders, read only, shared safely
with a running agent) and answers what an operator on call asks first: is the link alive, is
anything missing, what was refused, is mail waiting and for how long.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agentkit.audit import step_counts
from agentkit.metrics import prometheus_text
from maildiode.commands.check import config_for_command
from protocol import Keyring, Receiver


def receive_side(config: Any, agent: str) -> tuple[str, Path]:
    """(stream, state folder) of the direction this agent receives; as the agents lay it out."""
    if agent == "outer":
        return "outbound", config.spool.dir / "link-out"
    return "inbound", config.state.dir


def link_status(config: Any, agent: str) -> dict[str, Any]:
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


def queue_status(config: Any, agent: str) -> dict[str, Any]:
    """The agent's own queues: the outer spool, or the inner injection queue (with its alarm)."""
    now = time.time()
    # Only the agent this config is for is imported.
    if agent == "outer":
        from outer_agent.spool import spool_summary

        return {"spool": spool_summary(config.spool.dir / "inbound", now)}
    from inner_agent.inject import queue_summary

    queue = queue_summary(config.state.dir / "inject.db", now)
    waited = queue["oldest_queued_s"]
    queue["alarm"] = waited is not None and waited > config.inject.alarm_after_s
    return {"injection": queue}


def describe_queues(queues: dict[str, Any]) -> list[str]:
    if "spool" in queues:
        spool = queues["spool"]
        waited = spool["oldest_waiting_s"]
        return [
            "  spool:           "
            + ", ".join(
                f"{spool[k]} {k}" for k in ("incoming", "received", "rendering", "rendered")
            ),
            f"  quarantined:     {spool['quarantine']}",
            f"  oldest waiting:  {'nothing waits' if waited is None else f'{waited:.0f} s'}",
        ]
    queue = queues["injection"]
    lines = [
        f"  notifications:   {queue['queued']} waiting, {queue['accepted']} accepted after "
        f"waiting, {queue['refused']} refused by the internal server (sent at once: audit log)",
    ]
    if queue["arrived"]:  # only an earlier version stored raw bundles; built at the next start
        lines.append(f"  stored, not yet built: {queue['arrived']} bundle(s) (built at start)")
    if queue["oldest_queued_s"] is not None:
        alarm = "  ALARM: longer than inject.alarm_after_s" if queue["alarm"] else ""
        lines.append(f"  oldest waiting:  {queue['oldest_queued_s']:.0f} s, tried "
                     f"{queue['attempts']} time(s){alarm}")  # fmt: skip
        if queue["last_error"]:
            lines.append(f"  last error:      {queue['last_error']}")
    return lines


def describe(status: dict[str, Any]) -> str:
    if "state" in status:
        head = f"{status['agent']} agent, stream {status['stream']}: {status['state']}"
        return "\n".join([head, *describe_queues(status["queues"])]) + "\n"
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
    lines += describe_queues(status["queues"])
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    status = link_status(config, agent)
    status["queues"] = queue_status(config, agent)
    if args.prometheus:
        sys.stdout.write(prometheus_text(status, step_counts(config.audit.path)))
        # The alarms are metrics here; a collector's `status ... > f.tmp && mv` must not stop.
        return 0
    if args.json:
        print(json.dumps(status, default=str))
    else:
        sys.stdout.write(describe(status))
    waiting_too_long = status["queues"].get("injection", {}).get("alarm", False)
    return 1 if status.get("silent") or status.get("gaps") or waiting_too_long else 0
