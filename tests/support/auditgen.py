"""A generated audit store: both agents' events for mails in both directions, Korean subjects.

For the console benchmark (1,000,000 events) and the tests that check the index against a
fold of every event. Deterministic per seed. The events are what the agents record (the
steps and detail keys of outer_agent and inner_agent, subjects already masked as the inner
agent masks them), about eight per mail: inbound mails are received, rendered and published
by the outer agent and received inside and injected by the inner one, a few quarantined or
deferred; outbound mails are accepted and scanned inside, mostly allowed, some monitored,
held (then approved, rejected or expired) or blocked, then received and delivered (or
deferred, or bounced) by the outer agent. The outer agent's events carry agent "outer", as
the status report imports them.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog

START = 1_732_982_400.0  # 2024-11-30T16:00:00Z
SPAN_S = 2 * 365 * 86400  # two years of mail
WORDS = (
    "견적서 계약서 회의록 보고서 납품 검토 요청 송부 안내 일정 변경 확인 결재 승인 자료 제출 "
    "공지 세금계산서 발주서 제안서 프로젝트 분기 실적 예산 인사 교육 출장 휴가 신청 급여 "
    "명세서 감사 보안 점검 정산 입찰 공문 협조 회신 긴급 참고"
).split()
PREFIXES = ("", "", "", "Re: ", "RE: ", "Fwd: ", "[공지] ", "[긴급] ", "[외부] ")
DEPARTMENTS = ("영업부", "인사부", "재무부", "법무팀", "개발1팀", "개발2팀", "구매팀", "감사실",
               "총무팀", "마케팅팀", "고객지원팀", "경영기획실")  # fmt: skip
ATTACHMENTS = ("견적서.pdf", "계약서.docx", "회의록.hwp", "실적보고.xlsx", "발주서.pdf",
               "사진.jpg", "제안서.pptx", "명세서.pdf", "setup.exe", "자료.zip")  # fmt: skip
RULES = ("rrn-hold", "card-block", "bulk-monitor", "account-hold", "passport-hold")
QUARANTINE = ("spool_corrupt", "not_displayable", "bad_signature", "image_decode")
OUR_DOMAIN = "corp.example"
SEED = 16  # the benchmark's store


class World:
    """The people and domains mail goes between."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.domains = [f"partner{n}.example" for n in range(300)]
        self.outsiders = [f"user{n}@{rng.choice(self.domains)}" for n in range(5000)]
        self.employees = [(f"emp{n}@{OUR_DOMAIN}", rng.choice(DEPARTMENTS)) for n in range(2000)]

    def subject(self) -> str:
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(2, 6)))
        tail = " (주민번호 900101-1******)" if self.rng.random() < 0.02 else ""
        return f"{self.rng.choice(PREFIXES)}{words} {self.rng.randint(1, 999)}{tail}"

    def attachments(self) -> list[str]:
        return self.rng.sample(ATTACHMENTS, k=self.rng.choice((0, 0, 1, 1, 1, 2, 3)))

    def client(self) -> str:
        return f"203.0.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"


Event = tuple[float, str, str, str, dict[str, Any]]  # ts, agent, mail id, step, details


