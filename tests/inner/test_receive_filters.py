"""The receive filters inside: the policy published outward (versions that only grow, across
restarts and crashes), held previews routed to approvers, decisions stored once and sent."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit.control import Decision, Policy, decode_control
from inner_agent.bundle_handler import BundleHandler
from inner_agent.inbound.approvers import approvers_for
from inner_agent.inbound.arrivals import HeldArrivals
from inner_agent.inbound.config import InboundSection
from inner_agent.inbound.errors import HoldRefused, PolicyStateError
from inner_agent.inbound.holds import HoldBook
from inner_agent.inbound.outward import InboundOutward
from inner_agent.inbound.policy import PolicyPublisher
from inner_agent.notify import NotifyOptions, build_notifications
from inner_agent.outbound.directory import Directory
from mailsafe.inbound_filter import parse_published
from mailsafe.payload import InboundMark, Masked, encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import checked, make_handler, rendered

HR = """email,name,department,role
user@corp.example,User,영업팀,
head@corp.example,Head,영업팀,head
deputy@corp.example,Deputy,영업팀,delegate
loan@corp.example,Loan,여신심사팀,
boss@corp.example,Boss,여신심사팀,head
sec@corp.example,Sec,보안팀,security-officer
"""

RULES = """
version = 1
[groups]
"임원" = ["ceo@corp.example", "여신심사팀"]

[[rule]]
id = "hold-sales"
action = "hold"
scope = "departments"
departments = ["영업팀"]

