"""Receive filters end to end (issue 17): both agents as processes, a hostile linkage in both
directions (duplicated, reordered, delayed, replayed, truncated, bit-flipped and garbage files),
a real Postfix as the internal server.

- a mail from a blocked domain is not carried, and its recipient gets the notice;
- a held mail reaches its recipient only after the approver's decision crossed outward, exactly
  once, and a rejected one never;
- the outer agent refuses a policy signed with another key or older than the one it holds,
  keeps enforcing the last good set across a restart, and its status report (seen inside with
  ``maildiode status``) names the version;
- kill -9 of either agent while mail is held, released or rejected: nothing lost, nothing twice,
  nothing released without a decision.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentkit.control import Policy, encode_control
from maildiode.trial.stack import wait_for
from mailsafe.inbound_rules import published_text
from protocol import FolderTransport, Kind, Sender, SigningKey
from tests.support.receive_filters import REQUEST, FilterStack

pytestmark = pytest.mark.e2e

RULES = """\
# 수신 규칙 (issue 17 end-to-end test)
version = 1
default_action = "allow"

[[rule]]
id = "block-evil-domain"
description = "악성 도메인 차단"
action = "block"
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "hold-quotes"
description = "견적 보류 (부서장 승인)"
action = "hold"
[[rule.condition]]
field = "subject"
contains = "held-"
"""


def _policy_in_force(stack: FilterStack, version: int = 1) -> None:
    stack.wait_policy(version)


def test_blocked_held_released_rejected_each_exactly_once_over_a_hostile_link(
    tmp_path: Path,
) -> None:
    with FilterStack(tmp_path / "stack", rules=RULES) as stack:
        _policy_in_force(stack)
        plain = [f"plain-{n:02d}" for n in range(6)]
        evil = [f"evil-{n:02d}" for n in range(4)]
        held = [f"held-{n:02d}" for n in range(6)]
        stack.send(plain)
        stack.send(evil, sender="spam@mx.evil.example")
        stack.send(held)
        # the blocked mails: a notice each, nothing of the mail
        wait_for(lambda: all(stack.count(t, tag="[차단]") for t in evil), 120, "block notices")
        # the held mails: a request to the department head each, nothing to the recipient
        wait_for(lambda: all(stack.count(t, to="head@corp.example", tag=REQUEST)
                             for t in held), 120, "approval requests")  # fmt: skip
        wait_for(lambda: all(stack.count(t) for t in plain), 120, "plain mail")
        assert all(stack.count(t, tag="[수신 승인 요청]") == 0 for t in held)  # not the reader
        assert all(stack.count(t) == 0 for t in held)
        release, reject = held[:3], held[3:]
        for token in release:
            assert stack.decide(token, "release").returncode == 0
        for token in reject:
            assert stack.decide(token, "drop").returncode == 0
        again = stack.decide(release[0], "drop")
        assert again.returncode == 1
        assert "released already" in again.stderr
        wait_for(lambda: all(stack.count(t) for t in release), 120, "released mail")
        wait_for(lambda: len(stack.outer_steps("inbound_dropped")) == len(reject), 60, "drops")
        wait_for(lambda: stack.stack.recv_empty() and stack.stack.carrier.idle()
                 and stack.out_carrier.idle(), 60, "the carriers' replays")  # fmt: skip
        time.sleep(3)  # a late duplicate would show up now
        counts = {t: stack.count(t) for t in plain + evil + held}
        assert counts == {**dict.fromkeys(plain + release, 1), **dict.fromkeys(evil + reject, 0)}
        assert {t: stack.count(t, tag="[차단]") for t in evil} == dict.fromkeys(evil, 1)
        assert {
            t: stack.count(t, to="head@corp.example", tag=REQUEST) for t in held
        } == dict.fromkeys(held, 1)
        released = stack.outer_steps("inbound_released")
        assert len(released) == len(release)  # each decision applied once, replays or not
        assert {e["decided_by"] for e in released} == {"head@corp.example"}
        assert stack.out_carrier.mischief.duplicates + stack.out_carrier.mischief.replays > 0
        states = Counter(h["state"] for h in stack.holds().values())
        assert states == Counter({"released": 3, "dropped": 3})
        # statistics and the mail index group inbound mail by the filter that decided it
        stats = subprocess.run([sys.executable, "-m", "maildiode", "stats", "-c",
                                str(stack.root / "inner.toml"), "--group", "rule", "--format",
                                "csv"], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert "block-evil-domain" in stats.stdout
        assert "hold-quotes" in stats.stdout


def _foreign_policy(root: Path, version: int) -> None:
    """A policy record signed with a key the outer agent does not know, put straight into its
    delivery folder (as a forged bundle on the link would arrive)."""
    key = SigningKey.generate()
    state = root / "forger"
    state.mkdir()
    sender = Sender(state, "outbound", key, FolderTransport(root / "link/out/recv"))
    record = Policy(version=version, made_ms=1, rules=published_text("default_action = 'allow'\n"
                                                                      "default_mask = []", {}, {}))  # fmt: skip
    sender.publish(encode_control(record), b"\x07" * 16, Kind.CONTROL)
    sender.close()


def _stale_policy(root: Path, version: int) -> None:
    """A policy signed with the inner agent's own key and state (the inner agent is stopped),
    older than the one the outer agent holds."""
    from agentkit.links import build_sender
    from agentkit.settings import load_config
    from inner_agent.config import InnerConfig

    config = load_config(root / "inner.toml", InnerConfig)
    assert config.outbound is not None
    sender = build_sender(config.link, config.keys, config.outbound.spool_dir / "link-state",
                          "outbound")  # fmt: skip
    record = Policy(version=version, made_ms=2, rules=published_text("default_action = 'allow'",
                                                                      {}, {}))  # fmt: skip
    sender.publish(encode_control(record), b"\x08" * 16, Kind.CONTROL)
    sender.close()


def _status(root: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "maildiode", "status", "-c",
                             str(root / "inner.toml"), "--json"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _reported_version(root: Path) -> int | None:
    found = _status(root).get("outer_report", {})
    version = found.get("report", {}).get("figures", {}).get("policy_version")
    return version if isinstance(version, int) else None


def test_the_outer_agent_keeps_the_last_good_policy_and_says_which(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    with FilterStack(root, rules=RULES) as stack:
        _policy_in_force(stack)
        # a new version: the rules file changed (the inner agent checks every second)
        (root / "inbound-rules.toml").write_text(RULES.replace("held-", "quote-"),
                                                 encoding="utf-8")  # fmt: skip
        _policy_in_force(stack, 2)
        wait_for(lambda: _reported_version(root) == 2, 30, "status naming version 2")
        # forged: another key (refused by the link before anything is decoded)
        _foreign_policy(root, 9)
        quarantine = root / "outer/spool/link-out/quarantine"
        wait_for(lambda: any("unknown-key" in p.read_text()
                             for p in quarantine.glob("*.reason.json")), 60,
                 "the forged policy refused by the link")  # fmt: skip
        # older: signed by the inner agent's own key, version 1 again
        stack.stack.inner.stop()
        _stale_policy(root, 1)
        wait_for(lambda: [e["code"] for e in stack.outer_steps("policy_refused")] == ["stale"],
                 60, "the stale policy refused")  # fmt: skip
        assert stack.policy_version() == 2
        # enforced across a restart of the outer agent: a blocked domain stays blocked
        applied = len(stack.outer_steps("policy_applied"))
        stack.kill9_outer()
        stack.stack.outer.start(wait_port=stack.stack.ports.smtp)
        stack.stack.inner.start()
        stack.send(["evil-after"], sender="x@evil.example")
        stack.send(["quote-after"])
        wait_for(lambda: stack.count("evil-after", tag="[차단]") == 1, 120, "the block notice")
        wait_for(lambda: stack.count("quote-after", to="head@corp.example", tag=REQUEST) == 1, 120,
                 "the hold under version 2")  # fmt: skip
        assert stack.count("evil-after", tag="[차단]") == 1
        # from what it kept (spool.dir/policy.json), not from the link again
        assert len(stack.outer_steps("policy_applied")) == applied
        wait_for(lambda: _reported_version(root) == 2, 30, "status after the restart")
        text = subprocess.run([sys.executable, "-m", "maildiode", "status", "-c",
                               str(root / "inner.toml")], capture_output=True, text=True,
                              timeout=60).stdout  # fmt: skip
        assert "inbound policy: 2" in text


def test_kill_9_of_either_agent_while_mail_is_held_released_or_rejected(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    with FilterStack(root, rules=RULES, seed=23) as stack:
        _policy_in_force(stack)
        held = [f"held-k{n:02d}" for n in range(10)]
        stack.send(held[:5])
        stack.kill9_outer()  # while the first ones are being filtered and held
        stack.stack.outer.start(wait_port=stack.stack.ports.smtp)
        stack.send(held[5:])
        wait_for(lambda: all(stack.count(t, to="head@corp.example", tag=REQUEST) for t in held), 180,
                 "every held mail's request at its approver")  # fmt: skip
        assert not any(stack.count(t) for t in held)  # none carried before a decision
        release, reject = held[:5], held[5:]
        for token in release[:3] + reject[:3]:
            stack.decide(token, "release" if token in release else "drop")
        stack.stack.inner.kill9()  # decisions stored, perhaps not yet on the link
        stack.stack.inner.start()
        wait_for(lambda: len(stack.outer_steps("inbound_released")) >= 1, 120, "a release")
        stack.kill9_outer()  # while released mail is being rendered and decisions applied
        assert not any(stack.count(t) for t in release[3:] + reject)  # undecided or dropped
        for token in release[3:] + reject[3:]:
            stack.decide(token, "release" if token in release else "drop")
        stack.stack.outer.start(wait_port=stack.stack.ports.smtp)
        wait_for(lambda: all(stack.count(t) for t in release), 180, "every released mail")
        wait_for(lambda: len(stack.outer_steps("inbound_dropped")) >= len(reject), 60, "drops")
        wait_for(lambda: stack.stack.recv_empty() and stack.stack.carrier.idle()
                 and stack.out_carrier.idle(), 60, "the carriers")  # fmt: skip
        time.sleep(3)
        assert {t: stack.count(t) for t in held} == {**dict.fromkeys(release, 1),
                                                     **dict.fromkeys(reject, 0)}  # fmt: skip
        # nothing lost: every held mail has its outcome; nothing decided twice
        outcomes = Counter(e["mail_id"] for e in stack.outer_steps("inbound_released")
                           + stack.outer_steps("inbound_dropped"))  # fmt: skip
        assert len(outcomes) == len(held)
        assert max(outcomes.values()) == 1
        # each release is one the approver made, each drop too
        ids = {token: hold["mail_id"] for token, hold in stack.holds().items()}
        assert {e["mail_id"] for e in stack.outer_steps("inbound_released")} == {
            ids[t] for t in release
        }
        assert {e["mail_id"] for e in stack.outer_steps("inbound_dropped")} == {
            ids[t] for t in reject
        }
        assert not list((root / "outer/spool/held/mail").iterdir())
        # and nothing held twice: one request per mail reached the approver
        assert {
            t: stack.count(t, to="head@corp.example", tag=REQUEST) for t in held
        } == dict.fromkeys(held, 1)


NOTIFYING_RULES = """\
version = 1
default_action = "allow"

