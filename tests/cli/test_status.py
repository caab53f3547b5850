"""`maildiode status` reports what the receiving side recorded: sequence, gaps, refusals."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from inner_agent.link_service import build_reader
from maildiode.commands.check import load_agent_config
from maildiode.trial.stack import set_key
from protocol import FolderTransport, Kind, Sender, SigningKey
from tests.support.command import maildiode


def _inner_that_missed_bundle_2(root: Path) -> None:
    """A trial whose inner agent received bundles 1 and 3 of 3, and one garbage file."""
    # the outer agent's key publishes bundles 1..3; bundle 2 is lost on the way
    sender = Sender(root / "outer/test-sender", "inbound", SigningKey.load(root / "keys/outer.key"),
                    FolderTransport(root / "link/in/send"), chunk_size=4096)  # fmt: skip
    for number in (1, 2, 3):
        sender.publish(b"bundle %d" % number, bytes([number]) * 16, Kind.DATA)
        files = sorted((root / "link/in/send").iterdir())
        for path in files:
            if number != 2:
                shutil.copy(path, root / "link/in/recv" / path.name)
            path.unlink()
    sender.close()
    (root / "link/in/recv/garbage.mdc").write_bytes(b"not a chunk at all")

    toml = root / "inner.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("gap_wait_s = 300", "gap_wait_s = 0.01")
                    .replace("settle_s = 1", "settle_s = 0"), encoding="utf-8")  # fmt: skip
    config = load_agent_config(toml, "inner")
    reader = build_reader(config, config.state.dir)
    delivered: list[bytes] = []
    reader.poll(lambda bundle: delivered.append(bundle.data))
    reader.close()
    assert sorted(delivered) == [b"bundle 1", b"bundle 3"]


def test_status_shows_sequence_gap_and_quarantine(tmp_path: Path) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    quiet = maildiode("status", "-c", str(root / "inner.toml"))
    assert quiet.returncode == 0
    assert "nothing received yet" in quiet.stdout

    _inner_that_missed_bundle_2(root)
    result = maildiode("status", "-c", str(root / "inner.toml"), "--json")
    status = json.loads(result.stdout)
    assert status["highest_seq"] == 3
    assert status["gaps"] == [2]
    assert sum(v for k, v in status["counters"].items() if "quarantin" in k) >= 1
    assert result.returncode == 1  # a gap is something an operator must look at
    text = maildiode("status", "-c", str(root / "inner.toml")).stdout
    assert "gaps:            2" in text


def test_status_shows_waiting_notifications_and_alarms_when_they_wait_too_long(
    tmp_path: Path,
) -> None:
    from inner_agent.inject import InjectionQueue

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = load_agent_config(root / "inner.toml", "inner")
    an_hour_ago = time.time() - 3600
    queue = InjectionQueue(config.state.dir / "inject.db", clock=lambda: an_hour_ago)
    queue.add_bundle(b"1" * 16, "mail-1", "maildiode@corp.example", ["u@corp.example"], [b"x"])
    waiting = queue.next_due(set())
    assert waiting is not None
    queue.defer(waiting.id, an_hour_ago + 60, "421 4.3.2 service not available", ["u@corp.example"])
    queue.add_bundle(b"2" * 16, "mail-2", "maildiode@corp.example", ["u@corp.example"], [b"y"])
    queue.close()

    result = maildiode("status", "-c", str(root / "inner.toml"), "--json")
    injection = json.loads(result.stdout)["queues"]["injection"]
    assert injection["queued"] == 2
    assert 3590 <= injection["oldest_queued_s"] <= 3700
    assert injection["attempts"] == 1
    assert injection["last_error"] == "421 4.3.2 service not available"
    assert injection["alarm"] is True  # an hour is over inject.alarm_after_s (900 s)
    assert result.returncode == 1
    text = maildiode("status", "-c", str(root / "inner.toml")).stdout
    assert "2 waiting, 0 accepted after waiting, 0 refused" in text
    assert "ALARM" in text
    assert "421 4.3.2 service not available" in text

    toml = root / "inner.toml"
    toml.write_text(toml.read_text().replace("alarm_after_s = 900", "alarm_after_s = 7200"))
    calm = maildiode("status", "-c", str(toml), "--json")
    assert json.loads(calm.stdout)["queues"]["injection"]["alarm"] is False
    assert calm.returncode == 0


def test_outer_status_counts_the_spool(tmp_path: Path) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = load_agent_config(root / "outer.toml", "outer")
    spool = config.spool.dir / "inbound"
    for state, names in {
        "received": ["a.0", "b.0"],
        "rendered": ["c"],
        "quarantine": ["d"],
    }.items():
        (spool / state).mkdir(parents=True, exist_ok=True)
        for name in names:
            (spool / state / name).write_bytes(b"mail")
    (spool / "quarantine" / "d.reason").write_text("render_timeout\n")
    old = time.time() - 120
    os.utime(spool / "received" / "a.0", (old, old))

    result = maildiode("status", "-c", str(root / "outer.toml"), "--json")
    counts = json.loads(result.stdout)["queues"]["spool"]
    assert (counts["received"], counts["rendered"], counts["quarantine"]) == (2, 1, 1)
    assert 115 <= counts["oldest_waiting_s"] <= 200
    text = maildiode("status", "-c", str(root / "outer.toml")).stdout
    assert "0 incoming, 2 received, 0 rendering, 1 rendered" in text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, parsed by the client library's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_prometheus_output_carries_the_gap_the_refusals_and_the_audit_counts(
    tmp_path: Path,
) -> None:
    from agentkit.audit import AuditLog

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    _inner_that_missed_bundle_2(root)
    config = load_agent_config(root / "inner.toml", "inner")
    log = AuditLog(config.audit.path, agent="inner")
    for mail in ("m1", "m2", "m3"):
        log.record(mail, "received_inside")
    log.record("m1", "injected")
    log.record("m2", "quarantined", reason="image_pixels")
    log.close()

    result = maildiode("status", "-c", str(root / "inner.toml"), "--prometheus")
    assert result.returncode == 0  # the gap is a metric here, not an exit status
    samples = _samples(result.stdout)
    inner = (("agent", "inner"),)
    assert samples[("maildiode_link_highest_sequence", inner)] == 3
    assert samples[("maildiode_link_gaps", inner)] == 1
    assert samples[("maildiode_link_received_anything", inner)] == 1
    refused = sum(
        value for (name, labels), value in samples.items()
        if name == "maildiode_link_events_total" and "quarantin" in dict(labels)["event"]
    )  # fmt: skip
    assert refused >= 1
    steps = {
        dict(labels)["step"]: value
        for (name, labels), value in samples.items()
        if name == "maildiode_audit_events_total"
    }
    assert steps == {"received_inside": 3, "injected": 1, "quarantined": 1}
    assert samples[("maildiode_injection_alarm", inner)] == 0


def test_prometheus_output_counts_the_outer_spool_per_state() -> None:
    from agentkit.metrics import prometheus_text

    status = {
        "agent": "outer",
        "stream": "outbound",
        "state": "nothing received yet",
        "queues": {"spool": {"incoming": 0, "received": 2, "rendering": 1, "rendered": 0,
                             "quarantine": 4, "oldest_waiting_s": 12.5}},
    }  # fmt: skip
    samples = _samples(prometheus_text(status, {}))
    outer = (("agent", "outer"),)
    assert samples[("maildiode_link_received_anything", outer)] == 0
    assert samples[("maildiode_spool_mails", (("agent", "outer"), ("state", "received")))] == 2
    assert samples[("maildiode_spool_mails", (("agent", "outer"), ("state", "quarantine")))] == 4
    assert samples[("maildiode_spool_oldest_waiting_seconds", outer)] == 12.5
    assert not any(name.startswith("maildiode_injection") for name, _ in samples)


def _store_report(root: Path, made: float, received: float) -> None:
    """A status report of the outer agent as the inner agent stores it on arrival."""
    from dataclasses import replace

    from inner_agent.reports import ReportStore
    from tests.agentkit.control_golden import REPORT

    config = load_agent_config(root / "inner.toml", "inner")
    store = ReportStore(config.state.dir / "reports.db")
    report = replace(REPORT, made_ms=int(made * 1000))
    store.add("inbound", b"r" * 16, 5, report, int(received * 1000))
    store.close()


def test_inner_status_shows_the_outer_agents_report_and_says_when_it_is_missing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    missing = maildiode("status", "-c", str(root / "inner.toml"))
    assert "no status report received yet" in missing.stdout
    assert missing.returncode == 0  # a new pair: nothing has crossed yet
    assert json.loads(maildiode("status", "-c", str(root / "inner.toml"), "--json").stdout)[
        "outer_report"
    ] == {"state": "missing", "age_s": None}  # fmt: skip

    now = time.time()
    _store_report(root, made=now - 12, received=now - 11)
    result = maildiode("status", "-c", str(root / "inner.toml"), "--json")
    found = json.loads(result.stdout)["outer_report"]
    assert found["state"] == "fresh"
    # the age counts from the report's making to the command's reading, however slow the
    # machine: at least 12 s, at most 12 s plus the time since ``now``
    assert 11.9 <= found["age_s"] <= 12 + (time.time() - now) + 1
    assert found["report"]["figures"]["host"]["hostname"] == "mx-dmz-1"
    assert found["report"]["figures"]["delivery"]["queued"] == 2
    assert result.returncode == 0
    text = maildiode("status", "-c", str(root / "inner.toml")).stdout
    assert "outer agent, as its last status report says:" in text
    assert "host:          mx-dmz-1, up 10 d 0 h, CPU 12.5 % of 2 CPUs, load 0.25 0.50 0.75" in text
    assert "memory:        3.0 GiB free of 4.0 GiB" in text
    assert "spool:         0 incoming, 3 received, 2 rendering, 0 rendered; 1 quarantined" in text
    assert "delivery:      2 waiting (1 tried before), 0 quarantined; oldest waiting 620 s" in text
    assert "link out:      highest sequence 88, 1 gaps, 2 refused files kept, 0 deleted" in text
    assert "STALE" not in text
    prometheus = _samples(
        maildiode("status", "-c", str(root / "inner.toml"), "--prometheus").stdout
    )
    inner = (("agent", "inner"),)
    assert prometheus[("maildiode_outer_report_received", inner)] == 1
    assert prometheus[("maildiode_outer_report_stale", inner)] == 0
    assert prometheus[("maildiode_outer_cpu_percent", inner)] == 12.5
    assert (
        prometheus[("maildiode_outer_spool_mails", (("agent", "inner"), ("state", "received")))]
        == 3
    )
    assert (
        prometheus[("maildiode_outer_delivery_mails", (("agent", "inner"), ("state", "retrying")))]
        == 1
    )


def test_inner_status_calls_a_report_older_than_three_intervals_stale_with_its_age(
    tmp_path: Path,
) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    now = time.time()
    _store_report(root, made=now - 125, received=now - 124)  # interval 30 s: stale after 90 s
    result = maildiode("status", "-c", str(root / "inner.toml"))
    assert result.returncode == 1
    said = re.search(r"STALE:         the last report is (\d+) s old", result.stdout)
    assert said is not None, result.stdout
    assert 124 <= int(said.group(1)) <= 160  # the command's own start counts on a busy machine
    assert "over 3 intervals (90 s)" in result.stdout
    found = json.loads(maildiode("status", "-c", str(root / "inner.toml"), "--json").stdout)
    assert found["outer_report"]["state"] == "stale"
    assert 124 <= found["outer_report"]["age_s"] <= 160
    samples = _samples(maildiode("status", "-c", str(root / "inner.toml"), "--prometheus").stdout)
    assert samples[("maildiode_outer_report_stale", (("agent", "inner"),))] == 1


def test_a_report_that_arrived_long_after_it_was_made_counts_as_old_as_its_arrival(
    tmp_path: Path,
) -> None:
    """The outer agent's clock may run ahead: the arrival time keeps the age honest."""
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    now = time.time()
    _store_report(root, made=now + 60, received=now - 200)
    found = json.loads(maildiode("status", "-c", str(root / "inner.toml"), "--json").stdout)
    assert found["outer_report"]["state"] == "stale"


