"""The inbound path on one machine for end-to-end tests and the benchmark: Postfix as the
internal server, both agents as real processes, and a carrier (honest or hostile) between them.
"""

from __future__ import annotations

import os
import random
import smtplib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from agentkit.readonly import query_read_only
from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import AgentProcess, Ports, prepare, wait_for
from tests.support.postfix import PostfixInstance

DOMAIN = "corp.example"
# A notification's header block is a few kilobytes; its Subject is in it.
HEADER_READ_BYTES = 64 << 10


def simple_mail(token: str, *, sender: str = "kim@partner.example", html: bool = False,
                rcpt: str = f"user@{DOMAIN}") -> EmailMessage:  # fmt: skip
    message = EmailMessage()
    message["From"] = f"김철수 <{sender}>"
    message["To"] = rcpt
    message["Subject"] = f"{token} 견적 요청드립니다"
    message["Message-ID"] = f"<{token}@partner.example>"
    text = f"안녕하세요, {token} 건으로 연락드립니다.\n견적서를 보내 주시면 감사하겠습니다.\n"
    message.set_content(text)
    if html:
        message.add_alternative(
            f"<html><body><h1>{token} 뉴스레터</h1><p>{text}</p>"
            "<table border=1><tr><td>품목</td><td>수량</td></tr><tr><td>부품 A</td><td>10</td></tr>"
            "</table><p>" + "내용 " * 200 + "</p></body></html>",
            subtype="html",
        )
    return message


class InboundStack:
    """Postfix + outer agent + carrier + inner agent, in ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        carrier: object | None = None,
        inner: dict[tuple[str, str], str] | None = None,
        outer: dict[tuple[str, str], str] | None = None,
        render_processes: int = 2,
        outbound: bool = False,
    ) -> None:
        """``outbound``: the inner agent also runs its outbound path (intake, approval web on
        ``ports.web``); the caller fills its directory before ``start``."""
        self.root = root
        self.postfix = PostfixInstance(domain=DOMAIN)
        self.ports = Ports(internal=self.postfix.port)
        inner_overrides = {("notify", "our_domains"): f'["{DOMAIN}"]', **(inner or {})}
        outer_overrides = {("render", "processes"): str(render_processes), **(outer or {})}
        prepare(root, self.ports, domains=(DOMAIN,), outbound=outbound, inner=inner_overrides,
                outer=outer_overrides)  # fmt: skip
        self.outer = AgentProcess("outer", root / "outer.toml", root / "outer.log")
        self.inner = AgentProcess("inner", root / "inner.toml", root / "inner.log")
        self.carrier = carrier or Carrier(root / "link/in/send", root / "link/in/recv")
        self._subjects: dict[str, str] = {}  # delivered file name -> its Subject

    def start(self, *, postfix: bool = True) -> InboundStack:
        try:
            if postfix:
                self.postfix.start()
            self.carrier.start()  # type: ignore[attr-defined]
            self.inner.start()
            self.outer.start(wait_port=self.ports.smtp)
        except BaseException:
            self.stop()  # __exit__ does not run when __enter__ fails
            raise
        return self

    def stop(self) -> None:
        try:
            self.outer.stop()
            self.inner.stop()
            self.carrier.stop()  # type: ignore[attr-defined]
        finally:
            self.postfix.close()

    def __enter__(self) -> InboundStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sending and reading ---------------------------------------------------------------

    def send(self, message: EmailMessage, rcpts: list[str] | None = None) -> float:
        """Send through the outer agent's SMTP intake; the time of its 250."""
        with smtplib.SMTP("127.0.0.1", self.ports.smtp, timeout=60) as smtp:
            smtp.send_message(message, "sender@partner.example", rcpts or [f"user@{DOMAIN}"])
        return time.time()

    def delivered(self) -> list[EmailMessage]:
        found = []
        for path in self.postfix.messages():
            found.append(message_from_bytes(path.read_bytes(), policy=policy.default))
        return found  # type: ignore[return-value]

    def tokens(self, prefix: str) -> Counter[str]:
        """How many notifications carry each ``prefix``-token in their Subject.

        Each delivered file's Subject is read once (its header block only) and kept: a file
        in the Maildir's ``new/`` never changes. Parsing every whole notification (pictures
        included) on every poll cost 0.3 s a poll with 40 mails delivered, on the test's own
        CPU and inside every latency it measured."""
        counts: Counter[str] = Counter()
        for path in self.postfix.messages():
            subject = self._subjects.get(path.name)
            if subject is None:
                subject = self._subjects[path.name] = _subject(path)
            for word in subject.split():
                if word.startswith(prefix):
                    counts[word] += 1
        return counts

    def wait_tokens(self, tokens: list[str], prefix: str, timeout_s: float) -> Counter[str]:
        wait_for(lambda: all(self.tokens(prefix)[t] >= 1 for t in tokens), timeout_s,
                 f"{len(tokens)} notifications in the Maildir")  # fmt: skip
        return self.tokens(prefix)

    def queue_stats(self) -> dict[str, int]:
        """Messages per state in the inner agent's queue; {} until the agent has made it.

        Read-only: polling must not create the file (or race the agent creating its tables)."""
        rows = query_read_only(
            self.root / "inner" / "inject.db",
            "SELECT state, COUNT(*), MAX(attempts) FROM messages GROUP BY state",
        )
        stats = {}
        for state, count, attempts in rows:
            stats[state] = count
            stats[f"{state}_max_attempts"] = attempts
        return stats

    def injected_count(self) -> int:
        """Mails whose notification the internal server accepted (the inner agent's audit log:
        a notification sent directly never enters the queue)."""
        rows = query_read_only(
            self.root / "inner" / "audit.db",
            "SELECT COUNT(DISTINCT mail_id) FROM events WHERE step = 'injected'",
        )
        return int(rows[0][0]) if rows else 0

    def link_quarantined(self) -> int:
        folder = self.root / "inner" / "link-quarantine"
        return len(list(folder.glob("*.reason.json"))) if folder.is_dir() else 0

    def recv_empty(self) -> bool:
        return not any((self.root / "link/in/recv").iterdir())


