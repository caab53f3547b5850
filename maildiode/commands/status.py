"""``maildiode status -c FILE``: the receiving link's state and the agent's queues.

Reads the agent's protocol state and queues (SQLite and spool folders, read only, shared safely
with a running agent; a receiver's file of an earlier release is upgraded first, as the agent's
start does, and recorded: D98) and answers what an operator on call asks first: is the link
alive, is anything missing, what was refused, is mail waiting and for how long. For the inner
agent it also shows the outer agent's last status report (its host, queues and link, received
through the link) and its age: stale after three of its intervals, or missing.
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
from agentkit.metrics import prometheus_text, quarantined
from agentkit.streams import PAIR_INBOUND, outbound_stream, outer_agent_name
from agentkit.upgrade import StateDatabase
from maildiode.commands.check import config_for_command
from maildiode.commands.state_upgrade import upgrade_or_refusal
from protocol import Keyring, Receiver
from protocol.receiver import VERSIONS as RECEIVER_VERSIONS


def receive_side(config: Any, agent: str) -> tuple[str, Path]:
    """(stream, state folder) of the direction this agent receives; as the agents lay it out
    (an outer agent of several reads ``ID-out``, agentkit.streams)."""
    if agent == "outer":
        return outbound_stream(config.link.stream), config.spool.dir / "link-out"
    return PAIR_INBOUND, config.state.dir


def link_status(config: Any, agent: str) -> dict[str, Any]:
    stream, state_dir = receive_side(config, agent)
    return {"agent": agent, **receiver_status(config, stream, state_dir, config.keys.peer_keys)}


def receiver_status(
    config: Any, stream: str, state_dir: Path, peer_keys: tuple[Path, ...]
) -> dict[str, Any]:
    """One receiving stream's state, read from its receiver database."""
    if not (state_dir / f"receiver-{stream}.db").exists():
        return {"stream": stream, "state": "nothing received yet"}
    receiver = Receiver(state_dir, stream, Keyring.load(peer_keys),
                        gap_wait_s=config.link.gap_wait_s)  # fmt: skip
    try:
        status = asdict(receiver.status())
    finally:
        receiver.close()
    now_ms = int(time.time() * 1000)
    last_seen = status["last_seen_ms"]
    status["silent"] = not last_seen or now_ms - last_seen > config.link.silence_alarm_s * 1000
    status["counters"] = dict(status["counters"])
    return status


def stream_statuses(config: Any, now: float) -> list[dict[str, Any]]:
    """With several outer agents (``[streams]``, D74/D75): each stream and its outer host,
    alive or silent, its report fresh, stale or missing, and what it carries: bundles received
    inward, approved mail on its way out not yet reported delivered."""
    from inner_agent.reports import latest_report, report_freshness

    streams = getattr(config, "streams", None)
    extra = [(s.id, s.peer_keys) for s in streams.outer] if streams is not None else []
    waiting = _outbound_waiting(config)
    rows = []
    for stream, peer_keys in [(PAIR_INBOUND, config.keys.peer_keys), *extra]:
        link = receiver_status(config, stream, config.state.dir, peer_keys)
        report = report_freshness(latest_report(config.state.dir / "reports.db", stream), now)
        host = report["report"]["figures"]["host"]["hostname"] if "report" in report else None
        rows.append({
            "stream": stream, "outbound_stream": outbound_stream(stream),
            "agent": outer_agent_name(stream), "host": host,
            "link": _link_state(link),
            "highest_seq": link.get("highest_seq", 0), "gaps": list(link.get("gaps", ())),
            "report": report["state"], "report_age_s": report["age_s"],
            "bundles_received": link.get("counters", {}).get("bundles_delivered", 0),
            "quarantined": quarantined(link.get("counters", {})),
            "outbound_waiting": waiting.get(stream, 0),
        })  # fmt: skip
    return rows


def _link_state(link: dict[str, Any]) -> str:
    if "state" in link:
        return "nothing received yet"
    return "silent" if link["silent"] else "alive"


def _outbound_waiting(config: Any) -> dict[str, int]:
    """Approved mail per outer agent not yet reported delivered (``shares.db``, D75)."""
    from agentkit.readonly import query_read_only

    outbound = getattr(config, "outbound", None)
    if outbound is None:
        return {}
    rows = query_read_only(outbound.spool_dir / "shares.db",
                           "SELECT stream, COUNT(*) FROM shares GROUP BY stream")  # fmt: skip
    return {str(stream): int(count) for stream, count in rows}