def test_inner_status_says_when_the_ldap_directory_cannot_be_reached(tmp_path: Path) -> None:
    """What the sync or a sign-in last saw of the LDAP server (D78): unknown before anyone
    asked, then unreachable with its reason, then reachable."""
    from inner_agent.outbound.directory_health import record_health
    from inner_agent.outbound.ldap_bind import DirectoryState

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    toml = root / "inner.toml"
    url = "ldap://127.0.0.1:1"
    toml.write_text(toml.read_text(encoding="utf-8") + f'\n[directory.ldap]\nurl = "{url}"\n'
                    'base_dn = "dc=corp,dc=example"\n', encoding="utf-8")  # fmt: skip
    config = load_agent_config(toml, "inner")
    status = json.loads(maildiode("status", "-c", str(toml), "--json").stdout)
    assert status["directory"] == {"state": "unknown", "server": url}

    down = DirectoryState(url, False, "LDAPSocketOpenError: Connection refused", time.time() - 90)
    record_health(config.state.dir, down, "sign-in")
    result = maildiode("status", "-c", str(toml))
    found = re.search(rf"directory: +LDAP {re.escape(url)}: unreachable for (\d+) s", result.stdout)
    assert found is not None, result.stdout
    assert 90 <= int(found.group(1)) < 150  # the command itself takes some seconds
    assert "Connection refused; seen by sign-in" in result.stdout
    assert result.returncode == 1  # no server answers: a warning exit (D92)
    assert json.loads(maildiode("status", "-c", str(toml), "--json").stdout)["directory"][
        "state"] == "unreachable"  # fmt: skip

    record_health(config.state.dir, DirectoryState(url, True, "", time.time()), "sync")
    reachable = maildiode("status", "-c", str(toml))
    assert f"LDAP {url}: reachable" in reachable.stdout
    assert reachable.returncode == 0


