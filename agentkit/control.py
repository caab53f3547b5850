"""Control payloads: the content of CONTROL bundles (protocol kind 3), as versioned msgpack.

Three types, each a flat msgpack map ``{"v": 1, "type": ..., <the type's keys>}`` (the
layouts, limits and verification rules are in docs/protocol.md, "Control payloads"):

* ``status-report`` (outer → inner, stream ``inbound``): the outer agent's host figures, its
  spool and delivery queue, its link ends, the inbound policy version it enforces, and its
  audit events since the previous report;
* ``policy`` (inner → outer, stream ``outbound``): a versioned inbound rule set;
* ``decision`` (inner → outer, stream ``outbound``): release or drop one held inbound mail.

The other side's bytes are decoded as hostile, the house way (``mailsafe.payload``): the size
is checked before decoding, msgpack is read with limits and no trailing bytes, unknown keys,
missing keys, wrong types and out-of-range values are refused, and a stream accepts only the
types meant for its direction. Any input decodes or raises :class:`ControlRefused`.

Nothing here can carry mail: no type has a binary field (msgpack ``bin`` is refused outright),
a status report's strings are short (hostnames, stream names, audit details of at most
``MAX_DETAIL_CHARS`` characters), and audit details are scalars only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgpack

from protocol.chunk import STREAM_PATTERN

__all__ = [
    "CONTROL_TYPES",
    "CONTROL_VERSION",
    "DIRECTION_TYPES",
    "MAX_DECISION_BYTES",
    "MAX_DETAIL_CHARS",
    "MAX_DETAIL_KEYS",
    "MAX_EVENTS_PER_REPORT",
    "MAX_EVENT_BYTES_PER_REPORT",
    "MAX_POLICY_BYTES",
    "MAX_REPORT_BYTES",
    "MAX_RULES_BYTES",
    "ControlRecord",
    "ControlRefused",
    "Decision",
    "DeliveryFigures",
    "Direction",
    "HostFigures",
    "LinkFigures",
    "Policy",
    "ReceiverFigures",
    "ReportedEvent",
    "SenderFigures",
    "SpoolFigures",
    "StatusReport",
    "decode_control",
    "encode_control",
    "encoded_size",
    "reportable_event",
]

CONTROL_VERSION: Final = 1

# ------------------------------------------------------------------------------------ limits

# N: a report's events. At the default interval (30 s) this keeps up with 6 events a second,
# two mails a second of the outer agent's three events each; a backlog is sent in catch-up
# reports one second apart (outer_agent.report).
MAX_EVENTS_PER_REPORT: Final = 200
# M: the encoded events of one report; the producer stops adding events before passing it.
MAX_EVENT_BYTES_PER_REPORT: Final = 256 * 1024
# A whole report: M plus room for the figures (under 2 KiB) and headroom. Checked first.
MAX_REPORT_BYTES: Final = MAX_EVENT_BYTES_PER_REPORT + 64 * 1024
# The rules file limit of mailsafe.policy (MAX_RULES_FILE_BYTES), as UTF-8.
MAX_RULES_BYTES: Final = 1 << 20
# A policy: its rules plus the few other keys.
MAX_POLICY_BYTES: Final = MAX_RULES_BYTES + 4096
# A decision has five short fields.
MAX_DECISION_BYTES: Final = 4096
# An audit event's details: the outer agent's widest event ("received") has ten keys.
MAX_DETAIL_KEYS: Final = 24
# A detail's text: as long as the inner agent's searchable audit fields (AUDIT_FIELD_CHARS).
MAX_DETAIL_CHARS: Final = 300
# Integers that survive JSON (the audit store) and JavaScript (the console) exactly.
MAX_SAFE_INT: Final = 2**53 - 1
# Unsigned figures (bytes, counts, sequence numbers, milliseconds).
MAX_UINT: Final = 2**63 - 1
# Gaps listed by number in a report (all are counted in gap_count).
MAX_GAPS_LISTED: Final = 64
# A report interval longer than a day is not a heartbeat of anything.
MAX_INTERVAL_S: Final = 86_400
# Who decided: an account name or an e-mail address (RFC 5321 path limit).
MAX_DECIDED_BY_CHARS: Final = 320
# Host names (RFC 1035 limit).
MAX_HOSTNAME_CHARS: Final = 253
# Larger CPU counts, loads and ages are not real.
MAX_CPUS: Final = 65_536
MAX_LOAD: Final = 1e6
MAX_AGE_S: Final = 1e10

# Letters, digits and ``._-``: the alphabet of mail ids everywhere (inner_agent.notify).
MAIL_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Audit steps and detail keys are short snake_case names.
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
# C0 and C1 controls, DEL, and the invisible formatting characters (bidi overrides, zero-width,
# BOM): none belongs in a status figure, and each could disguise text shown in the console.
_INVISIBLE = (
    "\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb"
)
_CONTROL_CHARS: Final = re.compile(f"[\x00-\x1f{_INVISIBLE}]")
# The same but for tab, LF and CR: a rules file has lines.
_CONTROL_CHARS_BUT_LINES: Final = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_INVISIBLE}]")

Direction = Literal["inbound", "outbound"]
Scalar = str | int | float | bool | None


class ControlRefused(Exception):
    """A control payload did not decode under the limits; ``code`` says at which rule.

    Codes: ``too_large``, ``not_msgpack``, ``bad_version``, ``unknown_type``,
    ``wrong_direction``, ``bad_field`` (docs/protocol.md, "Control payloads").
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# ------------------------------------------------------------------------------------ types


