"""Shared pieces for the outbound tests: a directory export, a config section in a temp
folder, a settable clock, a recording publisher, an event loop in a thread, and the mail
the done-criteria talk about (a resident registration number in XLSX and HWP attachments)."""

from __future__ import annotations

import asyncio
import atexit
import email.message
import email.policy
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.access import AccessLog
from agentkit.audit import AuditLog
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.scanning import Scanner
from inner_agent.outbound.spool import Spool
from inner_agent.outbound.state import OutboundState
from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret
from inner_agent.outbound.workflow import Outlets, Stores, Workflow
from inner_agent.web.config import ConsoleSection
from maildiode.trial.stack import free_port
from mailsafe.policy import RuleSet, default_rules, load_rules
from tests.support.documents import make_docx, make_hwp, make_mail, make_screenshot, make_xlsx

HR_CSV = """email,name,department,parent_department,role
kim@corp.example,김철수,영업부,경영본부,
lee@corp.example,이영희,영업부,경영본부,head
park@corp.example,박민수,영업부,경영본부,delegate
choi@corp.example,최고위,경영본부,,head
jung@corp.example,정보안,보안팀,경영본부,security-officer
""".encode()

PASSWORDS = {
    "lee@corp.example": "lee-비밀번호-1",
    "park@corp.example": "park-password-2",
    "choi@corp.example": "choi-password-3",
    "jung@corp.example": "jung-password-4",
}

RRN = "800101-1234567"
RRN_MASKED = "800101-1******"


def rrn_mail(sender: str = "kim@corp.example", to: str = "partner@example.com") -> bytes:
    """Body harmless; the resident number only inside an XLSX and an HWP attachment."""
    return make_mail(
        subject="거래처 명단 송부",
        text="요청하신 명단을 첨부합니다.",
        sender=sender,
        to=to,
        attachments=[
            ("명단.xlsx", make_xlsx([["이름", "주민등록번호"], ["홍길동", RRN]])),
            ("명단.hwp", make_hwp(f"홍길동 주민등록번호 {RRN}")),
        ],
    )


EVERYWHERE_RRN = "800101-1234560"  # a valid date and check digit
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def held_mail_everywhere() -> bytes:
    """A resident number in the body, an XLSX, a DOCX and a PNG screenshot (issue 18.3's
    preview test and bench_preview): each part also holds words that must stay readable."""
    message = email.message.EmailMessage()
    message["From"] = "kim@corp.example"
    message["To"] = "partner@example.com"
    message["Subject"] = "고객 자료"
    message.set_content(f"안녕하세요. 자료를 보냅니다.\n주민등록번호 {EVERYWHERE_RRN}\n감사합니다.")
    rows = [["이름", "주민등록번호", "지역"], ["홍길동", EVERYWHERE_RRN, "서울"]]
    message.add_attachment(make_xlsx(rows), maintype="application", subtype=_XLSX.split("/")[1],
                           filename="명단.xlsx")  # fmt: skip
    message.add_attachment(make_docx(f"계약서 초안\n주민등록번호: {EVERYWHERE_RRN}\n서명란"),
                           maintype="application", subtype=_DOCX.split("/")[1],
                           filename="계약.docx")  # fmt: skip
    shot = make_screenshot(["고객 조회 화면", f"주민번호 {EVERYWHERE_RRN}", "주소 서울시 중구"])
    message.add_attachment(shot, maintype="image", subtype="png", filename="화면.png")
    return message.as_bytes(policy=email.policy.SMTP)


def forwarded_list_mail(customers: tuple[tuple[str, str], ...] = (("김고객", RRN),)) -> bytes:
    """A mail forwarded as an attachment (message/rfc822), carrying a customer list XLSX: the
    resident numbers are only in the forwarded mail's attachment."""
    inner = email.message.EmailMessage()
    inner["From"], inner["To"] = "lee@corp.example", "kim@corp.example"
    inner["Subject"] = "고객 명단 정리본"
    inner.set_content("요청하신 고객 명단을 정리했습니다.")
    rows: list[list[object]] = [["고객명", "주민등록번호", "지점"]]
    rows += [[name, number, "강남지점"] for name, number in customers]
    inner.add_attachment(make_xlsx(rows), maintype="application", subtype=_XLSX.split("/")[1],
                         filename="고객명단.xlsx")  # fmt: skip
    outer = email.message.EmailMessage()
    outer["From"], outer["To"] = "kim@corp.example", "partner@example.com"
    outer["Subject"] = "FW: 고객 명단 정리본"
    outer.set_content("아래 메일 전달합니다.")
    outer.add_attachment(inner)
    return outer.as_bytes(policy=email.policy.SMTP)


