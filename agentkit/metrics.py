"""An agent's status as Prometheus metrics (text exposition format 0.0.4).

``maildiode status -c FILE --prometheus`` prints them; written to a ``*.prom`` file every minute
(node_exporter's textfile collector, or any agent that reads the format) they put the link, the
queues and the audit log's step counts on the dashboards and alert rules a bank's operations
team already runs. A file, not a listening port: neither zone gains a socket for it, which
matters most on the outer, internet-facing machine (docs/operations.md, "Monitoring").

Pure: the status dictionary of :mod:`maildiode.commands.status` and the audit log's step
counts in, text out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["prometheus_text", "quarantined"]

_SPOOL_STATES = ("incoming", "received", "rendering", "rendered", "quarantine")


def prometheus_text(status: Mapping[str, Any], audit_steps: Mapping[str, int]) -> str:
    """The exposition text for one agent: ``status`` as ``maildiode status --json`` prints
    it, ``audit_steps`` the number of audit events per step since the log began."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(status, audit_steps))
    return generate_latest(registry).decode("utf-8")


class _Collector:
    def __init__(self, status: Mapping[str, Any], audit_steps: Mapping[str, int]) -> None:
        self._status = status
        self._audit_steps = audit_steps

    def collect(self) -> Iterator[Metric]:
        agent = str(self._status["agent"])
        yield from _link_metrics(agent, self._status)
        queues = self._status.get("queues", {})
        if "spool" in queues:
            yield from _spool_metrics(agent, queues["spool"])
        if "injection" in queues:
            yield from _injection_metrics(agent, queues["injection"])
        if "delivery" in queues:
            yield from _delivery_metrics(agent, queues["delivery"])
        if "inbound" in queues:
            yield from _inbound_metrics(agent, queues["inbound"])
        if "outer_report" in self._status:
            yield from _outer_report_metrics(agent, self._status["outer_report"])
        yield from _stream_metrics(agent, _stream_rows(self._status))
        if "lease" in self._status:
            yield from _lease_metrics(agent, self._status["lease"])
        if self._status.get("directory", {}).get("state") in ("reachable", "unreachable"):
            yield from _directory_metrics(agent, self._status["directory"])
        steps = CounterMetricFamily(
            "maildiode_audit_events", "Audit events recorded, per step", labels=["agent", "step"]
        )
        for step, count in sorted(self._audit_steps.items()):
            steps.add_metric([agent, step], count)
        yield steps


def _gauge(name: str, text: str, agent: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text, labels=["agent"])
    gauge.add_metric([agent], value)
    return gauge


def _link_metrics(agent: str, status: Mapping[str, Any]) -> Iterator[Metric]:
    if "state" in status:  # nothing received yet: the link has no figures to report
        yield _gauge("maildiode_link_received_anything", "1 once a chunk arrived", agent, 0)
        return
    yield _gauge("maildiode_link_received_anything", "1 once a chunk arrived", agent, 1)
    yield _gauge(
        "maildiode_link_silent",
        "1 when neither chunk nor heartbeat arrived within link.silence_alarm_s",
        agent,
        1 if status["silent"] else 0,
    )
    for key, name, text in (
        ("last_seen_ms", "maildiode_link_last_chunk_timestamp_seconds", "last chunk received"),
        ("last_heartbeat_ms", "maildiode_link_last_heartbeat_timestamp_seconds",
         "last heartbeat received"),
    ):  # fmt: skip
        yield _gauge(name, f"Unix time of the {text} (0: never)", agent, status[key] / 1000)
    yield _gauge("maildiode_link_sender_epoch", "Epoch of the sending agent", agent,
                 status["sender_epoch"])  # fmt: skip
    yield _gauge("maildiode_link_highest_sequence", "Highest bundle sequence number seen",
                 agent, status["highest_seq"])  # fmt: skip
    yield _gauge("maildiode_link_gaps", "Bundle sequence numbers missing past link.gap_wait_s",
                 agent, len(status["gaps"]))  # fmt: skip
    yield _gauge("maildiode_link_partial_bundles", "Bundles with chunks still missing", agent,
                 status["in_flight"])  # fmt: skip
    yield _gauge("maildiode_link_held_bytes", "Bytes of partial bundles held", agent,
                 status["bytes_held"])  # fmt: skip
    counters = CounterMetricFamily(
        "maildiode_link_events",
        "Receiver events since its state was created (chunks verified, refused, duplicates...)",
        labels=["agent", "event"],
    )
    for event, count in sorted(status["counters"].items()):
        counters.add_metric([agent, event], count)
    yield counters