@dataclass(frozen=True)
class HostFigures:
    """The reporting host; None where the host does not tell (not Linux, a container)."""

    hostname: str
    uptime_s: int | None
    cpu_count: int | None
    cpu_percent: float | None  # all CPUs, since the previous report (the first: since boot)
    load: tuple[float, float, float] | None  # 1, 5 and 15 minute load averages
    memory_total: int | None  # bytes
    memory_available: int | None  # bytes
    disk_total: int | None  # bytes of the spool's file system
    disk_free: int | None  # bytes available to the agent there


@dataclass(frozen=True)
class SpoolFigures:
    """Inbound mails per spool state (outer_agent.spool) and the oldest not yet published."""

    incoming: int
    received: int
    rendering: int
    rendered: int
    quarantine: int
    oldest_waiting_s: float | None


@dataclass(frozen=True)
class DeliveryFigures:
    """The outbound delivery queue: waiting mails, those already tried, the quarantined."""

    queued: int
    retrying: int
    quarantine: int
    oldest_waiting_s: float | None


@dataclass(frozen=True)
class SenderFigures:
    stream: str
    epoch: int
    last_seq: int


@dataclass(frozen=True)
class ReceiverFigures:
    stream: str
    epoch: int
    highest_seq: int
    gaps: tuple[int, ...]  # the first MAX_GAPS_LISTED missing seqs
    gap_count: int
    quarantined: int  # refused files kept in quarantine, all reasons
    dropped: int  # refused files deleted over the quarantine's budget
    last_seen_ms: int  # 0: never
    last_heartbeat_ms: int  # 0: never
    silent: bool


@dataclass(frozen=True)
class LinkFigures:
    sender: SenderFigures
    receiver: ReceiverFigures | None  # None: this agent reads no link


@dataclass(frozen=True)
class ReportedEvent:
    """One audit event of the reporting agent; ``id`` is its row id there (the import key)."""

    id: int
    ts: float
    mail_id: str
    step: str
    details: dict[str, Scalar]


@dataclass(frozen=True)
class StatusReport:
    made_ms: int
    interval_s: int  # the next report is due within this; three missed ones make it stale
    policy_version: int  # the inbound policy enforced; 0: none (until issue 17)
    host: HostFigures
    spool: SpoolFigures
    delivery: DeliveryFigures
    link: LinkFigures
    events: tuple[ReportedEvent, ...]
    events_behind: int  # at most this many newer events wait for the next reports


@dataclass(frozen=True)
class Policy:
    version: int  # grows with every new rule set; the receiver keeps the highest
    made_ms: int
    rules: str  # the inbound rules file (TOML, mailsafe.policy's language)


@dataclass(frozen=True)
class Decision:
    mail_id: str  # the held mail, as the outer agent named it
    action: Literal["release", "drop"]
    decided_by: str
    decided_at_ms: int
    policy_version: int  # the policy under which the mail was held


ControlRecord = StatusReport | Policy | Decision

CONTROL_TYPES: Final[dict[str, type]] = {
    "status-report": StatusReport,
    "policy": Policy,
    "decision": Decision,
}
DIRECTION_TYPES: Final[dict[str, frozenset[str]]] = {
    "inbound": frozenset({"status-report"}),  # outer → inner
    "outbound": frozenset({"policy", "decision"}),  # inner → outer
}
_TYPE_NAMES: Final = {cls: name for name, cls in CONTROL_TYPES.items()}
_MAX_BYTES: Final = {
    "status-report": MAX_REPORT_BYTES,
    "policy": MAX_POLICY_BYTES,
    "decision": MAX_DECISION_BYTES,
}