def describe_streams(streams: list[dict[str, Any]]) -> list[str]:
    lines = ["  streams (one per outer agent):"]
    for row in streams:
        age = "" if row["report_age_s"] is None else f" {row['report_age_s']:.0f} s ago"
        gaps = f", gaps {', '.join(map(str, row['gaps']))}" if row["gaps"] else ""
        link = "SILENT" if row["link"] == "silent" else row["link"]
        report = "fresh" if row["report"] == "fresh" else row["report"].upper()
        lines.append(
            f"    {row['stream']:<10} host {row['host'] or '?'}: link {link}, report {report}"
            f"{age}{gaps}; in: {row['bundles_received']} bundle(s), up to seq "
            f"{row['highest_seq']}; out on {row['outbound_stream']}: "
            f"{row['outbound_waiting']} mail(s) not yet reported delivered"
        )
    return lines


def queue_status(config: Any, agent: str) -> dict[str, Any]:
    """The agent's own queues: the outer spool, or the inner injection queue (with its alarm)."""
    now = time.time()
    # Only the agent this config is for is imported.
    if agent == "outer":
        from outer_agent.receive_filters import inbound_summary
        from outer_agent.spool import spool_summary

        return {"spool": spool_summary(config.spool.dir / "inbound", now),
                "delivery": delivery_status(config, now),
                "inbound": inbound_summary(config.spool.dir)}  # fmt: skip
    from inner_agent.inject import queue_summary

    queue = queue_summary(config.state.dir / "inject.db", now)
    waited = queue["oldest_queued_s"]
    queue["alarm"] = waited is not None and waited > config.inject.alarm_after_s
    return {"injection": queue}


def delivery_status(config: Any, now: float) -> dict[str, Any]:
    """The outer agent's outbound delivery queue: counts, the mail waiting longest (its age and
    the reason of its last failure), and the alarm past ``delivery.alarm_after_s``."""
    from outer_agent.delivery import delivery_summary, oldest_waiting

    root = config.spool.dir / "outbound"
    oldest = oldest_waiting(root, now)
    alarm = oldest is not None and oldest["waited_s"] > config.delivery.alarm_after_s
    return {**delivery_summary(root, now), "oldest": oldest, "alarm": alarm}


def describe_delivery(delivery: dict[str, Any] | None) -> list[str]:
    if delivery is None:
        return []
    lines = [
        f"  outbound mail:   {delivery['queued']} waiting for delivery "
        f"({delivery['retrying']} tried before), {delivery['quarantine']} quarantined"
    ]
    oldest = delivery["oldest"]
    if oldest is None:
        return lines
    alarm = "  ALARM: longer than delivery.alarm_after_s" if delivery["alarm"] else ""
    lines.append(f"  oldest waiting:  {oldest['waited_s']:.0f} s ({oldest['mail_id']}), tried "
                 f"{oldest['attempts']} time(s){alarm}")  # fmt: skip
    if oldest["last_error"]:
        lines.append(f"  last error:      {oldest['last_error']}")
    return lines


def lease_status(config: Any, now: float) -> dict[str, Any]:
    """The state's fencing lease as this host's inner agent sees it: its role (active,
    standby, unheld), the holder, the fencing token and the expiry (D70)."""
    from agentkit.leasekeeper import lease_figures
    from inner_agent.standby import holder_name

    return lease_figures(config.state.dir, holder_name(config), now)


def describe_lease(lease: dict[str, Any] | None) -> list[str]:
    if lease is None:
        return []
    this = lease["this_holder"]
    if lease["holder"] is None:
        return [f"  lease:           unheld: no agent has taken this state yet (this host: {this})"]
    expiry = (f"expires in {lease['expires_in_s']:.0f} s" if lease["expires_in_s"] > 0
              else f"EXPIRED {-lease['expires_in_s']:.0f} s ago")  # fmt: skip
    role = {
        "active": "ACTIVE (this host holds it)",
        "standby": f"STANDBY (this host, {this}, takes over when it expires)",
        "unheld": f"unheld (this host: {this})",
    }[lease["role"]]
    return [f"  lease:           {role}; holder {lease['holder']} (pid {lease['pid']}), "
            f"fencing token {lease['token']}, {expiry}"]  # fmt: skip