[[rule]]
id = "watch-executives"
action = "monitor"
scope = "groups"
groups = ["임원"]
"""


class LinkRecorder:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, bytes, Kind]] = []
        self.fail = False

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        if self.fail:
            raise OSError("link folder gone")
        for seq, (_, known, _) in enumerate(self.published, 1):
            if known == bundle_id:
                return seq
        self.published.append((bundle, bundle_id, kind))
        return len(self.published)


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, mail_id: str, step: str, **fields: Any) -> None:
        self.events.append((mail_id, step, fields))

    def steps(self) -> list[str]:
        return [step for _, step, _ in self.events]


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    directory = Directory(tmp_path / "directory.db")
    directory.import_csv(HR.encode())
    return directory


def publisher(tmp_path: Path, directory: Directory, link: LinkRecorder,
              audit: Events | None = None) -> PolicyPublisher:  # fmt: skip
    section = InboundSection(rules_file=tmp_path / "inbound-rules.toml")
    return PolicyPublisher(section, directory, tmp_path / "inbound-policy.json", link,
                           audit or Events())  # fmt: skip


def policies(link: LinkRecorder) -> list[Policy]:
    found = [decode_control(bundle, "outbound") for bundle, _, _ in link.published]
    return [p for p in found if isinstance(p, Policy)]


def test_the_policy_is_published_with_its_scopes_resolved(tmp_path: Path, directory: Directory) -> None:  # fmt: skip
    (tmp_path / "inbound-rules.toml").write_text(RULES, encoding="utf-8")
    link = LinkRecorder()
    publisher(tmp_path, directory, link).check()
    (policy,) = policies(link)
    assert policy.version == 1
    assert link.published[0][2] == Kind.CONTROL
    rules = parse_published(policy.rules, policy.version)
    assert rules.resolved is not None
    assert rules.resolved.departments == {"영업팀": ["deputy@corp.example", "head@corp.example",
                                                    "user@corp.example"]}  # fmt: skip
    assert rules.resolved.groups == {"임원": ["boss@corp.example", "ceo@corp.example",
                                              "loan@corp.example"]}  # fmt: skip
    assert RULES.strip() in policy.rules  # the administrator's text, comments and all


def test_versions_grow_with_every_change_and_across_restarts(tmp_path: Path, directory: Directory) -> None:  # fmt: skip
    rules = tmp_path / "inbound-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    link = LinkRecorder()
    publisher(tmp_path, directory, link).check()
    publisher(tmp_path, directory, link).check()  # a restart, nothing changed: nothing new
    assert [p.version for p in policies(link)] == [1]
    rules.write_text(RULES + "\n# a comment is a change too\n", encoding="utf-8")
    publisher(tmp_path, directory, link).check()
    directory.import_csv((HR + "new@corp.example,New,영업팀,\n").encode())  # who is in it
    publisher(tmp_path, directory, link).check()
    assert [p.version for p in policies(link)] == [1, 2, 3]


def test_a_crash_before_the_link_took_it_sends_the_same_version_byte_for_byte(
    tmp_path: Path, directory: Directory
) -> None:
    (tmp_path / "inbound-rules.toml").write_text(RULES, encoding="utf-8")
    link = LinkRecorder()
    link.fail = True
    with pytest.raises(OSError):
        publisher(tmp_path, directory, link).check()  # the version was stored, not published
    link.fail = False
    publisher(tmp_path, directory, link).check()
    publisher(tmp_path, directory, link).check()
    assert [p.version for p in policies(link)] == [1]
    state = json.loads((tmp_path / "inbound-policy.json").read_text())
    assert state["done"] is True
    assert state["version"] == 1


def test_rules_that_do_not_validate_are_not_published_and_said_once(
    tmp_path: Path, directory: Directory
) -> None:
    rules = tmp_path / "inbound-rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    link, audit = LinkRecorder(), Events()
    pub = publisher(tmp_path, directory, link, audit)
    pub.check()
    rules.write_text(RULES.replace('"monitor"', '"watch"'), encoding="utf-8")
    pub.check(force=True)
    pub.check(force=True)
    assert [p.version for p in policies(link)] == [1]  # the outer agent keeps version 1
    refused = [f for _, s, f in audit.events if s == "policy_refused"]
    assert len(refused) == 1
    assert "not 'watch'" in refused[0]["detail"]


def test_a_lost_version_record_is_not_silently_restarted(tmp_path: Path, directory: Directory) -> None:  # fmt: skip
    (tmp_path / "inbound-rules.toml").write_text(RULES, encoding="utf-8")
    (tmp_path / "inbound-policy.json").write_text("{torn")
    with pytest.raises(PolicyStateError, match="cannot be continued"):
        publisher(tmp_path, directory, LinkRecorder()).check()


# ---- held mail ----------------------------------------------------------------------------


def test_approvers_are_the_recipients_heads_or_the_security_officers(directory: Directory) -> None:
    assert approvers_for(directory, ["user@corp.example"], "department_head", None) == (
        "head@corp.example", "deputy@corp.example")  # fmt: skip
    # a head's own mail goes to the delegate
    assert approvers_for(directory, ["head@corp.example"], "department_head", None) == (
        "deputy@corp.example",)  # fmt: skip
    assert approvers_for(directory, ["user@corp.example", "loan@corp.example"],
                         "department_head", None) == (
        "head@corp.example", "deputy@corp.example", "boss@corp.example")  # fmt: skip
    assert approvers_for(directory, ["user@corp.example"], "security_officer", None) == (
        "sec@corp.example",)  # fmt: skip
    assert approvers_for(directory, ["x@elsewhere.example"], "department_head",
                         "fallback@corp.example") == ("fallback@corp.example",)  # fmt: skip


HOLD = InboundMark("hold", "hold-sales", 4, masked=("rrn",), approver="department_head",
                   held_until="2026-12-08T00:00:00Z")  # fmt: skip


def held_package(mark: InboundMark = HOLD, mail_id: str = "0123456789abcdef0123456789abcdef") -> bytes:  # fmt: skip
    mail = rendered(mail_id=mail_id)
    return encode_package(dataclasses.replace(mail, manifest=dataclasses.replace(
        mail.manifest, inbound=mark)))  # fmt: skip


def bundle(data: bytes, seq: int = 1) -> ReceivedBundle:
    return ReceivedBundle("inbound", seq, bytes([seq]) * 16, Kind.DATA, data, 0, 1)


def handler_with_holds(tmp_path: Path, directory: Directory) -> tuple[BundleHandler, HoldBook]:
    handler = make_handler(tmp_path)
    book = HoldBook(tmp_path / "holds.db")
    handler.held = HeldArrivals(book, directory, handler.audit, fallback=None)
    return handler, book


def test_a_held_preview_goes_to_the_approvers_never_to_the_recipient(
    tmp_path: Path, directory: Directory
) -> None:
    handler, book = handler_with_holds(tmp_path, directory)
    prepared = handler.prepare(bundle(held_package()))
    assert prepared.recipients == ("head@corp.example", "deputy@corp.example")
    assert prepared.mail_recipients == ("user@corp.example",)
    message = prepared.messages[0]
    assert b"To: head@corp.example, deputy@corp.example" in message
    assert b"user@corp.example" not in message.split(b"\r\n\r\n", 1)[0].split(b"To:")[1][:80]
    (hold,) = book.listed()
    assert (hold.mail_id, hold.state, hold.approvers) == (
        "0123456789abcdef0123456789abcdef",
        "waiting",
        ("head@corp.example", "deputy@corp.example"),
    )
    handler.prepare(bundle(held_package()))  # the same preview again: recorded once
    assert len(book.listed()) == 1


def test_without_inbound_a_held_preview_is_refused_not_shown(tmp_path: Path) -> None:
    handler = make_handler(tmp_path)
    handler(bundle(held_package()))
    quarantined = list((tmp_path / "quarantine").glob("*.reason.json"))
    assert len(quarantined) == 1
    assert "hold_without_approvers" in quarantined[0].read_text()


def test_a_decision_is_stored_once_and_sent_once(tmp_path: Path, directory: Directory) -> None:
    handler, book = handler_with_holds(tmp_path, directory)
    handler.prepare(bundle(held_package()))
    mail_id = "0123456789abcdef0123456789abcdef"
    book.decide(mail_id, "release", "head@corp.example")
    with pytest.raises(HoldRefused, match="decided: .* is released already"):
        book.decide(mail_id, "drop", "deputy@corp.example")
    with pytest.raises(HoldRefused, match="unknown_mail"):
        book.decide("ffff", "drop", "deputy@corp.example")
    link, audit = LinkRecorder(), Events()
    (tmp_path / "inbound-rules.toml").write_text(RULES, encoding="utf-8")
    outward = InboundOutward(publisher(tmp_path, directory, link), book, link, audit)
    assert outward.publish_decisions() == 1
    assert outward.publish_decisions() == 0
    (record,) = [decode_control(b, "outbound") for b, _, _ in link.published]
    assert isinstance(record, Decision)
    assert (record.mail_id, record.action, record.decided_by, record.policy_version) == (
        mail_id, "release", "head@corp.example", 4)  # fmt: skip
    assert audit.steps() == ["decision_sent"]


def test_an_expiry_notice_closes_the_hold_and_reaches_the_recipients(
    tmp_path: Path, directory: Directory
) -> None:
    handler, book = handler_with_holds(tmp_path, directory)
    handler.prepare(bundle(held_package()))
    expired = InboundMark("expired", "hold-sales", 4)
    prepared = handler.prepare(bundle(held_package(expired), seq=2))
    assert prepared.recipients == ("user@corp.example",)
    assert book.listed()[0].state == "expired"
    with pytest.raises(HoldRefused, match="expired already"):
        book.decide("0123456789abcdef0123456789abcdef", "release", "head@corp.example")


# ---- what the notification says ----------------------------------------------------------


def words_of(mark: InboundMark, masked: tuple[Masked, ...] = ()) -> str:
    mail = checked()
    manifest = dataclasses.replace(mail.manifest, inbound=mark, masked=masked)
    mail = dataclasses.replace(mail, manifest=manifest)
    message = build_notifications(mail, NotifyOptions(), shrink=lambda i: i, now=0)[0]
    import email
    from email import policy

    parsed = email.message_from_bytes(message, policy=policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None
    return f"{parsed['Subject']}\n{body.get_content()}"


def test_the_notification_says_what_the_filters_did() -> None:
    blocked = words_of(InboundMark("block", "block-evil", 2))
    assert "[차단]" in blocked
    assert "수신 규칙 'block-evil'에 따라 차단" in blocked
    assert "kim@partner.example" in blocked
    held = words_of(HOLD)
    assert "[수신 승인 요청]" in held
    assert "maildiode inbound decide" in held
    assert "2026-12-08T00:00:00Z" in held
    released = words_of(InboundMark("released", "hold-sales", 4, decided_by="head@corp.example"))
    assert "head@corp.example님이 승인" in released
    kinds = ("rrn", "foreigner_id", "driver_license", "passport")
    found = (
        Masked("rrn", "body", 0, "text", 2),
        Masked("passport", "attachment:a.png", 0, "ocr", 1),
    )
    masked = words_of(InboundMark("allow", "", 2, masked=kinds), found)
    assert "주민등록번호, 여권번호" in masked
    assert "기본 수신 정책" in masked
    assert "수신 규칙" not in words_of(InboundMark("allow", "", 2))
    assert "기본 수신 정책" not in words_of(InboundMark("allow", "", 2, masked=kinds))  # none found


def test_a_rule_name_from_the_other_zone_cannot_add_a_header() -> None:
    """A compromised outer agent writes what it likes into the mark: it stays body text."""
    import email
    from email import policy

    mail = checked()
    mark = InboundMark("block", "x\r\nBcc: all@corp.example", 2, approver="\r\nX-A: 1")
    mail = dataclasses.replace(mail, manifest=dataclasses.replace(mail.manifest, inbound=mark))
    message = build_notifications(mail, NotifyOptions(), shrink=lambda i: i, now=0)[0]
    parsed = email.message_from_bytes(message, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["X-A"] is None


NOTIFYING_RULES = """
version = 1

