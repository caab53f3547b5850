"""Issue 15.2: the spoof warning must not be bypassed with invisible or look-alike characters.

Each case writes our executive's address into the From display name (or the address itself)
so that a mail client shows ``ceo@bank.example``, with some character in it that the old
byte-wise comparison did not recognise.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inner_agent.images import shrink_image
from inner_agent.notify import NotifyOptions, build_notifications
from tests.inner.helpers import checked

OURS = NotifyOptions(our_domains=("bank.example",), from_address="maildiode@bank.example")
WARNING = "[사칭 의심]"

# (case, From header as the outer agent decoded it)
SPOOFS = [
    ("zero-width space", "대표이사 ceo@bank\u200b.example <x@evil.example>"),
    ("full-width at", "대표이사 ceo\uff20bank.example <x@evil.example>"),
    ("word joiner", "대표이사 ceo@ba\u2060nk.example <x@evil.example>"),
    ("soft hyphen", "대표이사 ceo@bank.ex\u00adample <x@evil.example>"),
    ("right-to-left override", "대표이사 \u202eelpmaxe.knab@oec <x@evil.example>"),
    ("override after the at sign", "대표이사 ceo@\u202eelpmaxe.knab\u202c <x@evil.example>"),
    ("marks reverse the words", "\u200fexample\u200f.\u200fbank\u200f@\u200fceo <x@evil.example>"),
    ("zero-width joiner", "대표이사 ceo@bank.\u200dexample <x@evil.example>"),
    ("byte order mark", "대표이사 \ufeffceo@bank.example\ufeff <x@evil.example>"),
    ("hangul filler", "대표이사\u3164ceo@bank.example <x@evil.example>"),
    ("variation selector", "대표이사 ceo@bank\ufe0f.example <x@evil.example>"),
    ("tag characters", "대표이사 ceo@bank.\U000e0041example <x@evil.example>"),
    ("full-width letters", "대표이사 ｃｅｏ＠ｂａｎｋ．ｅｘａｍｐｌｅ <x@evil.example>"),
    ("ideographic full stop", "대표이사 ceo@bank\u3002example <x@evil.example>"),
    ("cyrillic a", "대표이사 ceo@b\u0430nk.example <x@evil.example>"),
    ("greek alpha in the address", "대표이사 <ceo@b\u03b1nk.example>"),
    ("upper case", "대표이사 CEO@BANK.EXAMPLE <x@evil.example>"),
    ("second run of several", "a@partner.example, 대표 ceo@bank\u200b.example <x@evil.example>"),
    ("invisible in the address", "대표이사 <ceo@bank\u200b.example>"),
    ("subdomain", "대표이사 ceo@mail.bank\u00ad.example <x@evil.example>"),
]


def _notification(from_: str, options: NotifyOptions = OURS) -> EmailMessage:
    (raw,) = build_notifications(checked(from_=from_), options, shrink=shrink_image, now=1.8e9)
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize(("case", "from_"), SPOOFS, ids=[case for case, _ in SPOOFS])
def test_each_disguised_address_of_ours_gets_the_spoof_warning(case: str, from_: str) -> None:
    message = _notification(from_)
    assert WARNING in message["Subject"], case
    assert message["From"].addresses[0].addr_spec == OURS.from_address
    assert "사칭" in message.get_body(("html",)).get_content()


# A1 red team: an internationalised domain travels in a header as its ASCII form ("xn--" and
# punycode, RFC 3492), and mail clients show it decoded: "ceo@xn--bnk-6cd.example" reads
# "ceo@bаnk.example" with a Cyrillic a. Before the fix none of these got the warning.
PUNYCODE_SPOOFS = [
    ("cyrillic a, as the address", "대표이사 <ceo@xn--bnk-6cd.example>"),
    ("greek alpha, as the address", "대표이사 <ceo@xn--bnk-oxc.example>"),
    ("cyrillic a, in the display name", "대표이사 ceo@xn--bnk-6cd.example <x@evil.example>"),
    ("upper-case prefix, subdomain", "대표이사 <ceo@mail.XN--BNK-6CD.example>"),
]


@pytest.mark.parametrize(("case", "from_"), PUNYCODE_SPOOFS, ids=[c for c, _ in PUNYCODE_SPOOFS])
def test_a_punycode_domain_a_client_shows_as_ours_gets_the_spoof_warning(
    case: str, from_: str
) -> None:
    message = _notification(from_)
    assert WARNING in message["Subject"], case
    assert message["From"].addresses[0].addr_spec == OURS.from_address


def test_other_punycode_domains_get_no_warning() -> None:
    for from_ in ("<info@xn--9n2bp8q.example>", "<a@xn--bnk-6cd.example.net.evil>",
                  "<a@xn--zzzzzzzz-.example>"):  # fmt: skip
        assert WARNING not in _notification(from_)["Subject"], from_


# Default-ignorable code points and bidi controls, a few of each block and every bidi control.
INVISIBLE = [
    "\u00ad", "\u034f", "\u061c", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u180b", "\u180e",
    "\u180f", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c",
    "\u202d", "\u202e", "\u2060", "\u2061", "\u2063", "\u2064", "\u2066", "\u2067", "\u2068",
    "\u2069", "\u206a", "\u206f", "\u3164", "\ufe00", "\ufe0f", "\ufeff", "\uffa0",
    "\U0001bca0", "\U0001d173", "\U000e0001", "\U000e0020", "\U000e007f", "\U000e0100",
]  # fmt: skip
ADDRESS = "ceo@bank.example"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    insertions=st.lists(
        st.tuples(st.integers(0, len(ADDRESS)), st.sampled_from(INVISIBLE)), min_size=1, max_size=4
    ),
    in_display=st.booleans(),
)
def test_invisible_characters_anywhere_in_our_address_still_get_the_warning(
    insertions: list[tuple[int, str]], in_display: bool
) -> None:
    address = ADDRESS
    for position, char in sorted(insertions, reverse=True):
        address = address[:position] + char + address[position:]
    from_ = f"대표이사 {address} <x@evil.example>" if in_display else f"대표이사 <{address}>"
    assert WARNING in _notification(from_)["Subject"]


@pytest.mark.parametrize(
    "from_",
    [
        "김철수 <kim@partner.example>",
        "대표이사 홍길동 <hong@partner.example>",
        "(주)한국상사 영업팀 <sales@korea-trade.example>",
        "㈜파트너 김 과장 <kim@partner.example>",
        "이영희 (Lee Younghee) <lee@partner.example>",
        "박지성 ㅡ 구매팀 <park@buyer.example>",
        "😀 웃음 <smile@partner.example>",
        "bank.example 고객님께 <news@partner.example>",  # our name without an address is not a claim
        "ceo@bank.example.evil.example <x@evil.example>",  # another domain, shown as it is
        "ceo@bankexample.example <x@evil.example>",
    ],
)
def test_ordinary_korean_display_names_get_no_warning(from_: str) -> None:
    assert WARNING not in _notification(from_)["Subject"]


def test_invisible_characters_are_shown_as_markers_to_the_employee() -> None:
    message = _notification("대표이사 ceo@bank\u200b.example <x@evil.example>")
    marker = "⟨U+200B⟩"
    # RFC 2047 decoding (Python's address parser reads a space in at encoded-word splits)
    raw_from = message_from_bytes(message.as_bytes(), policy=policy.compat32)["From"]
    assert f"ceo@bank{marker}.example" in str(make_header(decode_header(raw_from)))
    for body in (message.get_body(("plain",)), message.get_body(("html",))):
        assert f"ceo@bank{marker}.example" in body.get_content()
        assert "\u200b" not in body.get_content()


def test_bidi_controls_in_subject_and_attachment_names_are_shown_as_markers() -> None:
    import dataclasses

    from inner_agent.notify import CheckedMail
    from mailsafe.payload import Withheld

    mail = checked(subject="송장 \u202efdp.exe", from_="Kim <kim@partner.example>")
    hostile = Withheld("invoice\u202egpj.exe", "application/x-msdownload", 10, "ab" * 32, "x")
    mail = CheckedMail(dataclasses.replace(mail.manifest, withheld=(hostile,)), mail.images, None)
    (raw,) = build_notifications(mail, OURS, shrink=shrink_image, now=1.8e9)
    message = message_from_bytes(raw, policy=policy.default)
    assert "\u202e" not in message["Subject"]
    assert "송장 ⟨U+202E⟩fdp.exe" in message["Subject"]
    for body in (message.get_body(("plain",)), message.get_body(("html",))):
        assert "invoice⟨U+202E⟩gpj.exe" in body.get_content()
        assert "\u202e" not in body.get_content()
    assert WARNING not in message["Subject"]