def inbound(world: World, mail_id: str, ts: float) -> list[Event]:
    rng = world.rng
    sender = rng.choice(world.outsiders)
    # a team address reaches several people: one notification (and "injected") for each
    rcpts = sorted(
        {rng.choice(world.employees)[0] for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6)))}
    )
    size = rng.randint(3_000, 2_000_000)
    client = world.client()
    events: list[Event] = [
        (ts, "outer", mail_id, "received", {"bundle_id": mail_id, "mail_from": sender,
         "rcpts": rcpts, "rcpt_count": len(rcpts), "bytes": size, "client": client,
         "helo": "mx.partner.example", "tls": True}),
    ]  # fmt: skip
    if rng.random() < 0.02:
        events.append((ts + 2, "outer", mail_id, "quarantined",
                       {"reason": rng.choice(QUARANTINE), "detail": "render policy"}))  # fmt: skip
        return events
    events += [
        (ts + 2, "outer", mail_id, "rendered", {"status": "rendered", "reason": None,
         "pages": rng.randint(1, 6), "bytes": size // 3, "render_ms": 900.0}),
        (ts + 3, "outer", mail_id, "published", {"bundle_id": mail_id, "seq": 1,
         "bytes": size // 3, "latency_ms": 3000.0}),
    ]  # fmt: skip
    names = world.attachments()
    withheld = [{"name": n, "type": "application/octet-stream", "size": 1000, "reason": "type"}
                for n in names if n.endswith((".exe", ".zip"))]  # fmt: skip
    rendered = [n for n in names if not n.endswith((".exe", ".zip"))]
    events.append((ts + 5, "inner", mail_id, "received_inside", {
        "bundle_id": mail_id, "seq": 1, "status": "rendered", "pages": 2, "notifications": 1,
        "rcpt_count": len(rcpts), "bytes": size // 3, "link_s": 1.5, "build_s": 0.2,
        "from": sender, "subject": world.subject(), "message_id": f"<{mail_id}@partner>",
        "date": "", "mail_from": sender, "client": client, "rcpts": rcpts, "auth": "pass",
        "withheld": withheld, "withheld_count": len(withheld), "attachments": rendered,
        "attachment_count": len(names)}))  # fmt: skip
    if rng.random() < 0.08:
        events.append((ts + 6, "inner", mail_id, "deferred", {"part": 1, "error": "451 busy",
                       "retry_in_s": 60}))  # fmt: skip
    events += [(ts + 70 + part, "inner", mail_id, "injected", {"part": part, "rcpt_count": 1,
                "reply": "250 2.0.0 Ok", "attempts": 1, "queued_s": 0.1, "send_s": 0.05})
               for part in range(1, len(rcpts) + 1)]  # fmt: skip
    return events


def outbound(world: World, mail_id: str, ts: float) -> list[Event]:
    rng = world.rng
    sender, department = rng.choice(world.employees)
    rcpts = sorted({rng.choice(world.outsiders) for _ in range(rng.choice((1, 1, 2, 3)))})
    names = world.attachments()
    events: list[Event] = [
        (ts, "inner", mail_id, "accepted_outbound", {"mail_from": sender, "rcpts": rcpts,
         "rcpt_count": len(rcpts), "client": f"10.1.{rng.randint(0, 20)}.{rng.randint(1, 254)}"}),
    ]  # fmt: skip
    verdict = rng.random()
    rule = rng.choice(RULES) if verdict >= 0.80 else None
    events.append((ts + 1, "inner", mail_id, "scanned", {"subject": world.subject(),
                   "action": "allow", "rule": rule, "findings": 0, "counts": {},
                   "department": department, "unreadable": [], "ms": 40.0,
                   "attachments": names, "attachment_count": len(names),
                   "bytes": rng.randint(2_000, 5_000_000)}))  # fmt: skip
    if verdict < 0.80:
        events.append((ts + 1, "inner", mail_id, "allowed", {"rule": None}))
    elif verdict < 0.85:
        events.append((ts + 1, "inner", mail_id, "monitored", {"rule": rule}))
    elif verdict < 0.95:
        return events + held(world, mail_id, ts, rule)
    else:
        events += [(ts + 1, "inner", mail_id, "blocked", {"rule": rule, "explanation": "카드번호"}),
                   (ts + 2, "inner", mail_id, "sender_notified", {"outcome": "blocked"})]  # fmt: skip
        return events
    return events + sent(world, mail_id, ts + 3)


def held(world: World, mail_id: str, ts: float, rule: str | None) -> list[Event]:
    rng = world.rng
    request = f"r{mail_id[:8]}"
    events: list[Event] = [
        (ts + 1, "inner", mail_id, "held", {"request_id": request, "rule": rule}),
        (ts + 1, "inner", mail_id, "approval_requested", {"request_id": request,
         "approvers": ["boss@corp.example"]}),
        (ts + 2, "inner", mail_id, "sender_notified", {"outcome": "held"}),
    ]  # fmt: skip
    decided = ts + rng.randint(600, 30_000)
    if rng.random() < 0.3:
        events.append((ts + 3600, "inner", mail_id, "reminded", {"request_id": request,
                       "approvers": ["boss@corp.example"]}))  # fmt: skip
    fate = rng.random()
    step = "approved" if fate < 0.7 else "rejected" if fate < 0.9 else "expired"
    events += [(decided, "inner", mail_id, step, {"request_id": request, "by": "boss@corp.example"}),
               (decided + 1, "inner", mail_id, "sender_notified", {"outcome": step})]  # fmt: skip
    return events + (sent(world, mail_id, decided + 2) if step == "approved" else [])


def sent(world: World, mail_id: str, ts: float) -> list[Event]:
    rng = world.rng
    size = rng.randint(2_000, 5_000_000)
    events: list[Event] = [
        (ts, "inner", mail_id, "sent_out", {"seq": 1, "bytes": size, "decided_by": "policy"}),
        (ts + 2, "outer", mail_id, "received_outbound", {"bundle_id": mail_id, "seq": 1,
         "rcpt_count": 1, "bytes": size, "decided_by": "policy"}),
    ]  # fmt: skip
    fate = rng.random()
    if fate < 0.05:
        events.append((ts + 3, "outer", mail_id, "delivery_deferred", {"rcpt": ["x"],
                       "error": "451 greylisted", "next_try": ts + 300, "attempts": 1}))  # fmt: skip
    if fate < 0.98:
        events.append((ts + 4 + (300 if fate < 0.05 else 0), "outer", mail_id, "delivered",
                       {"rcpt": ["x"], "attempts": 1, "ms": 120.0}))  # fmt: skip
    else:
        events.append((ts + 4, "outer", mail_id, "bounced", {"rcpt": ["x"],
                       "reasons": ["550 no such user"], "notice": True}))  # fmt: skip
    return events


def mails(seed: int) -> Iterator[list[Event]]:
    """Endless mails, each as its events, in time order of their intake."""
    rng = random.Random(seed)
    world = World(rng)
    ts = START
    while True:
        ts += rng.expovariate(1 / 500.0)  # one mail every ~8 minutes, ~125,000 over two years
        mail_id = f"{rng.getrandbits(128):032x}"
        yield (inbound if rng.random() < 0.55 else outbound)(world, mail_id, ts)
        if rng.random() < 0.01:
            yield [(ts, "inner", "-", "link_refused", {"reason": "bad_signature", "refused": 3})]


def events(count: int, seed: int = SEED) -> list[Event]:
    """``count`` events of whole mails (the last mail cut), ordered by time as recorded."""
    found: list[Event] = []
    for mail in mails(seed):
        found += mail
        if len(found) >= count:
            break
    found.sort(key=lambda e: e[0])
    return found[:count]


def build_store(path: Path, count: int, seed: int = SEED) -> int:
    """An audit log at ``path`` with ``count`` generated events; returns the count."""
    AuditLog(path).close()  # the schema, as the agents create it
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # a benchmark's scratch store
        db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the mail-id index is written at random
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (ts, agent, mail_id, step, details) VALUES (?, ?, ?, ?, ?)",
            ((ts, agent, mail_id, step, json.dumps(details, ensure_ascii=False, sort_keys=True))
             for ts, agent, mail_id, step, details in events(count, seed)),
        )  # fmt: skip
        db.execute("COMMIT")
    finally:
        db.close()
    return count