[[rule]]
id = "block-evil-domain"
action = "block"
notify = ["recipient", "admin", "sender"]
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "hold-quotes"
action = "hold"
notify = ["admin"]
[[rule.condition]]
field = "subject"
contains = "held-"
"""


def test_an_inbound_rules_notice_reaches_the_people_it_names_in_korean(tmp_path: Path) -> None:
    """Both agents as processes and Postfix inside: a blocked mail's rule tells its recipient
    and the administrator, a held mail's rule the administrator; never the sender outside."""
    from inner_agent.outbound.directory import Directory
    from inner_agent.web.roles import Role

    stack = FilterStack(tmp_path / "stack", rules=NOTIFYING_RULES)
    directory = Directory(stack.root / "inner" / "directory.db")
    directory.accounts.add("admin@corp.example", Role.ADMIN, "admin-password-1")
    directory.close()
    with stack:
        _policy_in_force(stack)
        stack.send(["evil-rule"], sender="spam@mx.evil.example")
        stack.send(["held-rule"])
        tag = "[규칙 알림]"
        wait_for(lambda: stack.count("evil-rule", to="admin@corp.example", tag=tag)
                 and stack.count("evil-rule", tag=tag)
                 and stack.count("held-rule", to="admin@corp.example", tag=tag), 120,
                 "the rules' notices")  # fmt: skip
        notices = [m for m in stack.stack.delivered() if tag in str(m["Subject"])]
        by_rule = Counter(str(m["Subject"]).split(":")[0] for m in notices)
        assert by_rule == Counter({"[규칙 알림] block-evil-domain": 2,
                                   "[규칙 알림] hold-quotes": 1})  # fmt: skip
        blocked = next(m for m in notices if "block-evil-domain" in str(m["Subject"]))
        body = blocked.get_body(("plain",)).get_content()
        assert "수신 규칙 'block-evil-domain'이(가) 외부에서 온 메일을 차단 했습니다." in body
        assert all("evil.example" not in str(m["To"]) for m in notices)
        assert stack.count("held-rule", to="head@corp.example", tag=REQUEST) == 1
        assert stack.count("evil-rule", tag="[차단]") == 1  # the filters' own notice as before