# ------------------------------------------------------------------------------------ encode


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def encode_control(record: ControlRecord) -> bytes:
    """The bundle content of one control record (keys in the spec's order)."""
    plain = typing.cast(dict[str, object], _plain(record))  # a dataclass gives a dict
    document = {"v": CONTROL_VERSION, "type": _TYPE_NAMES[type(record)], **plain}
    return bytes(msgpack.packb(document, use_bin_type=True))


def encoded_size(event: ReportedEvent) -> int:
    """Bytes ``event`` takes in a report (what counts against MAX_EVENT_BYTES_PER_REPORT)."""
    return len(msgpack.packb(_plain(event), use_bin_type=True))


def reportable_event(
    event_id: int, ts: float, mail_id: str, step: str, details: Mapping[str, Any]
) -> ReportedEvent:
    """An audit event made fit for a report: details cut to scalars the decoder accepts.

    Lists of scalars are joined with ", ", nested objects become JSON text, texts are cut to
    MAX_DETAIL_CHARS with controls replaced by U+FFFD, integers beyond 2**53 become text, keys
    that are no snake_case name (or past MAX_DETAIL_KEYS) are left out.
    """
    kept: dict[str, Scalar] = {}
    for key, value in details.items():
        if len(kept) == MAX_DETAIL_KEYS:
            break
        if isinstance(key, str) and NAME_PATTERN.fullmatch(key):
            kept[key] = _scalar(value)
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", mail_id)[:64] or "_"
    step = step if NAME_PATTERN.fullmatch(step) else "unknown"
    when = ts if math.isfinite(ts) and 0 <= ts <= MAX_AGE_S else 0.0
    return ReportedEvent(event_id, float(when), safe_id, step, kept)


def _scalar(value: object) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INT else _text(str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple) and all(_is_flat(v) for v in value):
        return _text(", ".join("" if v is None else str(v) for v in value))
    if isinstance(value, str):
        return _text(value)
    return _text(json.dumps(value, ensure_ascii=False, default=str))


