from __future__ import annotations

import random
import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inner_agent import notify
from inner_agent.images import shrink_image
from inner_agent.notify import (
    MAX_SUBJECT_CHARS,
    NotifyOptions,
    build_notifications,
    claims_our_domain,
    clean_header_text,
)
from tests.inner.helpers import checked, manifest

OPTIONS = NotifyOptions(our_domains=("corp.example",), from_address="maildiode@corp.example")


def _build(options: NotifyOptions = OPTIONS, **kwargs: object) -> list[EmailMessage]:
    raw = build_notifications(checked(**kwargs), options, shrink=shrink_image, now=1.8e9)
    return [message_from_bytes(r, policy=policy.default) for r in raw]  # type: ignore[misc]


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b":")[0].decode().lower()
        for line in head.split(b"\r\n")
        if line and line[:1] not in b" \t"
    ]


def test_structure_html_with_inline_images_and_text_alternative() -> None:
    (message,) = _build(pages=2)
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html = message.get_body(("html",)).get_content()
    cids = re.findall(r'src="cid:([^"]+)"', html)
    attached = [
        p["Content-ID"].strip("<>")
        for p in related.iter_parts()
        if p.get_content_maintype() == "image"
    ]
    assert len(cids) == 2
    assert cids == attached
    images = [p for p in related.iter_parts() if p.get_content_maintype() == "image"]
    assert [p.get_content() for p in images] == [i.data for i in checked(pages=2).images]
    assert {p.get_content_disposition() for p in images} == {"inline"}
    assert not any(part.defects for part in message.walk())
    text = plain.get_content()
    assert "보낸 사람: 김철수 <kim[@]partner[.]example>" in text  # readable, not a link
    assert "안녕하세요" in text
    assert "setup.exe" in text
    assert "1.1 MB" in text
    assert "setup.exe" in html
    assert "spf=pass" in html


def test_subject_prefix_and_original_sender_in_from() -> None:
    (message,) = _build()
    assert message["Subject"] == "[외부메일] 견적 요청"
    assert message["From"].addresses[0].addr_spec == "kim@partner.example"
    assert message["To"] == "user@corp.example"
    assert message["Auto-Submitted"] == "auto-generated"


def test_encoded_crlf_in_subject_cannot_add_a_header() -> None:
    raw = build_notifications(
        checked(subject="hello\r\nBcc: boss@corp.example\nX-Evil: 1"),
        OPTIONS,
        shrink=shrink_image,
        now=1.8e9,
    )[0]
    names = _header_names(raw)
    assert "bcc" not in names
    assert "x-evil" not in names
    assert names.count("subject") == 1
    message = message_from_bytes(raw, policy=policy.default)
    assert "Bcc: boss@corp.example" in message["Subject"]


def test_crlf_in_from_display_and_recipient_cannot_add_headers() -> None:
    raw = build_notifications(
        checked(
            from_="Eve\r\nBcc: a@corp.example <eve@evil.example>",
            rcpt=("user@corp.example\r\nBcc: b@corp.example",),
        ),
        OPTIONS,
        shrink=shrink_image,
        now=1.8e9,
    )[0]
    assert "bcc" not in _header_names(raw)


def test_internet_values_are_escaped_in_html() -> None:
    (message,) = _build(
        subject="<script>alert(1)</script>", from_='"<img src=x onerror=1>" <a@b.example>'
    )
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<img src=x" not in html


def test_threading_headers_are_data_not_headers() -> None:
    (message,) = _build()
    assert message["In-Reply-To"] is None
    assert message["References"] is None
    assert message["Message-ID"] != "<orig@partner.example>"
    assert "&lt;prev[@]partner[.]example&gt;" in message.get_body(("html",)).get_content()


def test_spoofing_warning_when_sender_claims_our_domain() -> None:
    (message,) = _build(from_="CEO <ceo@corp.example>", mail_from="ceo@corp.example")
    assert "[사칭 의심]" in message["Subject"]
    assert message["From"].addresses[0].addr_spec == "maildiode@corp.example"
    assert "사칭" in message.get_body(("html",)).get_content()


def test_spoofing_via_display_name_and_subdomain() -> None:
    assert claims_our_domain(
        manifest(from_='"ceo@corp.example" <x@evil.example>'), ["corp.example"]
    )
    assert claims_our_domain(manifest(from_="a <a@mail.corp.example>"), ["corp.example"])
    assert claims_our_domain(manifest(), ["corp.example"]) is None
    assert (
        claims_our_domain(
            manifest(from_="a <a@notcorp.example>", mail_from="a@notcorp.example"), ["corp.example"]
        )
        is None
    )