[[rule]]
id = "hold-sales"
action = "hold"
notify = ["recipient", "admin", "sender"]

[[rule]]
id = "quiet"
action = "monitor"
[[rule.condition]]
field = "subject"
contains = "quiet"
"""


def notices_for(tmp_path: Path, directory: Directory):
    """The inbound rule notices as the agent builds them, over the rules file and directory;
    an administrator's account (admin@corp.example) beside the HR people."""
    from inner_agent.inbound.rule_notices import InboundRuleNotices, RulesReader
    from inner_agent.web.roles import Role

    directory.accounts.add("admin@corp.example", Role.ADMIN, "admin-password-1")
    path = tmp_path / "inbound-rules.toml"
    path.write_text(NOTIFYING_RULES, encoding="utf-8")
    return path, InboundRuleNotices(RulesReader(path).current, directory,
                                    from_address="maildiode@corp.example")  # fmt: skip


def marked(mark: InboundMark):
    mail = checked()
    return dataclasses.replace(mail, manifest=dataclasses.replace(mail.manifest, inbound=mark))


def test_an_inbound_rule_tells_the_recipient_and_administrators_once_in_korean(
    tmp_path: Path, directory: Directory
) -> None:
    import email
    import email.policy

    from inner_agent.inject import RULE_NOTICE_PART_OFFSET
    from inner_agent.ownmail import MARKER_HEADER, OwnMailKind

    handler, _book = handler_with_holds(tmp_path, directory)
    _path, notices = notices_for(tmp_path, directory)
    handler.rule_notices = notices.for_mail
    held = bundle(held_package())
    handler(held)
    handler(held)  # handed over again (a crash before the reader marked it done): nothing new
    rows = handler.queue._db.execute(
        "SELECT part, kind, rcpts, data FROM messages WHERE part > ? ORDER BY part",
        (RULE_NOTICE_PART_OFFSET,)).fetchall()  # fmt: skip
    assert [(part - RULE_NOTICE_PART_OFFSET, kind, json.loads(rcpts)) for part, kind, rcpts, _ in rows] == [
        (1, "rule_notice", ["user@corp.example"]), (2, "rule_notice", ["admin@corp.example"])]  # fmt: skip
    message = email.message_from_bytes(rows[0][3], policy=email.policy.default)
    assert str(message["Subject"]).startswith("[규칙 알림] hold-sales: 보류(승인 대기) — ")
    body = message.get_content()
    assert "수신 규칙 'hold-sales'이(가) 외부에서 온 메일을 보류(승인 대기) 했습니다." in body
    assert message[MARKER_HEADER] == OwnMailKind.APPROVAL.value  # never relayed out
    assert all("partner.example" not in json.loads(rcpts) for _p, _k, rcpts, _d in rows)


