"""The receive filters' end-to-end stack (issue 17): an InboundStack with the out link carried
(hostile too, so the policy and the decisions cross it), the directory filled, and the inbound
rules of a file, or the built-in ones.

    with FilterStack(root, rules=RULES) as stack:      # rules=None: the built-in rules
        stack.wait_policy(1)                           # the outer agent enforces version 1
        stack.send(["held-01"]); stack.count("held-01", to=..., tag=REQUEST)
        stack.use_rules(OTHER)                         # the inner agent restarted on a file
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentkit.readonly import query_read_only
from inner_agent.outbound.directory import Directory
from maildiode.trial.stack import port_open, wait_for
from tests.support.inbound import HostileCarrier, InboundStack, simple_mail

__all__ = ["HR", "NOTICE_TAGS", "REPORT_S", "REQUEST", "FilterStack"]

HR = """email,name,department,role
user@corp.example,사용자,영업팀,
head@corp.example,부서장,영업팀,head
"""
REPORT_S = 2
REQUEST = "[수신 승인 요청]"  # the approver's copy of a held mail
NOTICE_TAGS = ("[차단]", REQUEST, "[보류 만료]", "[규칙 알림]")
RULES_FILE = "inbound-rules.toml"


class FilterStack:
    """An InboundStack with the out link carried (hostile too), the directory filled and the
    receive filters on: the rules of ``rules`` (a file's text), or the built-in rules."""

    def __init__(
        self,
        root: Path,
        *,
        rules: str | None,
        seed: int = 11,
        outer: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.root = root
        (root / "link/in").mkdir(parents=True)
        (root / "link/out").mkdir(parents=True)
        carrier = HostileCarrier(root / "link/in/send", root / "link/in/recv", seed=seed)
        self.stack = InboundStack(root, carrier=carrier, outbound=True,
                                  outer={("report", "interval_s"): str(REPORT_S),
                                         **(outer or {})})  # fmt: skip
        (root / "link/out/send").mkdir(exist_ok=True)
        self.out_carrier = HostileCarrier(root / "link/out/send", root / "link/out/recv",
                                          seed=seed + 1)  # fmt: skip
        inbound = "\n[inbound]\ncheck_s = 1\n"
        if rules is not None:
            (root / RULES_FILE).write_text(rules, encoding="utf-8")
            inbound += f'rules_file = "{RULES_FILE}"\n'
        inner = root / "inner.toml"
        inner.write_text(inner.read_text(encoding="utf-8") + inbound, encoding="utf-8")
        outer = root / "outer.toml"
        outer.write_text(outer.read_text(encoding="utf-8").replace("check_s = 30", "check_s = 1"),
                         encoding="utf-8")  # fmt: skip
        directory = Directory(root / "inner" / "directory.db")
        directory.import_csv(HR.encode())
        directory.close()

    def __enter__(self) -> FilterStack:
        self.out_carrier.start()
        self.stack.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.stop()
        finally:
            self.out_carrier.stop()

    def use_rules(self, rules: str) -> None:
        """The inner agent restarted on a rules file holding ``rules`` (from the built-in
        rules, or another file); it publishes the next version."""
        self.stack.inner.stop()
        (self.root / RULES_FILE).write_text(rules, encoding="utf-8")
        inner = self.root / "inner.toml"
        text = inner.read_text(encoding="utf-8")
        if f'\nrules_file = "{RULES_FILE}"' not in text:  # (the example's line is a comment)
            text = text.replace("\n[inbound]\n", f'\n[inbound]\nrules_file = "{RULES_FILE}"\n')
        inner.write_text(text, encoding="utf-8")
        self.stack.inner.start()

    # -- the mail path ---------------------------------------------------------------------

    def send(self, tokens: list[str], sender: str = "kim@partner.example") -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.stack.send, [simple_mail(t, sender=sender) for t in tokens]))

    def notifications(self) -> list[tuple[str, str]]:
        return [(str(m["To"]), str(m["Subject"])) for m in self.stack.delivered()]

    def count(self, token: str, *, to: str = "user@corp.example", tag: str | None = None) -> int:
        """Notifications to ``to`` about ``token``: with ``tag`` in the subject, or (without)
        the mail itself, carried (no notice of the filters')."""
        return sum(1 for rcpt, subject in self.notifications()
                   if rcpt == to and token in subject.split()
                   and (tag in subject if tag else not any(t in subject for t in NOTICE_TAGS)))  # fmt: skip

    # -- the agents' records ---------------------------------------------------------------

    def outer_steps(self, step: str) -> list[dict[str, Any]]:
        rows = query_read_only(self.root / "outer" / "audit.db",
                               "SELECT mail_id, details FROM events WHERE step = ?", (step,))  # fmt: skip
        return [{"mail_id": m, **json.loads(d)} for m, d in rows]

    def policy_version(self) -> int:
        applied = [e["version"] for e in self.outer_steps("policy_applied")]
        return max(applied, default=0)

    def wait_policy(self, version: int = 1) -> None:
        wait_for(lambda: self.policy_version() >= version, 120,
                 f"policy {version} at the outer agent")  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "maildiode", *args, "-c",
                               str(self.root / "inner.toml")],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def holds(self) -> dict[str, dict[str, Any]]:
        """Held mails by their subject's token, as ``maildiode inbound list`` shows them."""
        result = self.cli("inbound", "list", "--state", "all", "--json")
        found = [json.loads(line) for line in result.stdout.splitlines()]
        return {h["subject"].split()[0]: h for h in found}

    def decide(self, token: str, verdict: str) -> subprocess.CompletedProcess[str]:
        mail_id = self.holds()[token]["mail_id"]
        return subprocess.run([sys.executable, "-m", "maildiode", "inbound", "decide", "-c",
                               str(self.root / "inner.toml"), mail_id, verdict, "--by",
                               "head@corp.example"], capture_output=True, text=True, timeout=60)  # fmt: skip

    def kill9_outer(self) -> None:
        self.stack.outer.kill9()
        wait_for(lambda: not port_open(self.stack.ports.smtp), 30, "the acceptors to exit")