def test_an_address_of_ours_inside_the_from_address_is_spoofing() -> None:
    """``<ceo@corp.example@evil.example>`` would read as ``"ceo@corp.example"@evil.example``."""
    sneaky = "CEO <ceo@corp.example@evil.example>"
    assert claims_our_domain(manifest(from_=sneaky), ["corp.example"]) == "corp.example"
    (message,) = _build(from_=sneaky)
    assert "[사칭 의심]" in message["Subject"]
    assert message["From"].addresses[0].addr_spec == "maildiode@corp.example"
    # RFC 2047 decoding (Python's address parser reads a space in at encoded-word splits)
    raw_from = message_from_bytes(message.as_bytes(), policy=policy.compat32)["From"]
    assert "(ceo@corp.example@evil.example)" in str(make_header(decode_header(raw_from)))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_base64_lines_are_the_standard_librarys_with_crlf(data: bytes) -> None:
    import base64

    assert notify._base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")


@pytest.mark.parametrize("size", [3647, 3648, 3649, 3648 * 2, 3648 * 2 + 57, 95_000, 300_001])
def test_base64_lines_across_whole_blocks_of_lines(size: int) -> None:
    """Pages are larger than the property test's inputs: lines cut 64 at a time (3648 bytes
    in, 4864 characters out) and the rest, at and around the blocks' edges."""
    import base64

    data = random.Random(size).randbytes(size)
    assert notify._base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")


def test_english_by_configuration() -> None:
    options = NotifyOptions(
        language="en", subject_prefix="[External]", our_domains=("corp.example",)
    )
    (message,) = _build(options)
    assert message["Subject"] == "[External] 견적 요청"
    assert "This is external mail" in message.get_body(("plain",)).get_content()


def test_over_size_limit_is_scaled_or_split_and_says_so() -> None:
    import io
    import os

    from PIL import Image

    from inner_agent.notify import CheckedImage, CheckedMail

    def noisy() -> CheckedImage:
        buffer = io.BytesIO()
        Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(buffer, "PNG")
        return CheckedImage(buffer.getvalue(), "image/png", 300, 300)

    mail = checked(pages=6)
    mail = CheckedMail(mail.manifest, tuple(noisy() for _ in range(6)), mail.text)
    limit = 300 << 10
    options = NotifyOptions(max_message_bytes=limit, our_domains=("corp.example",))
    raws = build_notifications(mail, options, shrink=shrink_image, now=1.8e9)
    assert len(raws) >= 2
    assert all(len(r) <= limit for r in raws)
    messages = [message_from_bytes(r, policy=policy.default) for r in raws]
    assert "(1/" in messages[0]["Subject"]
    text = messages[0].get_body(("plain",)).get_content()
    assert "나누어" in text or "축소" in text
    pages = sum(len(re.findall("cid:", m.get_body(("html",)).get_content())) for m in messages)
    assert pages == 6


_PIECES = [
    *"aZ09 @<>\"'():;,.\\\r\n\t\x00\x0b\x7f\u2028\u0085한글=?",
    "=?utf-8?q?",
    "Bcc: x@y.example",
]
_HOSTILE = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
_FIXED_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
                  "x-maildiode-notification", "x-maildiode-mail-id", "x-maildiode-part",
                  "mime-version", "content-type"}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_HOSTILE, from_=_HOSTILE, rcpt=_HOSTILE, mail_from=_HOSTILE)
def test_any_internet_values_give_a_well_formed_notification_with_fixed_headers(
    subject: str, from_: str, rcpt: str, mail_from: str
) -> None:
    mail = checked(
        subject=subject, from_=from_, rcpt=(rcpt, "user@corp.example"), mail_from=mail_from
    )
    (raw,) = build_notifications(mail, OPTIONS, shrink=shrink_image, now=1.8e9)
    assert set(_header_names(raw)) == _FIXED_HEADERS
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"].startswith("[외부메일]")
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"
    ]  # fmt: skip
    assert not any(part.defects for part in message.walk())


