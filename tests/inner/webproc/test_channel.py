"""The control channel's messages: one table drives both directions; anything else the
child could send is refused with the channel's error (decodes, or raises ChannelRefused)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inner_agent.webproc.channel import (
    MAX_ERROR_CHARS,
    MAX_MESSAGE_BYTES,
    Failed,
    Ready,
    Wake,
    decode,
    encode,
)
from inner_agent.webproc.errors import ChannelRefused

CASES = [
    (Ready(), b'{"kind":"ready"}'),
    (Wake(), b'{"kind":"wake"}'),
    (Failed("OperationalError: unable to open database file"),
     b'{"kind":"failed","error":"OperationalError: unable to open database file"}'),
    (Failed("쓸 수 없음"), b'{"kind":"failed","error":"\\uc4f8 \\uc218 \\uc5c6\\uc74c"}'),
]  # fmt: skip

REFUSED = [
    (b"", "not ASCII JSON"),
    (b"wake", "not ASCII JSON"),
    (b'{"kind":"wake"}\xff', "not ASCII JSON"),
    (b"[]", "not an object"),
    (b'{"kind":"restart"}', "unknown message"),
    (b'{"kind":"wake","extra":1}', "unknown message"),
    (b'{"kind":"failed"}', "unknown message"),
    (b'{"kind":"failed","error":5}', "unknown message"),
    (b'{"kind":"ready","error":"x"}', "unknown message"),
    (b'{"kind":"wake"}' + b" " * MAX_MESSAGE_BYTES, "bytes"),
]


@pytest.mark.parametrize(("message", "wire"), CASES)
def test_both_directions(message, wire) -> None:
    assert encode(message) == wire
    assert decode(wire) == message


@pytest.mark.parametrize(("untrusted", "what"), REFUSED)
def test_anything_else_is_refused(untrusted, what) -> None:
    with pytest.raises(ChannelRefused, match=what):
        decode(untrusted)


def test_an_error_is_cut_and_its_control_characters_escaped() -> None:
    long = encode(Failed("x" * 5000))
    assert len(long) <= MAX_MESSAGE_BYTES
    assert decode(long) == Failed("x" * MAX_ERROR_CHARS)
    hostile = b'{"kind":"failed","error":"bad\\u001b[2J\\nline"}'
    assert decode(hostile) == Failed("bad\\x1b[2J\\x0aline")


@given(st.binary(max_size=MAX_MESSAGE_BYTES + 8))
def test_any_record_decodes_or_is_refused(untrusted: bytes) -> None:
    try:
        decode(untrusted)
    except ChannelRefused:
        pass


@given(st.text(max_size=200))
def test_any_error_text_survives_the_round_trip_printable(text: str) -> None:
    decoded = decode(encode(Failed(text)))
    assert isinstance(decoded, Failed)
    assert all(c.isprintable() for c in decoded.error)