@pytest.mark.parametrize(
    ("mark", "told"),
    [
        (HOLD, 2),
        (InboundMark("block", "hold-sales", 4), 2),
        (InboundMark("released", "hold-sales", 4, decided_by="head@corp.example"), 0),
        (InboundMark("expired", "hold-sales", 4), 0),
        (InboundMark("monitor", "quiet", 4), 0),  # a rule without notify
        (InboundMark("allow", "", 4), 0),  # the default action decided
        (InboundMark("hold", "gone-rule", 4), 0),  # not in the file any more
    ],
)
def test_only_a_deciding_rule_with_notify_tells_anyone(
    tmp_path: Path, directory: Directory, mark: InboundMark, told: int
) -> None:
    _path, notices = notices_for(tmp_path, directory)
    mail = marked(mark)
    assert len(notices.for_mail(mail, ("user@corp.example",))) == told


def test_the_rules_are_read_again_when_the_file_changes(
    tmp_path: Path, directory: Directory
) -> None:
    path, notices = notices_for(tmp_path, directory)
    mail = marked(HOLD)
    assert len(notices.for_mail(mail, ("user@corp.example",))) == 2
    path.write_text(NOTIFYING_RULES.replace('["recipient", "admin", "sender"]', '["admin"]'),
                    encoding="utf-8")  # fmt: skip
    import os

    os.utime(path, ns=(1, 1))  # a different mtime whatever the clock's resolution
    assert [to for to, _ in notices.for_mail(mail, ("user@corp.example",))] == [
        "admin@corp.example"]  # fmt: skip
    path.write_text("not toml [", encoding="utf-8")  # a broken edit: the last good rules
    assert len(notices.for_mail(mail, ("user@corp.example",))) == 1