def test_not_displayable_mail_still_gets_a_notification_with_the_reason() -> None:
    import dataclasses

    from inner_agent.notify import CheckedMail

    info = dataclasses.replace(
        manifest(pages=0), status="not_displayable", reason="render_timeout"
    )  # a code no table knows
    raw = build_notifications(CheckedMail(info, (), None), OPTIONS, shrink=shrink_image, now=1.8e9)
    (message,) = [message_from_bytes(r, policy=policy.default) for r in raw]
    text = message.get_body(("plain",)).get_content()
    assert "render_timeout" in text
    assert "setup.exe" in message.get_body(("html",)).get_content()


def test_notes_and_reasons_in_the_readers_language() -> None:
    """The renderer's notes travel in English; a Korean notification shows them in Korean."""
    import dataclasses

    from inner_agent.notify import CheckedMail
    from mailsafe.notes import note
    from mailsafe.payload import Withheld

    info = dataclasses.replace(
        manifest(pages=0),
        status="not_displayable",
        reason="timeout",
        notes=(note("remote_dropped", count=4), "a note no template knows"),
        withheld=(Withheld("a.zip", "application/zip", 10, "ab" * 32, "not_rendered_type"),),
    )
    mail = CheckedMail(info, (), None)
    for options, expected, absent in (
        (OPTIONS, ["HTML의 외부 참조 4개를 불러오지 않았습니다", "변환 시간이 제한을 넘었습니다",
                   "그림으로 바꾸지 않는 파일 형식입니다", "a note no template knows"],
         "remote reference"),
        (NotifyOptions(language="en", our_domains=("corp.example",)),
         ["4 remote reference(s) in the HTML were not loaded",
          "rendering took longer than the wall-clock limit",
          "this file type is not shown as images"], "외부 참조"),
    ):  # fmt: skip
        (raw,) = build_notifications(mail, options, shrink=shrink_image, now=1.8e9)
        message = message_from_bytes(raw, policy=policy.default)
        for body in (message.get_body(("plain",)), message.get_body(("html",))):
            content = body.get_content()
            assert all(words in content for words in expected), content
            assert absent not in content


# --------------------------------------------------------------------------- header encoder

_LONG_KO = "가나다라 마바사 " * 60
_ENGLISH = NotifyOptions(language="en", subject_prefix="[External]", our_domains=("corp.example",))
_REPRESENTATIVE = {
    "korean": {},
    "english": {"from_": "John Smith <john@partner.example>", "subject": "Quotation for Q3"},
    "english_options": {"from_": "John Smith <john@partner.example>", "subject": "Q3 offer"},
    "mixed": {"from_": "(주)한국상사 영업팀 Kim <kim@partner.example>",
              "subject": "RE: 견적 요청 – Q3 (urgent!) 😀"},
    "quoted": {"from_": '"Doe, John" <j@d.example>', "subject": 'a "quoted" \\ subject; x: <y>'},
    "escapes": {"from_": 'He said "hi" \\ <j@d.example>'},
    "long_korean": {"from_": "가" * 30 + " <a@b.example>", "subject": _LONG_KO},
    "long_english": {"from_": "Very Long Name " * 12 + "<a@b.example>", "subject": "word " * 100},
    "long_token": {"from_": "x" * 190 + " <a@b.example>", "subject": "y" * 450},
    "long_mixed": {"subject": "Offer 제안서 v2 " * 40},
    "emoji": {"from_": "😀 Smile <s@b.example>", "subject": "😀" * 120},
    "crlf": {"subject": "hello\r\nBcc: boss@corp.example\nX-Evil: 1",
             "from_": "Eve\r\nBcc: a@corp.example <eve@evil.example>"},
    "controls": {"subject": "a\x00b\x0bc\x7fd\u2028e\u0085f\tg", "from_": "N\u2029o\x1bne <n@b.example>"},
    "spoofed": {"from_": "CEO <ceo@corp.example>", "mail_from": "ceo@corp.example"},
    "invalid_address": {"from_": "김철수 <kim@파트너.example>"},
    "no_display_name": {"from_": "plain@partner.example"},
    "recipients": {"rcpt": (*(f"user{i}@corp.example" for i in range(60)), "bad address")},
}  # fmt: skip


