"""High availability on one machine (issue 23.5): the inbound stack of tests.support.inbound with
a standby inner agent on the same state folder, and senders that retry like MTAs across every
outer agent's port (the MX records of equal priority).

``HaStack(root, outer_agents=2)`` adds the second outer agent of tests.support.streams (``mx2``:
its own stream id, key, spool, SMTP port and folder pair with its carriers, and its
``[[streams.outer]]`` entry in inner.toml, which the standby's copy of the file shares), so the
senders spread over two MX ports. ``RetryingSenders`` records which port gave each 250.
"""

from __future__ import annotations

import random
import smtplib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import AgentProcess, free_port, set_key
from tests.support.inbound import DOMAIN, InboundStack, simple_mail
from tests.support.streams import MX2, add_mx2, carriers, mx2_process

# The standby's lease: short, so a takeover fits in a test; docs/operations.md has the default.
TEST_TTL_S = 3.0
# A sender retries a refused or failed attempt after this long (an MTA waits minutes; the
# test cannot), at the next MX.
SENDER_RETRY_S = 0.5
# A mail a sender could not hand over in this long counts as not accepted (never 250).
SENDER_GIVE_UP_S = 60.0
# The inner agent moves approved outbound mail off a stale outer agent after this long (D75);
# the HA stack has no outbound path, so only the key's presence matters.
STREAM_TAKEOVER_S = 3.0


def ha_overrides(holder: str, ttl_s: float) -> dict[tuple[str, str], str]:
    """The inner agent's settings for a lease test: its holder name, a short TTL, and quick
    retries towards the internal server (the workers wait 1 s, not 10 s, after a refusal)."""
    return {
        ("lease", "holder"): f'"{holder}"',
        ("lease", "ttl_s"): str(ttl_s),
        ("inject", "retry_initial_s"): "1",
        ("inject", "retry_max_s"): "1",
    }


class HaStack:
    """Postfix, the outer agent(s), the carrier(s), an active inner agent (``inner-a``) and a
    standby (``inner-b``, started with ``--standby``) on the same state folder."""

    def __init__(
        self,
        root: Path,
        *,
        ttl_s: float = TEST_TTL_S,
        outer_agents: int = 1,
        outbound: bool = False,
    ) -> None:
        """``outer_agents``: 1 (the pair's outer agent) or 2 (and ``mx2``, ``self.mx2``).
        ``outbound``: both inner agents also run the outbound path, on the same addresses (as
        on one host); the caller fills its directory before ``start``."""
        if outer_agents not in (1, 2):
            raise ValueError(f"HaStack: outer_agents is {outer_agents}; 1 or 2 are built")
        self.root = root
        self.ttl_s = ttl_s
        self.base = InboundStack(root, inner=ha_overrides("inner-a", ttl_s), outbound=outbound)
        self.outers = [self.base.outer]
        self.mx_ports = [self.base.ports.smtp]
        self.mx2: AgentProcess | None = None
        self.mx2_carriers: dict[str, Carrier] = {}
        if outer_agents == 2:
            self.mx2_port = free_port()
            add_mx2(root, self.mx2_port, takeover_after_s=STREAM_TAKEOVER_S)
            self.mx2 = mx2_process(root)
            self.mx2_carriers = carriers(root, f"{MX2}/")
            self.outers.append(self.mx2)
            self.mx_ports.append(self.mx2_port)
        text = (root / "inner.toml").read_text(encoding="utf-8")
        (root / "inner-b.toml").write_text(set_key(text, "lease", "holder", '"inner-b"'))
        self.active = self.base.inner
        self.standby = AgentProcess("inner", root / "inner-b.toml", root / "inner-b.log",
                                    args=("--standby",))  # fmt: skip

    def start(self, *, standby: bool = True) -> HaStack:
        self.base.start()
        try:
            if self.mx2 is not None:
                for carrier in self.mx2_carriers.values():
                    carrier.start()
                self.start_mx2()
            if standby:
                self.start_standby()
        except BaseException:
            self.stop()
            raise
        return self

    def start_mx2(self) -> None:
        """The second outer agent; again after a kill -9, as its host coming back (its spool
        is where it was)."""
        assert self.mx2 is not None, "a stack of one outer agent has no mx2"
        self.mx2.start(wait_port=self.mx2_port)

    def start_standby(self) -> None:
        self.standby.start()
        wait_for_log(self.root / "inner-b.log", "standby: the state is held by inner-a", 30)

    def stop(self) -> None:
        try:
            if self.mx2 is not None:
                self.mx2.stop()
            for carrier in self.mx2_carriers.values():
                carrier.stop()
            self.standby.stop()
        finally:
            self.base.stop()

    def __enter__(self) -> HaStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_log(path: Path, text: str, timeout_s: float) -> float:
    """Wait until ``text`` appears in the log at ``path``; the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return time.monotonic() - started
        time.sleep(0.1)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"
    raise AssertionError(f"{text!r} not in {path} after {timeout_s} s; its end:\n{tail}")


@dataclass
class SenderCounts:
    """What the senders were told: tokens answered 250, and attempts that failed first."""

    accepted: list[str] = field(default_factory=list)
    accepted_at: dict[str, int] = field(default_factory=dict)  # token -> the port that said 250
    gave_up: list[str] = field(default_factory=list)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class RetryingSenders:
    """``senders`` threads, each sending one mail every ``interval_s`` until stopped, to the MX
    ports in turn; a connection error or a 4xx is retried at the next port after a pause, as an
    MTA's queue would. Each mail's token (in its Subject) is counted once it got a 250."""

    def __init__(self, mx_ports: list[int], *, senders: int = 2, interval_s: float = 0.5) -> None:
        self.mx_ports = mx_ports
        self.interval_s = interval_s
        self.counts = SenderCounts()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_steadily, args=(n,), name=f"sender-{n}")
            for n in range(senders)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> SenderCounts:
        self._stop.set()
        for thread in self._threads:
            thread.join(SENDER_GIVE_UP_S + 10)
        return self.counts

    def _send_steadily(self, sender: int) -> None:
        rotation = random.Random(sender)
        number = 0
        while not self._stop.is_set():
            number += 1
            token = f"HA{sender}x{number:04d}"
            self._hand_over(token, rotation.randrange(len(self.mx_ports)))
            self._stop.wait(self.interval_s)

    def _hand_over(self, token: str, first_port: int) -> None:
        message = simple_mail(token, sender=f"s{token}@partner.example")
        deadline = time.monotonic() + SENDER_GIVE_UP_S
        attempt = 0
        while time.monotonic() < deadline:
            port = self.mx_ports[(first_port + attempt) % len(self.mx_ports)]
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                    smtp.send_message(message, "sender@partner.example", [f"user@{DOMAIN}"])
            except (OSError, smtplib.SMTPException) as exc:
                if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
                    break  # refused for good: never counted as accepted
                attempt += 1
                with self.counts.lock:
                    self.counts.retries += 1
                time.sleep(SENDER_RETRY_S)
                continue
            with self.counts.lock:
                self.counts.accepted.append(token)
                self.counts.accepted_at[token] = port
            return
        with self.counts.lock:
            self.counts.gave_up.append(token)


def delivery_counts(stack: HaStack, accepted: list[str]) -> tuple[list[str], Counter[str]]:
    """The accepted tokens not delivered, and how often each delivered token was."""
    delivered = stack.base.tokens("HA")
    lost = [token for token in accepted if delivered[token] == 0]
    return lost, delivered