def _inbound_metrics(agent: str, inbound: Mapping[str, Any]) -> Iterator[Metric]:
    """The receive filters at the outer agent (issue 17)."""
    version = inbound.get("policy_version")
    yield _gauge("maildiode_policy_version",
                 "Inbound policy version enforced (0: none; -1: its file is unreadable)", agent,
                 -1 if version is None else version)  # fmt: skip
    yield _gauge("maildiode_held_mails", "Inbound mails held for a decision from inside", agent,
                 inbound.get("held", 0))  # fmt: skip
    copies = GaugeMetricFamily("maildiode_archive_copies",
                               "Originals for the archive mailbox, waiting or failed",
                               labels=["agent", "state"])  # fmt: skip
    copies.add_metric([agent, "waiting"], inbound.get("archive_waiting", 0))
    copies.add_metric([agent, "failed"], inbound.get("archive_failed", 0))
    yield copies


def _spool_metrics(agent: str, spool: Mapping[str, Any]) -> Iterator[Metric]:
    mails = GaugeMetricFamily(
        "maildiode_spool_mails", "Mails in the outer agent's spool, per state",
        labels=["agent", "state"],
    )  # fmt: skip
    for state in _SPOOL_STATES:
        mails.add_metric([agent, state], spool.get(state, 0))
    yield mails
    waited = spool.get("oldest_waiting_s")
    yield _gauge("maildiode_spool_oldest_waiting_seconds",
                 "Age of the oldest mail not yet published (0: nothing waits)", agent,
                 waited or 0)  # fmt: skip


def _injection_metrics(agent: str, queue: Mapping[str, Any]) -> Iterator[Metric]:
    notifications = GaugeMetricFamily(
        "maildiode_injection_notifications",
        "Notifications in the inner agent's injection queue, per state",
        labels=["agent", "state"],
    )
    for state in ("queued", "accepted", "refused", "arrived"):
        notifications.add_metric([agent, state], queue.get(state, 0))
    yield notifications
    waited = queue.get("oldest_queued_s")
    yield _gauge("maildiode_injection_oldest_waiting_seconds",
                 "Age of the oldest notification the internal server has not taken (0: none)",
                 agent, waited or 0)  # fmt: skip
    yield _gauge("maildiode_injection_alarm",
                 "1 once the oldest notification waited longer than inject.alarm_after_s",
                 agent, 1 if queue.get("alarm") else 0)  # fmt: skip


def _delivery_metrics(agent: str, delivery: Mapping[str, Any]) -> Iterator[Metric]:
    """The outer agent's outbound delivery queue (issue 22: mail stuck on a dead relay)."""
    mails = GaugeMetricFamily("maildiode_delivery_mails",
                              "Outbound mails in the outer agent's delivery queue, per state",
                              labels=["agent", "state"])  # fmt: skip
    for state in ("queued", "retrying", "quarantine"):
        mails.add_metric([agent, state], delivery.get(state, 0))
    yield mails
    oldest = delivery.get("oldest") or {}
    yield _gauge("maildiode_delivery_oldest_waiting_seconds",
                 "Age of the outbound mail waiting longest for the relay (0: none)", agent,
                 oldest.get("waited_s", 0))  # fmt: skip
    yield _gauge("maildiode_delivery_alarm",
                 "1 once an outbound mail waited longer than delivery.alarm_after_s", agent,
                 1 if delivery.get("alarm") else 0)  # fmt: skip


def _outer_report_metrics(agent: str, found: Mapping[str, Any]) -> Iterator[Metric]:
    """The outer agent's last status report, as the inner agent received it through the link:
    its age, whether it is stale, and its figures (labelled ``agent`` = the inner agent that
    reports them, as every metric of this file)."""
    received = found["state"] != "missing"
    yield _gauge("maildiode_outer_report_received", "1 once a status report of the outer agent "
                 "arrived", agent, 1 if received else 0)  # fmt: skip
    if not received:
        return
    yield _gauge("maildiode_outer_report_age_seconds", "Age of the outer agent's last status "
                 "report", agent, found["age_s"])  # fmt: skip
    yield _gauge("maildiode_outer_report_stale", "1 when the last report is older than three "
                 "of its intervals", agent, 1 if found["state"] == "stale" else 0)  # fmt: skip
    figures = found["report"]["figures"]
    host = figures["host"]
    for key, name, text in _OUTER_HOST_GAUGES:
        if host[key] is not None:
            yield _gauge(name, text, agent, host[key])
    yield _gauge("maildiode_outer_policy_version", "Inbound policy version the outer agent "
                 "enforces (0: none)", agent, figures["policy_version"])  # fmt: skip
    mails = GaugeMetricFamily(
        "maildiode_outer_spool_mails", "Mails in the outer agent's spool, per state, as reported",
        labels=["agent", "state"],
    )  # fmt: skip
    for state in _SPOOL_STATES:
        mails.add_metric([agent, state], figures["spool"][state])
    yield mails
    delivery = GaugeMetricFamily(
        "maildiode_outer_delivery_mails", "Outbound mails in the outer agent's delivery queue",
        labels=["agent", "state"],
    )  # fmt: skip
    for state in ("queued", "retrying", "quarantine"):
        delivery.add_metric([agent, state], figures["delivery"][state])
    yield delivery