def _reference(kwargs: dict[str, object], options: NotifyOptions) -> EmailMessage:
    """From, To and Subject as the EmailMessage + policy.SMTP construction wrote them before."""
    info = manifest(**kwargs)  # type: ignore[arg-type]
    words = notify._WORDS[options.language]
    spoofed = claims_our_domain(info, options.our_domains)
    display, local, domain = notify._from_header(info, options, words, spoofed)
    recipients = [a for a in map(notify._valid_address, info.envelope.rcpt_to) if a]
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(display_name=display, username=local, domain=domain)
    message["To"] = ", ".join(recipients) if recipients else options.from_address
    message["Subject"] = notify._subject(
        info, options=options, words=words, spoofed=spoofed, part=1, total=1
    )
    return message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[return-value]


def _read(message: EmailMessage) -> tuple[object, ...]:
    return (
        [(a.display_name, a.addr_spec) for a in message["From"].addresses],
        [a.addr_spec for a in message["To"].addresses],
        str(message["Subject"]),
    )


@pytest.mark.parametrize("case", list(_REPRESENTATIVE))
def test_header_block_reads_back_like_the_email_message_construction(case: str) -> None:
    options = _ENGLISH if case == "english_options" else OPTIONS
    (raw,) = build_notifications(
        checked(**_REPRESENTATIVE[case]), options, shrink=shrink_image, now=1.8e9
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert _read(message) == _read(_reference(_REPRESENTATIVE[case], options))  # type: ignore[arg-type]
    assert not any(message[name].defects for name in ("From", "To", "Subject"))
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 998 for line in head)
    # over 78 only where one unbreakable word (a long ASCII token or address) needs the room
    foldable = [line for line in head if len(re.sub(rb"^[\w-]+:", b"", line).split()) > 1]
    assert all(len(line) <= 78 for line in foldable), foldable


def test_sixty_recipients_are_folded_and_read_back() -> None:
    recipients = tuple(f"recipient.number.{i:02d}@department.corp.example" for i in range(60))
    (raw,) = build_notifications(checked(rcpt=recipients), OPTIONS, shrink=shrink_image, now=1.8e9)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    to_field = re.search(r"^To:.*?\r\n(?=\S)", head, re.MULTILINE | re.DOTALL)
    assert to_field
    to_lines = to_field.group(0).split("\r\n")[:-1]
    assert len(to_lines) > 1
    assert all(len(line) <= 78 for line in to_lines), to_lines
    message = message_from_bytes(raw, policy=policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == list(recipients)
    assert not message["To"].defects


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "x\r\nBcc: boss@corp.example"])
def test_header_encoder_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        notify._encode_subject(bad)
    with pytest.raises(ValueError, match="line break"):
        notify._encode_to(["user@corp.example", bad])
    with pytest.raises(ValueError, match="line break"):
        notify._encode_from(bad, "kim", "partner.example")
    with pytest.raises(ValueError, match="line break"):
        notify._encode_from("Kim", bad, "partner.example")
    with pytest.raises(ValueError, match="line break"):
        notify._encode_from("Kim", "kim", bad)
    with pytest.raises(ValueError, match="line break"):
        notify._fold("Subject", ["fine", bad])


def test_encoded_word_lookalikes_are_shown_literally() -> None:
    """Text of the original that looks like an encoded word is encoded itself, so a reader sees
    it as written instead of decoding it a second time (the EmailMessage construction did)."""
    subject = "=?utf-8?b?QmNjOiBib3NzQGNvcnAuZXhhbXBsZQ==?="
    display = "=?utf-8?q?ceo=40corp.example?="
    (message,) = _build(subject=subject, from_=f"{display} <x@evil.example>")
    assert str(message["Subject"]) == f"[외부메일] {subject}"
    assert message["From"].addresses[0].display_name == display
    # an address like that is not written at all: ours, with the original shown as text
    (message,) = _build(from_="Kim <=?utf-8?q?ceo?=@partner.example>",
                        rcpt=("=?utf-8?q?boss?=@corp.example", "user@corp.example"))  # fmt: skip
    (sender,) = message["From"].addresses
    assert sender.addr_spec == OPTIONS.from_address
    assert sender.display_name == "Kim (=?utf-8?q?ceo?=@partner.example)"
    assert [a.addr_spec for a in message["To"].addresses] == ["user@corp.example"]


# Hypothesis keeps plain text short; pieces reach the long values that need folding too.
_LONG_PIECES = ["가나다", "영업팀 ", "word ", "x" * 80, "😀", "é", "=?utf-8?q?", '"', "\\", ", ",
                "<a@b>"]  # fmt: skip