def test_a_bidi_override_from_the_internet_is_a_marker_in_the_hold_and_the_rule_notice(
    tmp_path: Path, directory: Directory
) -> None:
    """A1 red team: "invoice\u202efdp.exe" in a held mail's Subject read "invoiceexe.pdf" on the
    recipient's held-mail page and in the rule notice's Subject; both now show the marker."""
    import email
    import email.policy

    from inner_agent.inject import RULE_NOTICE_PART_OFFSET

    handler, book = handler_with_holds(tmp_path, directory)
    _path, notices = notices_for(tmp_path, directory)
    handler.rule_notices = notices.for_mail
    mail = rendered(subject="invoice\u202efdp.exe", mail_from="x\u202e@partner.example")
    handler(bundle(encode_package(dataclasses.replace(
        mail, manifest=dataclasses.replace(mail.manifest, inbound=HOLD)))))  # fmt: skip
    (hold,) = book.listed()
    assert (hold.subject, hold.sender) == ("invoice⟨U+202E⟩fdp.exe", "x⟨U+202E⟩@partner.example")
    rows = handler.queue._db.execute(
        "SELECT data FROM messages WHERE part > ?", (RULE_NOTICE_PART_OFFSET,)
    ).fetchall()
    assert rows
    for (data,) in rows:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert "\u202e" not in str(message["Subject"]) + message.get_content()
        assert "invoice⟨U+202E⟩fdp.exe" in str(message["Subject"])