def test_prometheus_output_has_each_streams_figures_labelled_by_stream(tmp_path: Path) -> None:
    """One outer agent: the link's one stream; several (``streams`` rows, D74): one each."""
    from agentkit.metrics import prometheus_text

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    _inner_that_missed_bundle_2(root)
    samples = _samples(maildiode("status", "-c", str(root / "inner.toml"), "--prometheus").stdout)
    inbound = (("agent", "inner"), ("stream", "inbound"))
    assert samples[("maildiode_stream_bundles_received_total", inbound)] == 2
    assert samples[("maildiode_stream_last_sequence", inbound)] == 3
    assert samples[("maildiode_stream_quarantined_total", inbound)] >= 1

    status = json.loads(maildiode("status", "-c", str(root / "inner.toml"), "--json").stdout)
    status["streams"] = [
        {"stream": "inbound", "bundles_received": 7, "highest_seq": 9, "quarantined": 1},
        {"stream": "mx2", "bundles_received": 4, "highest_seq": 5, "quarantined": 0},
    ]
    several = _samples(prometheus_text(status, {}))
    for stream, received, last, kept in (("inbound", 7, 9, 1), ("mx2", 4, 5, 0)):
        labels = (("agent", "inner"), ("stream", stream))
        assert several[("maildiode_stream_bundles_received_total", labels)] == received
        assert several[("maildiode_stream_last_sequence", labels)] == last
        assert several[("maildiode_stream_quarantined_total", labels)] == kept