def outer_report(config: Any, now: float) -> dict[str, Any]:
    """The outer agent's last status report as the inner agent stored it, with its age and
    whether it is fresh, stale or missing (docs/protocol.md §16.4)."""
    from inner_agent.reports import latest_report, report_freshness

    return report_freshness(latest_report(config.state.dir / "reports.db", "inbound"), now)


def describe_outer_report(found: dict[str, Any]) -> list[str]:
    if found["state"] == "missing":
        return [
            "  outer agent:     no status report received yet (the link has carried none; an "
            "outer agent older than this version sends none)"
        ]
    stored = found["report"]
    lines = [
        "  outer agent, as its last status report says:",
        f"    report:        made {found['age_s']:.0f} s ago, received "
        f"{found['received_age_s']:.0f} s ago; one every {stored['interval_s']} s",
    ]
    if found["state"] == "stale":
        age = max(found["age_s"], found["received_age_s"])
        lines.append(
            f"    STALE:         the last report is {age:.0f} s old, over "
            f"{_stale_after_intervals()} intervals ({found['stale_after_s']} s): the link or the "
            "outer agent is down, and the figures below are that old"
        )
    figures = stored["figures"]
    lines += [f"    {line}" for line in _host_lines(figures["host"])]
    lines += [f"    {line}" for line in _queue_lines(figures["spool"], figures["delivery"])]
    lines += [f"    {line}" for line in _link_lines(figures["link"])]
    lines.append(f"    inbound policy: {figures['policy_version'] or 'none'}")
    return lines


def _stale_after_intervals() -> int:
    from inner_agent.reports import STALE_AFTER_INTERVALS

    return STALE_AFTER_INTERVALS


def _host_lines(host: dict[str, Any]) -> list[str]:
    cpu = "?" if host["cpu_percent"] is None else f"{host['cpu_percent']:.1f} %"
    load = "?" if host["load"] is None else " ".join(f"{v:.2f}" for v in host["load"])
    return [
        f"host:          {host['hostname']}, up {_duration(host['uptime_s'])}, CPU {cpu} of "
        f"{host['cpu_count'] or '?'} CPUs, load {load}",
        f"memory:        {_gib(host['memory_available'])} free of {_gib(host['memory_total'])}",
        f"spool disk:    {_gib(host['disk_free'])} free of {_gib(host['disk_total'])}",
    ]


def _queue_lines(spool: dict[str, Any], delivery: dict[str, Any]) -> list[str]:
    states = ", ".join(f"{spool[k]} {k}" for k in ("incoming", "received", "rendering", "rendered"))
    return [
        f"spool:         {states}; {spool['quarantine']} quarantined; oldest waiting "
        f"{_waited(spool['oldest_waiting_s'])}",
        f"delivery:      {delivery['queued']} waiting ({delivery['retrying']} tried before), "
        f"{delivery['quarantine']} quarantined; oldest waiting "
        f"{_waited(delivery['oldest_waiting_s'])}",
    ]


def _link_lines(link: dict[str, Any]) -> list[str]:
    sender, receiver = link["sender"], link["receiver"]
    lines = [f"link in:       epoch {sender['epoch']}, last sequence {sender['last_seq']}"]
    if receiver is not None:
        silent = ", SILENT" if receiver["silent"] else ""
        lines.append(
            f"link out:      highest sequence {receiver['highest_seq']}, "
            f"{receiver['gap_count']} gaps, {receiver['quarantined']} refused files kept, "
            f"{receiver['dropped']} deleted{silent}"
        )
    return lines


def _gib(value: int | None) -> str:
    return "?" if value is None else f"{value / (1 << 30):.1f} GiB"


def _waited(value: float | None) -> str:
    return "nothing waits" if value is None else f"{value:.0f} s"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min"


def _inbound_lines(inbound: dict[str, Any] | None) -> list[str]:
    """The receive filters at the outer agent: the policy it enforces, held mail, archive."""
    if inbound is None:
        return []
    version = inbound["policy_version"]
    shown = "UNREADABLE (none enforced)" if version is None else (version or "none")
    archive = f"{inbound['archive_waiting']} waiting, {inbound['archive_failed']} failed"
    return [f"  inbound policy:  {shown}; {inbound['held']} mail(s) held",
            f"  archive copies:  {archive}"]  # fmt: skip


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
            *describe_delivery(queues.get("delivery")),
            *_inbound_lines(queues.get("inbound")),
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