def _is_flat(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _text(value: str) -> str:
    return _CONTROL_CHARS.sub("\ufffd", value[:MAX_DETAIL_CHARS])


# ------------------------------------------------------------------------------------ decode

Check = Callable[[object, str], Any]
_T = TypeVar("_T")


def _bad(where: str, why: str) -> ControlRefused:
    return ControlRefused("bad_field", f"{where} {why}")


def _uint(maximum: int = MAX_UINT, minimum: int = 0) -> Check:
    def check(untrusted: object, where: str) -> int:
        if type(untrusted) is not int or not minimum <= untrusted <= maximum:
            raise _bad(where, f"is not an integer in {minimum}..{maximum}")
        return untrusted

    return check


def _number(maximum: float) -> Check:
    def check(untrusted: object, where: str) -> float:
        if type(untrusted) not in (int, float):
            raise _bad(where, "is not a number")
        value = float(untrusted)  # type: ignore[arg-type]  # int or float, checked above
        if not (math.isfinite(value) and 0 <= value <= maximum):
            raise _bad(where, f"is not a finite number in 0..{maximum:g}")
        return value

    return check


def _text_check(
    max_chars: int, pattern: re.Pattern[str] | None = None, *, lines: bool = False
) -> Check:
    """A text of at most ``max_chars`` characters, matching ``pattern`` if given, with no
    control or invisible formatting character (``lines``: tabs and line ends allowed)."""
    refused = _CONTROL_CHARS_BUT_LINES if lines else _CONTROL_CHARS

    def check(untrusted: object, where: str) -> str:
        if type(untrusted) is not str or len(untrusted) > max_chars:
            raise _bad(where, f"is not a text of at most {max_chars} characters")
        if pattern is not None and not pattern.fullmatch(untrusted):
            raise _bad(where, f"does not match {pattern.pattern}")
        if refused.search(untrusted):
            raise _bad(where, "holds a control or invisible formatting character")
        return untrusted

    return check


def _flag(untrusted: object, where: str) -> bool:
    if type(untrusted) is not bool:
        raise _bad(where, "is not true or false")
    return untrusted


def _choice(*values: str) -> Check:
    def check(untrusted: object, where: str) -> str:
        if type(untrusted) is not str or untrusted not in values:
            raise _bad(where, f"is not one of {', '.join(values)}")
        return untrusted

    return check


def _optional(inner: Check) -> Check:
    def check(untrusted: object, where: str) -> Any:
        return None if untrusted is None else inner(untrusted, where)

    return check


def _array(item: Check, max_items: int, *, exactly: int | None = None) -> Check:
    def check(untrusted: object, where: str) -> tuple[Any, ...]:
        if type(untrusted) is not list or len(untrusted) > max_items:
            raise _bad(where, f"is not a list of at most {max_items} items")
        if exactly is not None and len(untrusted) != exactly:
            raise _bad(where, f"does not have exactly {exactly} items")
        return tuple(item(value, f"{where}[{n}]") for n, value in enumerate(untrusted))

    return check


_DETAIL_TEXT: Final = _text_check(MAX_DETAIL_CHARS)


def _detail_value(untrusted: object, where: str) -> Scalar:
    if untrusted is None or type(untrusted) is bool:
        return untrusted
    if type(untrusted) is int:
        if abs(untrusted) > MAX_SAFE_INT:
            raise _bad(where, "is an integer beyond 2**53")
        return untrusted
    if type(untrusted) is float:
        if not math.isfinite(untrusted):
            raise _bad(where, "is not a finite number")
        return untrusted
    if type(untrusted) is not str:
        raise _bad(where, "is not a scalar (a text, a number, true, false or nil)")
    return _DETAIL_TEXT(untrusted, where)  # type: ignore[no-any-return]


def _details(untrusted: object, where: str) -> dict[str, Scalar]:
    if type(untrusted) is not dict or len(untrusted) > MAX_DETAIL_KEYS:
        raise _bad(where, f"is not a map of at most {MAX_DETAIL_KEYS} keys")
    details: dict[str, Scalar] = {}
    for key, value in untrusted.items():
        if type(key) is not str or not NAME_PATTERN.fullmatch(key):
            raise _bad(where, f"has a key that is not a snake_case name: {str(key)[:40]!r}")
        details[key] = _detail_value(value, f"{where}.{key}")
    return details


def _record(cls: type[_T]) -> Check:
    def check(untrusted: object, where: str) -> _T:
        return _decode_fields(cls, untrusted, where)

    return check


def _events(untrusted: object, where: str) -> tuple[ReportedEvent, ...]:
    events = _array(_record(ReportedEvent), MAX_EVENTS_PER_REPORT)(untrusted, where)
    ids = [event.id for event in events]
    if any(later <= earlier for earlier, later in itertools.pairwise(ids)):
        raise _bad(where, "are not in strictly increasing id order")
    return events  # type: ignore[no-any-return]


_STREAM = _text_check(32, STREAM_PATTERN)
_AGE = _optional(_number(MAX_AGE_S))
_SCHEMAS: Final[dict[type, dict[str, Check]]] = {
    HostFigures: {
        "hostname": _text_check(MAX_HOSTNAME_CHARS),
        "uptime_s": _optional(_uint()),
        "cpu_count": _optional(_uint(MAX_CPUS, minimum=1)),
        "cpu_percent": _optional(_number(100.0)),
        "load": _optional(_array(_number(MAX_LOAD), 3, exactly=3)),
        "memory_total": _optional(_uint()),
        "memory_available": _optional(_uint()),
        "disk_total": _optional(_uint()),
        "disk_free": _optional(_uint()),
    },
    SpoolFigures: {
        "incoming": _uint(),
        "received": _uint(),
        "rendering": _uint(),
        "rendered": _uint(),
        "quarantine": _uint(),
        "oldest_waiting_s": _AGE,
    },
    DeliveryFigures: {
        "queued": _uint(),
        "retrying": _uint(),
        "quarantine": _uint(),
        "oldest_waiting_s": _AGE,
    },
    SenderFigures: {"stream": _STREAM, "epoch": _uint(), "last_seq": _uint()},
    ReceiverFigures: {
        "stream": _STREAM,
        "epoch": _uint(),
        "highest_seq": _uint(),
        "gaps": _array(_uint(), MAX_GAPS_LISTED),
        "gap_count": _uint(),
        "quarantined": _uint(),
        "dropped": _uint(),
        "last_seen_ms": _uint(),
        "last_heartbeat_ms": _uint(),
        "silent": _flag,
    },
    LinkFigures: {
        "sender": _record(SenderFigures),
        "receiver": _optional(_record(ReceiverFigures)),
    },
    ReportedEvent: {
        "id": _uint(MAX_SAFE_INT, minimum=1),
        "ts": _number(MAX_AGE_S),
        "mail_id": _text_check(64, MAIL_ID_PATTERN),
        "step": _text_check(32, NAME_PATTERN),
        "details": _details,
    },
    StatusReport: {
        "made_ms": _uint(MAX_SAFE_INT),
        "interval_s": _uint(MAX_INTERVAL_S, minimum=1),
        "policy_version": _uint(MAX_SAFE_INT),
        "host": _record(HostFigures),
        "spool": _record(SpoolFigures),
        "delivery": _record(DeliveryFigures),
        "link": _record(LinkFigures),
        "events": _events,
        "events_behind": _uint(),
    },
    Policy: {
        "version": _uint(MAX_SAFE_INT, minimum=1),
        "made_ms": _uint(MAX_SAFE_INT),
        "rules": _text_check(MAX_RULES_BYTES, lines=True),
    },
    Decision: {
        "mail_id": _text_check(64, MAIL_ID_PATTERN),
        "action": _choice("release", "drop"),
        "decided_by": _text_check(MAX_DECIDED_BY_CHARS),
        "decided_at_ms": _uint(MAX_SAFE_INT),
        "policy_version": _uint(MAX_SAFE_INT),
    },
}


def _decode_fields(cls: type[_T], untrusted: object, where: str) -> _T:
    schema = _SCHEMAS[cls]
    if type(untrusted) is not dict:
        raise _bad(where, "is not a map")
    _check_keys(untrusted, schema.keys(), where)
    values = {key: check(untrusted[key], f"{where}.{key}") for key, check in schema.items()}
    return cls(**values)


def _check_keys(untrusted: dict[object, object], expected: Any, where: str) -> None:
    keys = set(untrusted)
    if keys != set(expected):
        unknown = sorted(str(k)[:40] for k in keys - set(expected))
        missing = sorted(set(expected) - keys)
        raise _bad(where, f"has unknown keys {unknown} and lacks keys {missing}")


def decode_control(untrusted: bytes, direction: Direction) -> ControlRecord:
    """Decode a control payload received on stream ``direction``; raises ControlRefused."""
    allowed = DIRECTION_TYPES[direction]
    limit = max(_MAX_BYTES[name] for name in allowed)
    if not isinstance(untrusted, bytes | bytearray | memoryview):
        raise ControlRefused("not_msgpack", "the payload is not bytes")
    if len(untrusted) > limit:
        raise ControlRefused("too_large", f"{len(untrusted)} bytes, over the {limit} limit")
    document = _unpack(bytes(untrusted), direction)
    if document.get("v") != CONTROL_VERSION or type(document.get("v")) is not int:
        raise ControlRefused("bad_version", f"version {str(document.get('v'))[:20]!r} is not 1")
    name = document.get("type")
    if type(name) is not str or name not in CONTROL_TYPES:
        raise ControlRefused("unknown_type", f"type {str(name)[:40]!r} is not a control type")
    if name not in allowed:
        raise ControlRefused("wrong_direction", f"a {name} is not sent on stream {direction}")
    if len(untrusted) > _MAX_BYTES[name]:
        raise ControlRefused("too_large", f"a {name} of {len(untrusted)} bytes is over the "
                                          f"{_MAX_BYTES[name]} limit")  # fmt: skip
    fields = {k: v for k, v in document.items() if k not in ("v", "type")}
    return _decode_fields(CONTROL_TYPES[name], fields, name)


def _unpack(untrusted: bytes, direction: Direction) -> dict[object, object]:
    """msgpack with limits: no bin, no extension types, short maps, no trailing bytes."""
    longest_text = MAX_RULES_BYTES if direction == "outbound" else MAX_DETAIL_CHARS * 4
    try:
        document = msgpack.unpackb(
            untrusted,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=longest_text,
            max_bin_len=0,
            max_array_len=MAX_EVENTS_PER_REPORT,
            max_map_len=max(MAX_DETAIL_KEYS, 16),
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as exc:
        raise ControlRefused(
            "not_msgpack", f"not one msgpack value ({type(exc).__name__})"
        ) from None
    except RecursionError:
        raise ControlRefused("not_msgpack", "nested too deeply") from None
    if type(document) is not dict:
        raise ControlRefused("not_msgpack", "the payload is not a map")
    return document