def plain_mail(sender: str = "kim@corp.example", to: str = "partner@example.com") -> bytes:
    return make_mail(
        subject="회의 일정", text="다음 주 화요일 10시에 뵙겠습니다.", sender=sender, to=to
    )


def make_section(tmp_path: Path, **overrides: Any) -> OutboundSection:
    web_port = free_port()
    document: dict[str, Any] = {
        "listen": f"127.0.0.1:{free_port()}",
        "spool_dir": "outbound",
        "directory_db": "directory.db",
        "poll_s": 0.05,
        "web": {
            "listen": f"127.0.0.1:{web_port}",
            "public_url": f"http://127.0.0.1:{web_port}",
            "secret_key_file": "web.secret",
        },
        "approval": {"remind_after_s": 100, "expire_after_s": 1000, "check_interval_s": 0.05},
        "notice": {"from_address": "approval@corp.example", "internal_smtp": "127.0.0.1:9"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            document[key] = {**document.get(key, {}), **value}
        else:
            document[key] = value
    return OutboundSection.model_validate(document, context={"config_dir": tmp_path})


_TEMPLATE: list[Path] = []


def fill_directory(section: OutboundSection) -> None:
    """The HR export imported and the approvers' passwords set. Hashing with argon2 is slow
    on purpose, so it is done once per test run and the database file copied."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="maildiode-directory-"))
        atexit.register(shutil.rmtree, folder, True)
        directory = Directory(folder / "directory.db")
        directory.import_csv(HR_CSV)
        for email, password in PASSWORDS.items():
            directory.set_password(email, password)
        directory.close()
        _TEMPLATE.append(folder / "directory.db")
    section.directory_db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], section.directory_db)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingPublisher:
    published: list[tuple[bytes, bytes]] = field(default_factory=list)

    def publish(self, bundle: bytes, bundle_id: bytes) -> int:
        self.published.append((bundle, bundle_id))
        return len(self.published)


class MemoryAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, mail_id: str, step: str, **fields: Any) -> None:
        self.events.append((mail_id, step, fields))

    def steps(self, mail_id: str | None = None) -> list[str]:
        return [s for m, s, _ in self.events if mail_id is None or m == mail_id]


@dataclass
class Parts:
    workflow: Workflow
    state: OutboundState
    directory: Directory
    spool: Spool
    publisher: RecordingPublisher
    audit: MemoryAudit
    clock: Clock
    secret: bytes
    section: OutboundSection


def build_workflow(
    tmp_path: Path,
    *,
    reader: Any = None,
    rules: RuleSet | None = None,
    previewer: Any = None,
    **overrides: Any,
) -> Parts:
    """The workflow on a fresh directory; rules as given, else from ``rules_file``, else the
    built-in ones; held mails drawn by ``previewer`` (none: the scan's text as one picture)."""
    section = make_section(tmp_path, **overrides)
    fill_directory(section)
    clock, publisher, audit = Clock(), RecordingPublisher(), MemoryAudit()
    spool = Spool(section.spool_dir)
    state = OutboundState(section.spool_dir / "state.db", clock=clock)
    directory = Directory(section.directory_db)
    secret = load_or_create_secret(section.web.secret_key_file)
    if rules is None:
        rules = load_rules(section.rules_file) if section.rules_file else default_rules()
    workflow = Workflow(
        section,
        Stores(spool, state, directory),
        Outlets(audit, publisher),
        scanner=Scanner(rules, reader),
        signer=TokenSigner(secret),
        clock=clock,
        previewer=previewer,
    )
    return Parts(workflow, state, directory, spool, publisher, audit, clock, secret, section)


def approval_app(parts: Parts, section: OutboundSection | None = None) -> Any:
    """The web listener's app with the approval pages over ``parts`` (its directory, clock
    and audit), as the service builds it; ``section`` from ``make_section`` in the same folder
    by default. Access records go to a real audit store beside it (``access_log(parts)``),
    so they can be queried; everything else to ``parts.audit``."""
    from inner_agent.outbound.web import create_app

    return create_app(parts.workflow.desk, listener_for(parts, section))


def listener_for(parts: Parts, section: OutboundSection | None = None,
                 console: ConsoleSection | None = None) -> Any:  # fmt: skip
    """The web listener's parts (sign-in, gate, stores, access log) over ``parts``, the
    console reading the audit store of ``access_log(parts)``, the outbound state of
    ``parts`` and the state folder ``inner`` beside them."""
    from inner_agent.console.data import ConsoleData
    from inner_agent.console.places import ConsolePlaces
    from inner_agent.webproc.site import build_listener

    section = section or parts.section
    console = console or ConsoleSection()
    access = access_log(parts)
    places = ConsolePlaces(audit_path=access.path, state_dir=section.spool_dir.parent / "inner",
                           outbound_state=parts.section.spool_dir / "state.db")  # fmt: skip
    data = ConsoleData(places, zone=console.zone, language=console.language, clock=parts.clock)
    return build_listener(section, console, parts.directory, parts.audit, access,
                          secret=parts.secret, clock=parts.clock, data=data,
                          on_csrf_refusal=parts.workflow.desk.note_csrf_refusal)  # fmt: skip


def access_log(parts: Parts) -> AccessLog:
    """The access records of ``parts``' site: ``audit.db`` in its folder, on its clock."""
    path = parts.section.spool_dir.parent / "audit.db"
    return AccessLog(AuditLog(path, agent="inner", clock=parts.clock), path, ConsoleSection().zone)


class LoopThread:
    """An asyncio loop in a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# ------------------------------------------------------------------------ end-to-end pieces


@dataclass
class Captured:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


class MailSink:
    """An aiosmtpd server on loopback that keeps every message exactly as received."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[Captured] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Captured(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 OK"

    def to(self, rcpt: str) -> list[Captured]:
        return [m for m in self.received if rcpt in m.rcpt_to]

    def subjects_to(self, rcpt: str) -> list[str]:
        import email
        import email.policy

        return [
            str(email.message_from_bytes(m.data, policy=email.policy.default)["Subject"])
            for m in self.to(rcpt)
        ]

    def stop(self) -> None:
        self._controller.stop()


def wait_for(condition: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def approval_link(data: bytes) -> str:
    """The approve link in an approval request mail (from its plain-text part)."""
    import email
    import email.policy
    import re

    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"승인: (\S+)", text).group(1)


@dataclass
class RunningOutbound:
    service: Any
    loop: LoopThread
    section: OutboundSection
    internal: MailSink  # the internal mail server the notices go through
    web_url: str
    smtp_port: int

    def stop(self) -> None:
        # A stop may wait STOP_TIMEOUT_S for a web process caught starting, and a loaded
        # machine slows every step: give it room so a slow stop is not a failed test.
        self.loop.call(self.service.stop(), timeout=90)
        self.loop.close()
        self.internal.stop()


def start_outbound(
    tmp_path: Path,
    *,
    config: Any = None,
    publisher: Any = None,
    audit: Any = None,
    internal: MailSink | None = None,
    fence: Any = None,
    lease: Any = None,
    **overrides: Any,
) -> RunningOutbound:
    """The whole OutboundService (SMTP intake, web, worker) in a loop thread. The audit log
    is a file unless one is given (``audit.db`` in ``tmp_path``), so the web listener runs in
    its own process as in the agent. ``fence``: the state's lease (``SwitchableFence``);
    ``lease``: its terms (agentkit.lease.Terms), for the web process's role and fence."""
    from types import SimpleNamespace

    from inner_agent.outbound.service import OutboundService

    internal = internal or MailSink()
    notice = {
        "internal_smtp": f"127.0.0.1:{internal.port}",
        "retry_s": 0.2,
        **overrides.pop("notice", {}),
    }
    section = make_section(tmp_path, notice=notice, **overrides)
    fill_directory(section)
    if config is None:
        config = SimpleNamespace(outbound=section)
    else:
        config.outbound = section
    audit = audit or AuditLog(tmp_path / "audit.db", agent="inner")
    service = OutboundService(config, audit, publisher=publisher, fence=fence, lease=lease)
    loop = LoopThread()
    loop.call(service.start())
    return RunningOutbound(
        service, loop, section, internal, f"http://127.0.0.1:{service.web_port}", service.smtp.port
    )


class SwitchableFence:
    """A lease keeper's fence a test closes: raises FenceClosed once ``close`` was called."""

    def __init__(self) -> None:
        self.why: str | None = None

    def close(self, why: str) -> None:
        self.why = why

    def __call__(self) -> None:
        from agentkit.leasekeeper import FenceClosed

        if self.why is not None:
            raise FenceClosed(self.why)
