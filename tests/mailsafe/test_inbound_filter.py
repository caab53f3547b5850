"""The receive filters in the render worker (mailsafe.inbound_filter): decisions per recipient,
each part's package from one parse, the reply the parent checks, the pool's filter job."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.errors import MailsafeError
from mailsafe.inbound_filter import (
    PREVIEW_MASK,
    FilterJob,
    ReplyRefused,
    decode_reply,
    encode_reply,
    fallback_groups,
    filter_message,
    parse_published,
)
from mailsafe.inbound_rules import (
    DEFAULT_INBOUND_RULES_TOML,
    UNIQUE_IDENTIFIERS,
    published_text,
)
from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import RenderPool

RULES = (
    DEFAULT_INBOUND_RULES_TOML
    + """
[[rule]]
id = "block-evil"
action = "block"
scope = "users"
users = ["blocked@corp.example"]
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "hold-ids"
action = "hold"
scope = "users"
users = ["held@corp.example"]
[[rule.condition]]
field = "body"
pii = ["rrn"]

[[rule]]
id = "loan-unmasked"
action = "mask"
mask = []
scope = "users"
users = ["loan@corp.example"]
"""
)
TEXT = published_text(RULES, {}, {})
RCPTS = ("user@corp.example", "blocked@corp.example", "held@corp.example", "loan@corp.example")


def mail(
    body: str = "주민번호 800101-1234567 입니다", subject: str = "견적 800101-1234567"
) -> bytes:
    message = EmailMessage()
    message["From"] = "김철수 <kim@evil.example>"
    message["To"] = ", ".join(RCPTS)
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes()


def job(rcpts: tuple[str, ...] = RCPTS, version: int = 1) -> FilterJob:
    return FilterJob(version, TEXT, "kim@evil.example", rcpts)


def test_each_recipient_gets_its_decision_and_its_package_from_one_parse() -> None:
    result = filter_message(mail(), parse_published(TEXT, 1), job(), RenderOptions())
    parts = {p.rcpts: p for p in result.parts}
    assert set(parts) == {("user@corp.example",), ("blocked@corp.example",),
                          ("held@corp.example",), ("loan@corp.example",)}  # fmt: skip
    user, loan = parts[("user@corp.example",)], parts[("loan@corp.example",)]
    assert user.decision.mask == UNIQUE_IDENTIFIERS
    assert user.masked == ("rrn",)
    assert loan.decision.mask == ()
    assert loan.masked == ()
    assert user.package != loan.package  # two renderings: masked and not
    blocked = parts[("blocked@corp.example",)]
    notice = result.packages[blocked.package]
    assert blocked.decision.action == "block"
    assert notice.images == ()
    assert notice.text is None
    assert "800101-1******" in notice.manifest.headers.subject  # the notice shows no number
    assert "800101-1234567" not in notice.manifest.headers.subject
    held = parts[("held@corp.example",)]
    assert held.decision.action == "hold"
    assert held.decision.rule == "hold-ids"
    assert result.packages[held.package].images  # the preview is a rendering


def test_rendering_options_carry_the_mask_per_part() -> None:
    seen: list[frozenset[str]] = []
    import mailsafe.inbound_filter as module

    real = module.render_parsed

    def spy(parsed, options, converter=None):  # type: ignore[no-untyped-def]
        seen.append(options.mask_types)
        return real(parsed, options, converter)

    module.render_parsed = spy  # type: ignore[assignment]
    try:
        filter_message(mail(), parse_published(TEXT, 1), job(), RenderOptions())
    finally:
        module.render_parsed = real  # type: ignore[assignment]
    assert sorted(map(sorted, seen)) == sorted(
        [sorted(UNIQUE_IDENTIFIERS), [], sorted(PREVIEW_MASK)]
    )  # one carried masked, one carried unmasked, one preview; the block needs no rendering


def test_a_reply_round_trips_and_is_checked_against_the_job() -> None:
    result = filter_message(mail(), parse_published(TEXT, 1), job(), RenderOptions())
    encoded = encode_reply(result)
    decoded = decode_reply(encoded, RCPTS)
    assert [p.decision for p in decoded.parts] == [p.decision for p in result.parts]
    with pytest.raises(ReplyRefused, match="each recipient exactly once"):
        decode_reply(encoded, (*RCPTS, "other@corp.example"))
    with pytest.raises(ReplyRefused, match="each recipient exactly once"):
        decode_reply(encoded, RCPTS[:2])


def _tampered(change: dict[str, object]) -> bytes:
    result = filter_message(mail(), parse_published(TEXT, 1), job(RCPTS[:1]), RenderOptions())
    document = msgpack.unpackb(encode_reply(result), raw=False)
    document["parts"][0].update(change)
    return bytes(msgpack.packb(document, use_bin_type=True))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"action": "deliver"}, "not one of"),
        ({"rule": "x y"}, "rule id"),
        ({"mask": ["ssn"]}, "personal-data type"),
        ({"package": 5}, "names no package"),
        ({"silent": 1}, "true or false"),
        ({"rcpts": ["someone@else.example"]}, "each recipient"),
        ({"extra": 1}, "other keys"),
    ],
)
def test_a_tampered_reply_is_refused(change: dict[str, object], why: str) -> None:
    with pytest.raises(ReplyRefused, match=why):
        decode_reply(_tampered(change), RCPTS[:1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    try:
        decode_reply(data, RCPTS)
    except MailsafeError:  # ReplyRefused, or PackageRefused for a package inside
        pass


def test_a_mail_the_worker_could_not_read_is_decided_on_its_envelope() -> None:
    text = published_text(RULES + "\n[[rule]]\nid = 'hold-unread'\naction = 'hold'\n"
                          "[[rule.condition]]\nfield = 'unreadable'\n", {}, {})  # fmt: skip
    groups = fallback_groups(parse_published(text, 2), job(), "timeout")
    actions = {rcpt: g.decision.action for g in groups for rcpt in g.rcpts}
    assert actions["blocked@corp.example"] == "block"  # the sender is known without reading
    assert actions["user@corp.example"] == "hold"  # unreadable: held, not carried blind
    assert actions["loan@corp.example"] == "hold"


def test_the_pool_filters_in_a_worker_and_sends_the_rules_once() -> None:
    with RenderPool(RenderOptions(), processes=1) as pool:
        first, why = pool.filter(mail(), job())
        assert first is not None, why
        assert {p.decision.action for p in first.parts} == {"allow", "block", "hold"}
        # the same version without its text: the worker kept the rules
        again, why = pool.filter(mail(), dataclasses.replace(job(), rules=None))
        assert again is not None, why
        # a new version's text is sent; bad rules are a named failure, not a crash
        bad, why = pool.filter(mail(), FilterJob(2, "rule = [", "", RCPTS))
        assert bad is None
        assert why == "rules-invalid"
        masked = pool.render(mail(), mask_types=frozenset({"rrn"}))
        assert masked.manifest.status == "rendered"