def test_status_shows_the_lease_this_hosts_role_its_holder_token_and_expiry(
    tmp_path: Path,
) -> None:
    """Active (this host holds the state), standby (another does), unheld (nobody, or
    expired): in the text, the JSON and the Prometheus output."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    toml = root / "inner.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(set_key(text, "lease", "holder", '"intra-a"'), encoding="utf-8")
    config = load_agent_config(toml, "inner")

    def lease() -> dict[str, object]:
        return json.loads(maildiode("status", "-c", str(toml), "--json").stdout)["lease"]

    assert lease()["role"] == "unheld"
    assert lease()["holder"] is None
    store = LeaseStore(config.state.dir)
    store.attempt(Claimant("intra-a", 4242, 20.0))
    found = lease()
    assert (found["role"], found["holder"], found["pid"], found["token"]) == (
        "active",
        "intra-a",
        4242,
        1,
    )
    assert 15 <= found["expires_in_s"] <= 20
    assert found["this_holder"] == "intra-a"
    shown = maildiode("status", "-c", str(toml)).stdout
    assert (
        "lease:           ACTIVE (this host holds it); holder intra-a (pid 4242), "
        "fencing token 1, expires in" in shown
    )
    samples = _samples(maildiode("status", "-c", str(toml), "--prometheus").stdout)
    assert samples[("maildiode_lease_role", (("agent", "inner"), ("role", "active")))] == 1
    assert samples[("maildiode_lease_role", (("agent", "inner"), ("role", "standby")))] == 0
    assert samples[("maildiode_lease_fencing_token", (("agent", "inner"),))] == 1

    store.release(Claimant("intra-a", 4242, 20.0), 1)  # expired now: intra-b takes it
    store.attempt(Claimant("intra-b", 777, 20.0))
    store.close()
    found = lease()
    assert (found["role"], found["holder"], found["token"]) == ("standby", "intra-b", 2)
    assert "STANDBY (this host, intra-a, takes over when it expires); holder intra-b" in (
        maildiode("status", "-c", str(toml)).stdout
    )


def test_inner_status_exits_1_when_no_ldap_server_answers_and_0_while_one_does(
    tmp_path: Path,
) -> None:
    """An unreachable directory is a warning exit as a silent link is (D92): nobody signs in
    with the directory password and the sync waits. One of two servers down is said, not
    an exit status: the other answers. ``--prometheus`` stays 0 whatever the state."""
    from inner_agent.outbound.directory_health import record_health
    from inner_agent.outbound.ldap_bind import DirectoryState
    from inner_agent.outbound.ldap_sync import ServerState

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    toml = root / "inner.toml"
    dc1, dc2 = "ldap://127.0.0.1:1", "ldap://127.0.0.1:2"
    toml.write_text(toml.read_text(encoding="utf-8") + f'\n[directory.ldap]\nurl = ["{dc1}", '
                    f'"{dc2}"]\nbase_dn = "dc=corp,dc=example"\n', encoding="utf-8")  # fmt: skip
    config = load_agent_config(toml, "inner")
    unknown = maildiode("status", "-c", str(toml), "--json")
    assert json.loads(unknown.stdout)["directory"] == {"state": "unknown",
                                                       "server": f"{dc1}, {dc2}"}  # fmt: skip
    assert unknown.returncode == 0

    now = time.time()
    dc1_down = ServerState(dc1, False, "LDAPSocketOpenError: Connection refused", now - 30)
    one_down = DirectoryState(dc2, True, "", now, (ServerState(dc2, True, "", now), dc1_down))
    record_health(config.state.dir, one_down, "sign-in")
    result = maildiode("status", "-c", str(toml))
    assert result.returncode == 0, result.stdout
    assert f"LDAP {dc2}: reachable (seen by sign-in); {dc1}: unreachable for" in result.stdout
    samples = _samples(maildiode("status", "-c", str(toml), "--prometheus").stdout)
    assert samples[("maildiode_directory_reachable", (("agent", "inner"),))] == 1
    up = [(server, samples[("maildiode_directory_server_up", (("agent", "inner"), ("server", server)))])
          for server in (dc1, dc2)]  # fmt: skip
    assert up == [(dc1, 0), (dc2, 1)]

    dc2_down = ServerState(dc2, False, "LDAPSocketOpenError: Connection refused", now)
    both = DirectoryState(f"{dc1}, {dc2}", False, f"{dc1}: ...; {dc2}: ...", now - 5,
                          (dc1_down, dc2_down))  # fmt: skip
    record_health(config.state.dir, both, "sync")
    result = maildiode("status", "-c", str(toml))
    assert result.returncode == 1, result.stdout
    assert f"LDAP {dc1}, {dc2}: unreachable for" in result.stdout
    assert maildiode("status", "-c", str(toml), "--json").returncode == 1
    metrics = maildiode("status", "-c", str(toml), "--prometheus")
    assert metrics.returncode == 0
    samples = _samples(metrics.stdout)
    assert samples[("maildiode_directory_reachable", (("agent", "inner"),))] == 0
    for dc in (dc1, dc2):
        assert samples[("maildiode_directory_server_up", (("agent", "inner"), ("server", dc)))] == 0
