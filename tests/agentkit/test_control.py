"""Control payloads (agentkit.control): round trips, the refusal rule for any input, and the
producer's clean-up of audit events."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit import control
from agentkit.control import (
    MAX_DETAIL_CHARS,
    MAX_DETAIL_KEYS,
    ControlRefused,
    Decision,
    Policy,
    ReportedEvent,
    StatusReport,
    decode_control,
    encode_control,
    encoded_size,
    reportable_event,
)
from tests.agentkit.control_golden import DECISION, POLICY, QUIET_REPORT, REPORT

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------ strategies

uints = st.integers(0, 2**53 - 1)
ages = st.none() | st.floats(0, 1e9, allow_nan=False)
safe_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn")), max_size=MAX_DETAIL_CHARS
)
names = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | safe_text
)  # fmt: skip
events = st.lists(
    st.builds(
        ReportedEvent,
        id=st.integers(1, 2**40),
        ts=st.floats(0, 1e10, allow_nan=False),
        mail_id=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
        step=names,
        details=st.dictionaries(names, scalars, max_size=MAX_DETAIL_KEYS),
    ),
    max_size=5,
    unique_by=lambda e: e.id,
).map(lambda found: tuple(sorted(found, key=lambda e: e.id)))


@st.composite
def reports(draw: st.DrawFn) -> StatusReport:
    host = dataclasses.replace(
        REPORT.host,
        hostname=draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)),
        uptime_s=draw(st.none() | uints),
        cpu_percent=draw(st.none() | st.floats(0, 100)),
        load=draw(st.none() | st.tuples(*[st.floats(0, 1e6)] * 3)),
    )
    spool = dataclasses.replace(REPORT.spool, received=draw(uints), oldest_waiting_s=draw(ages))
    return dataclasses.replace(
        REPORT, made_ms=draw(uints), interval_s=draw(st.integers(1, 86400)), host=host,
        spool=spool, events=draw(events), events_behind=draw(uints),
        link=dataclasses.replace(REPORT.link, receiver=draw(st.none() | st.just(REPORT.link.receiver))),
    )  # fmt: skip


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=30,
)  # fmt: skip

# ------------------------------------------------------------------------------ round trips


def _report(report: StatusReport) -> StatusReport:
    """``report`` encoded and decoded again."""
    decoded = decode_control(encode_control(report), "inbound")
    assert isinstance(decoded, StatusReport)
    return decoded


@FAST
@given(reports())
def test_any_status_report_round_trips(report: StatusReport) -> None:
    assert decode_control(encode_control(report), "inbound") == report


@FAST
@given(st.integers(1, 2**53 - 1), uints, st.text(max_size=200).map(lambda t: t.replace("\x00", "")))
def test_any_policy_round_trips(version: int, made_ms: int, rules: str) -> None:
    rules = control._CONTROL_CHARS_BUT_LINES.sub("", rules)
    policy = Policy(version=version, made_ms=made_ms, rules=rules)
    assert decode_control(encode_control(policy), "outbound") == policy


@pytest.mark.parametrize("action", ["release", "drop"])
def test_decisions_round_trip(action: str) -> None:
    decision = dataclasses.replace(DECISION, action=action)  # type: ignore[arg-type]
    assert decode_control(encode_control(decision), "outbound") == decision


# ------------------------------------------------------------------------------ hostile input


@FAST
@given(st.binary(max_size=2048), st.sampled_from(["inbound", "outbound"]))
def test_any_bytes_decode_or_raise_the_one_error(data: bytes, direction: Any) -> None:
    code = None
    try:
        decode_control(data, direction)
    except ControlRefused as refused:
        code = refused.code
    assert code in {None, "too_large", "not_msgpack", "bad_version", "unknown_type",
                    "wrong_direction", "bad_field"}  # fmt: skip


@FAST
@given(msgpack_values, st.sampled_from(["status-report", "policy", "decision", "x"]),
       st.sampled_from(["inbound", "outbound"]))  # fmt: skip
def test_any_msgpack_map_decodes_or_raises_the_one_error(
    value: object, kind: str, direction: Any
) -> None:
    document = value if isinstance(value, dict) else {"payload": value}
    document = {"v": 1, "type": kind, **document}
    try:
        decode_control(msgpack.packb(document, use_bin_type=True), direction)
    except ControlRefused:
        pass


@FAST
@given(st.data())
def test_a_valid_record_with_any_field_replaced_decodes_or_raises_the_one_error(
    data: st.DataObject,
) -> None:
    record = data.draw(st.sampled_from([REPORT, QUIET_REPORT, POLICY, DECISION]))
    document = msgpack.unpackb(encode_control(record))
    target, path = document, data.draw(st.sampled_from(sorted(document)))
    while isinstance(target[path], dict) and target[path] and data.draw(st.booleans()):
        target, path = target[path], data.draw(st.sampled_from(sorted(target[path])))
    target[path] = data.draw(msgpack_values)
    direction = "inbound" if isinstance(record, StatusReport) else "outbound"
    try:
        decoded = decode_control(msgpack.packb(document, use_bin_type=True), direction)
    except ControlRefused:
        return
    assert type(decoded) is type(record)


def test_every_single_byte_change_of_a_report_decodes_or_raises_the_one_error() -> None:
    data = encode_control(REPORT)
    for position in range(len(data)):
        for value in (0x00, 0xC1, 0xFF, data[position] ^ 0x01):
            changed = data[:position] + bytes([value]) + data[position + 1 :]
            try:
                decode_control(changed, "inbound")
            except ControlRefused:
                pass


def test_size_is_refused_before_anything_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded an oversize payload")

    monkeypatch.setattr(control.msgpack, "unpackb", no_decoding)
    with pytest.raises(ControlRefused) as refused:
        decode_control(b"\x80" * (control.MAX_REPORT_BYTES + 1), "inbound")
    assert refused.value.code == "too_large"


def test_a_policy_sized_payload_is_refused_on_the_inbound_stream_before_decoding() -> None:
    big = encode_control(dataclasses.replace(POLICY, rules="#" * 500_000))
    with pytest.raises(ControlRefused) as refused:
        decode_control(big, "inbound")
    assert refused.value.code == "too_large"
    assert decode_control(big, "outbound") == dataclasses.replace(POLICY, rules="#" * 500_000)


def test_a_report_of_more_than_n_events_is_refused() -> None:
    many = tuple(ReportedEvent(n, 1.0, "m", "received", {}) for n in range(1, 202))
    with pytest.raises(ControlRefused) as refused:
        decode_control(encode_control(dataclasses.replace(REPORT, events=many)), "inbound")
    assert refused.value.code == "not_msgpack"  # the unpacker's array limit: 200
    assert _report(dataclasses.replace(REPORT, events=many[:200])).events == many[:200]


def test_no_control_type_has_a_field_that_could_hold_binary_content() -> None:
    """A mail body, an attachment or a picture would need bytes or a long text: neither exists
    in a status report (the longest text is an audit detail's 300 characters)."""
    for cls in (StatusReport, *[t for t in control._SCHEMAS if t is not Policy]):
        for field in dataclasses.fields(cls):
            assert "bytes" not in str(field.type), f"{cls.__name__}.{field.name}"
    longest = max(MAX_DETAIL_CHARS, control.MAX_HOSTNAME_CHARS, control.MAX_DECIDED_BY_CHARS)
    assert longest <= 320


# ------------------------------------------------------------------------------ the producer


def test_reportable_event_makes_details_scalar_short_and_clean() -> None:
    event = reportable_event(
        7, 1767225600.5, "abc/../def", "received",
        {
            "rcpts": ["a@corp.example", "b@corp.example"],
            "nested": {"x": [1, 2]},
            "long": "가" * 400,
            "control": "line one\nline\u202etwo",
            "huge": 2**70,
            "nan": math.nan,
            "Bad-Key": 1,
            "tls": True,
            "none": None,
        },
    )  # fmt: skip
    assert event.mail_id == "abc_.._def"
    assert event.details == {
        "rcpts": "a@corp.example, b@corp.example",
        "nested": '{"x": [1, 2]}',
        "long": "가" * MAX_DETAIL_CHARS,
        "control": "line one\ufffdline\ufffdtwo",
        "huge": str(2**70),
        "nan": None,
        "tls": True,
        "none": None,
    }
    report = dataclasses.replace(QUIET_REPORT, events=(event,))
    assert _report(report).events == (event,)


def test_reportable_event_keeps_at_most_the_detail_key_limit() -> None:
    event = reportable_event(1, 1.0, "m", "Weird Step!", {f"k{n}": n for n in range(40)})
    assert len(event.details) == MAX_DETAIL_KEYS
    assert event.step == "unknown"


@FAST
@given(
    st.dictionaries(st.text(max_size=40), msgpack_values, max_size=40),
    st.text(max_size=100),
    st.text(max_size=40),
    st.floats(),
)
def test_whatever_an_audit_event_holds_its_reportable_form_decodes(
    details: dict[str, Any], mail_id: str, step: str, ts: float
) -> None:
    event = reportable_event(1, ts, mail_id, step, details)
    report = dataclasses.replace(QUIET_REPORT, events=(event,))
    assert _report(report).events == (event,)
    assert encoded_size(event) <= 24 * (33 + 4 * MAX_DETAIL_CHARS) + 200


def test_decision_and_policy_types_are_the_spec_names() -> None:
    assert control.CONTROL_TYPES == {
        "status-report": StatusReport, "policy": Policy, "decision": Decision,
    }  # fmt: skip
    assert control.DIRECTION_TYPES == {
        "inbound": frozenset({"status-report"}),
        "outbound": frozenset({"policy", "decision"}),
    }