def _subject(path: Path) -> str:
    """The decoded Subject of a delivered message, from its header block alone."""
    with open(path, "rb") as message:
        head = message.read(HEADER_READ_BYTES).replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return str(BytesHeaderParser(policy=policy.default).parsebytes(head)["Subject"])


# --------------------------------------------------------------------------- hostile carrier


@dataclass
class Mischief:
    """What the hostile carrier did, counted."""

    originals: int = 0
    duplicates: int = 0
    replays: int = 0
    truncated: int = 0
    flipped: int = 0
    garbage: int = 0

    @property
    def bad(self) -> int:
        return self.truncated + self.flipped + self.garbage


@dataclass(order=True)
class _Pending:
    due: float
    name: str = field(compare=False)
    data: bytes = field(compare=False)


class HostileCarrier:
    """Carries every file eventually, but duplicates, reorders, delays, replays, and adds
    truncated and bit-flipped copies and garbage files. Deterministic for a given seed."""

    def __init__(self, src: Path, dst: Path, *, seed: int = 4, max_delay_s: float = 1.5,
                 replay_after_s: float = 4.0) -> None:  # fmt: skip
        self.src, self.dst = src, dst
        self.staging = dst.parent / f".{dst.name}-hostile"
        self.staging.mkdir(exist_ok=True)
        self.random = random.Random(seed)
        self.max_delay_s, self.replay_after_s = max_delay_s, replay_after_s
        self.mischief = Mischief()
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-carrier", daemon=True)
        self._names = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)

    def idle(self) -> bool:
        with self._lock:
            return not self._pending and not any(self.src.iterdir())

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._take()
            self._deliver_due()

    def _take(self) -> None:
        for entry in sorted(os.scandir(self.src), key=lambda e: e.name):
            if not entry.is_file():
                continue
            data = Path(entry.path).read_bytes()
            os.unlink(entry.path)
            self._plan(data)

    def _plan(self, data: bytes) -> None:
        now, rnd, m = time.monotonic(), self.random, self.mischief
        plan = [(now + rnd.uniform(0, self.max_delay_s), data)]
        m.originals += 1
        if rnd.random() < 0.3:
            plan.append((now + rnd.uniform(0, self.max_delay_s * 2), data))
            m.duplicates += 1
        if rnd.random() < 0.2:
            plan.append((now + self.replay_after_s + rnd.uniform(0, 2), data))
            m.replays += 1
        if rnd.random() < 0.25 and len(data) > 16:
            plan.append(
                (now + rnd.uniform(0, self.max_delay_s), data[: rnd.randrange(1, len(data))])
            )
            m.truncated += 1
        if rnd.random() < 0.25:
            flipped = bytearray(data)
            position = rnd.randrange(len(flipped))
            flipped[position] ^= 1 << rnd.randrange(8)
            plan.append((now + rnd.uniform(0, self.max_delay_s), bytes(flipped)))
            m.flipped += 1
        if rnd.random() < 0.1:
            plan.append(
                (now + rnd.uniform(0, self.max_delay_s), rnd.randbytes(rnd.randrange(1, 4096)))
            )
            m.garbage += 1
        with self._lock:
            for due, payload in plan:
                self._names += 1
                self._pending.append(_Pending(due, f"h{self._names:06d}.mdc", payload))

    def _deliver_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [p for p in self._pending if p.due <= now]
            self._pending = [p for p in self._pending if p.due > now]
        self.random.shuffle(due)
        for item in due:
            tmp = self.staging / item.name
            tmp.write_bytes(item.data)
            os.rename(tmp, self.dst / item.name)