def _ldap_configured(config: Any) -> bool:
    return getattr(getattr(config, "directory", None), "ldap", None) is not None


def directory_status(config: Any) -> dict[str, Any]:
    """Whether an LDAP server answered the last sync pass or sign-in that asked
    (``directory_health``); "unknown" before anyone asked. With several servers (D92):
    ``answered_by`` and the ``down`` ones, each with its reason."""
    from inner_agent.outbound.directory_health import read_health
    from inner_agent.outbound.ldap_config import servers_text

    found = read_health(config.state.dir)
    if found is None:
        return {"state": "unknown", "server": servers_text(config.directory.ldap)}
    servers = found.pop("servers")
    down = [s for s in servers if not s["reachable"]]
    answered = found["server"] if found["reachable"] else None
    return {"state": "reachable" if found["reachable"] else "unreachable", **found,
            "answered_by": answered, "down": down}  # fmt: skip


def describe_directory(found: dict[str, Any] | None) -> list[str]:
    if found is None:
        return []
    line = f"  directory:       LDAP {found['server']}: {found['state']}"
    if found["state"] == "unreachable":
        line += f" for {_for_s(found)} s ({found['reason']}; seen by {found['source']})"
    elif found.get("down"):  # another server answered: say which could not
        line += f" (seen by {found['source']}); " + "; ".join(
            f"{s['server']}: unreachable for {_for_s(s)} s ({s['reason']})" for s in found["down"]
        )
    return [line]


def _for_s(found: dict[str, Any]) -> str:
    return f"{time.time() - float(found.get('since') or time.time()):.0f}"


def directory_down(status: dict[str, Any]) -> bool:
    """No LDAP server answered the last look: a warning exit, as a silent link is (D92)."""
    return bool(status.get("directory", {}).get("state") == "unreachable")


def describe(status: dict[str, Any]) -> str:
    report = describe_outer_report(status["outer_report"]) if "outer_report" in status else []
    report += describe_directory(status.get("directory"))
    if "state" in status:
        head = f"{status['agent']} agent, stream {status['stream']}: {status['state']}"
        streams = describe_streams(status["streams"]) if "streams" in status else []
        lease = describe_lease(status.get("lease"))
        return "\n".join([head, *lease, *describe_queues(status["queues"]), *report,
                          *streams]) + "\n"  # fmt: skip
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
    lines += describe_lease(status.get("lease"))
    lines += describe_queues(status["queues"])
    lines += report
    lines += describe_streams(status["streams"]) if "streams" in status else []
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    # Reading a receiver's state opens it, which migrates an old file: done as the start does
    # it, and audited (D98).
    receivers = StateDatabase(receive_side(config, agent)[1], "receiver-*.db", RECEIVER_VERSIONS)
    if refused := upgrade_or_refusal("status", [receivers], config.audit.path, agent=agent):
        return refused
    status = link_status(config, agent)
    status["queues"] = queue_status(config, agent)
    if agent == "inner":
        status["lease"] = lease_status(config, time.time())
        status["outer_report"] = outer_report(config, time.time())
        if _ldap_configured(config):
            status["directory"] = directory_status(config)
        if getattr(config, "streams", None) is not None:
            status["streams"] = stream_statuses(config, time.time())
    if args.prometheus:
        sys.stdout.write(prometheus_text(status, step_counts(config.audit.path)))
        # The alarms are metrics here; a collector's `status ... > f.tmp && mv` must not stop.
        return 0
    if args.json:
        print(json.dumps(status, default=str))
    else:
        sys.stdout.write(describe(status))
    queues = status["queues"]
    waiting_too_long = any(queues.get(name, {}).get("alarm", False)
                           for name in ("injection", "delivery"))  # fmt: skip
    stale = status.get("outer_report", {}).get("state") == "stale"
    streams_down = any(s["link"] == "silent" or s["gaps"] or s["report"] == "stale"
                       for s in status.get("streams", ()))  # fmt: skip
    down = status.get("silent") or status.get("gaps") or stale or streams_down
    return 1 if down or waiting_too_long or directory_down(status) else 0