def _stream_rows(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each receiving stream's figures: the ``streams`` rows with several outer agents (D74),
    else the one stream of the link status (nothing before its first chunk)."""
    if "streams" in status:
        return list(status["streams"])
    if "state" in status:
        return []
    counters = status["counters"]
    return [{"stream": status["stream"], "bundles_received": counters.get("bundles_delivered", 0),
             "highest_seq": status["highest_seq"],
             "quarantined": quarantined(counters)}]  # fmt: skip


def quarantined(counters: Mapping[str, int]) -> int:
    """Files and bundles a receiver refused and kept, of every reason (``quarantined:*``)."""
    return sum(count for name, count in counters.items() if name.startswith("quarantined:"))


def _stream_metrics(agent: str, rows: list[Mapping[str, Any]]) -> Iterator[Metric]:
    """Per receiving stream (one per outer agent, ``stream`` label): what the link carried."""
    for key, name, text, kind in (
        ("bundles_received", "maildiode_stream_bundles_received",
         "Bundles received and handed over, per stream", CounterMetricFamily),
        ("highest_seq", "maildiode_stream_last_sequence",
         "Highest bundle sequence number seen, per stream", GaugeMetricFamily),
        ("quarantined", "maildiode_stream_quarantined",
         "Files and bundles refused and kept in quarantine, per stream", CounterMetricFamily),
    ):  # fmt: skip
        family = kind(name, text, labels=["agent", "stream"])
        for row in rows:
            family.add_metric([agent, str(row["stream"])], row.get(key, 0))
        yield family


def _lease_metrics(agent: str, lease: Mapping[str, Any]) -> Iterator[Metric]:
    """The state's fencing lease as this host's inner agent sees it (D70)."""
    roles = GaugeMetricFamily("maildiode_lease_role", "1 for this agent's role on its state: "
                              "active, standby or unheld", labels=["agent", "role"])  # fmt: skip
    for role in ("active", "standby", "unheld"):
        roles.add_metric([agent, role], 1 if lease["role"] == role else 0)
    yield roles
    yield _gauge("maildiode_lease_fencing_token", "Fencing token of the lease row (0: never "
                 "taken)", agent, lease["token"] or 0)  # fmt: skip
    yield _gauge("maildiode_lease_expiry_timestamp_seconds", "Unix time the lease row expires "
                 "unless renewed (0: never taken)", agent, lease["expires"] or 0)  # fmt: skip


def _directory_metrics(agent: str, found: Mapping[str, Any]) -> Iterator[Metric]:
    """The LDAP directory as last seen by the sync or a sign-in (D78, D92); none before
    anyone asked."""
    yield _gauge("maildiode_directory_reachable", "1 when an LDAP server answered the last "
                 "look (sync or sign-in), 0 when none did", agent,
                 1 if found["state"] == "reachable" else 0)  # fmt: skip
    servers = GaugeMetricFamily("maildiode_directory_server_up", "Per LDAP server seen in the "
                                "last look: 1 answered, 0 could not",
                                labels=["agent", "server"])  # fmt: skip
    if found.get("answered_by"):
        servers.add_metric([agent, str(found["answered_by"])], 1)
    for down in found.get("down") or ():
        servers.add_metric([agent, str(down["server"])], 0)
    yield servers


_OUTER_HOST_GAUGES = (
    ("cpu_percent", "maildiode_outer_cpu_percent", "Busy share of the outer host's CPUs"),
    ("uptime_s", "maildiode_outer_uptime_seconds", "Seconds since the outer host booted"),
    ("memory_total", "maildiode_outer_memory_total_bytes", "Memory of the outer host"),
    ("memory_available", "maildiode_outer_memory_available_bytes",
     "Memory available on the outer host"),
    ("disk_total", "maildiode_outer_spool_disk_total_bytes",
     "Size of the outer agent's spool file system"),
    ("disk_free", "maildiode_outer_spool_disk_free_bytes",
     "Free space of the outer agent's spool file system"),
)  # fmt: skip