_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=500),
    st.lists(st.sampled_from(_LONG_PIECES), max_size=150).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_any_subject_and_display_name_read_back_exactly(text: str) -> None:
    subject = clean_header_text(text, MAX_SUBJECT_CHARS)
    display = clean_header_text(text, 200)
    head = notify._encode_from(display, "kim", "partner.example")
    head += notify._encode_to(["user@corp.example"]) + notify._encode_subject(subject)
    raw = head.encode("ascii") + b"\r\n"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert all(len(line) <= 78 for line in head.partition("Subject:")[2].split("\r\n"))
    message = message_from_bytes(raw, policy=policy.default)
    assert str(message["Subject"]) == subject
    (sender,) = message["From"].addresses
    assert sender.addr_spec == "kim@partner.example"
    assert not message["From"].defects
    assert not message["Subject"].defects
    if "=?" not in head.partition("To:")[0]:
        assert sender.display_name == display
    else:
        # RFC 2047 6.2: the space between adjacent encoded words is not part of the text;
        # Python's address parser keeps it nonetheless (as it did for the EmailMessage output)
        phrase = head.partition("To:")[0].removeprefix("From: ").replace("\r\n", "")
        assert str(make_header(decode_header(phrase.rpartition(" <")[0]))) == display
        assert sender.display_name.replace(" ", "") == display.replace(" ", "")


def test_links_written_as_text_are_defanged_in_the_notification() -> None:
    """A1 red team: the plain-text part carried "https://phish.example/login" as the sender
    wrote it in the body (and in the Subject row), so a reader in plain-text mode (Outlook's
    "read all mail as plain text") got a working link, despite the banner saying links do not
    work. Every run a mail client links is now defanged, in both parts' rows and the text."""
    import dataclasses

    mail = checked(subject="확인 요청 https://subject.example/x")
    text = "로그인: https://phish.example/login?u=1 또는 www.phish2.example/path\nHTTP://UP.EXAMPLE"
    mail = dataclasses.replace(mail, text=text)
    (raw,) = notify.build_notifications(mail, OPTIONS, shrink=shrink_image, now=1.8e9)
    message = message_from_bytes(raw, policy=policy.default)
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for shown in ("hxxps://phish[.]example/login?u=1", "www[.]phish2[.]example/path",
                  "hxxp://UP[.]EXAMPLE", "hxxps://subject[.]example/x"):  # fmt: skip
        assert shown in plain, shown
    assert "hxxps://subject[.]example/x" in html
    for part in (plain, html):
        assert not re.search(r"(?i)https?://|www\.", part), part
    assert "https://subject.example/x" in str(message["Subject"])  # a Subject is never a link


def test_bare_domains_and_addresses_written_as_text_are_defanged_in_the_notification() -> None:
    """C2: after the links, the bare names: "phish.example/login", "evil.example" and
    "ceo@evil.example" written in the body or the Subject reached the notification as
    written, and Outlook and Gmail make them links (a page, or a draft to the sender's
    accomplice). They are now bracketed in the carried text and in both parts' rows, still
    readable; the notification's own headers (From, To) and its picture links are not."""
    import dataclasses

    mail = checked(subject="송금 계좌 변경: evil.example 참조", from_="대표 <ceo@evil.example>",
                   mail_from="ceo@evil.example")  # fmt: skip
    text = "로그인: phish.example/login\n회신은 ceo@evil.example 로, 자료는 invoice.pdf"
    (raw,) = notify.build_notifications(
        dataclasses.replace(mail, text=text), OPTIONS, shrink=shrink_image, now=1.8e9
    )
    message = message_from_bytes(raw, policy=policy.default)
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for shown in ("phish[.]example/login", "ceo[@]evil[.]example 로", "invoice.pdf",
                  "evil[.]example 참조", "대표 <ceo[@]evil[.]example>"):  # fmt: skip
        assert shown in plain, shown
    for shown in ("evil[.]example 참조", "ceo[@]evil[.]example"):
        assert shown in html, shown
    for part in (plain, html):
        assert not re.search(r"(?i)[a-z0-9-]\.example\b|@evil", part), part
    assert str(message["To"]) == "user@corp.example"  # the employee's own address, as written
    assert message["From"].addresses[0].addr_spec == "ceo@evil.example"  # its own header, as before
    assert 'src="cid:' in html  # the notification's own picture links work
