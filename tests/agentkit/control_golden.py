"""The control-payload test vectors, built here from fixed records (no clock, no randomness).

``python -m tests.agentkit.control_golden --write`` rewrites tests/protocol/vectors/control/ and
prints the Markdown block for docs/protocol.md ("Control payloads"). The tests
(tests/agentkit/test_control_spec.py) check that the files, the spec and the code agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from agentkit.control import (
    MAX_DECISION_BYTES,
    ControlRecord,
    Decision,
    DeliveryFigures,
    HostFigures,
    LinkFigures,
    Policy,
    ReceiverFigures,
    ReportedEvent,
    SenderFigures,
    SpoolFigures,
    StatusReport,
    encode_control,
)

VECTOR_DIR = Path(__file__).resolve().parents[1] / "protocol" / "vectors" / "control"
MADE_MS = 1767225600000  # 2026-01-01T00:00:00Z, as the chunk vectors
# Vectors up to this size are shown in the spec as hex; larger ones by size and SHA-256.
SHOWN_AS_HEX_BYTES = 2048

REPORT = StatusReport(
    made_ms=MADE_MS,
    interval_s=30,
    policy_version=0,
    host=HostFigures(
        hostname="mx-dmz-1",
        uptime_s=864000,
        cpu_count=2,
        cpu_percent=12.5,
        load=(0.25, 0.5, 0.75),
        memory_total=4294967296,
        memory_available=3221225472,
        disk_total=107374182400,
        disk_free=53687091200,
    ),
    spool=SpoolFigures(
        incoming=0, received=3, rendering=2, rendered=0, quarantine=1, oldest_waiting_s=4.5
    ),
    delivery=DeliveryFigures(queued=2, retrying=1, quarantine=0, oldest_waiting_s=620.0),
    link=LinkFigures(
        sender=SenderFigures(stream="inbound", epoch=7, last_seq=1041),
        receiver=ReceiverFigures(
            stream="outbound",
            epoch=3,
            highest_seq=88,
            gaps=(85,),
            gap_count=1,
            quarantined=2,
            dropped=0,
            last_seen_ms=MADE_MS - 5000,
            last_heartbeat_ms=MADE_MS - 5000,
            silent=False,
        ),
    ),
    events=(
        ReportedEvent(
            id=5001,
            ts=1767225590.25,
            mail_id="01JGZ8Q2M3N4P5Q6R7S8T9V0WX",
            step="received",
            details={
                "mail_from": "kim@partner.example",
                "rcpts": "lee@corp.example",
                "rcpt_count": 1,
                "bytes": 18231,
                "client": "203.0.113.9",
                "tls": True,
            },
        ),
        ReportedEvent(
            id=5002,
            ts=1767225591.5,
            mail_id="01JGZ8Q2M3N4P5Q6R7S8T9V0WX",
            step="quarantined",
            details={"reason": "render_timeout", "detail": "렌더링 시간 초과 (60 s)", "seq": None},
        ),
    ),
    events_behind=0,
)
QUIET_REPORT = StatusReport(
    made_ms=MADE_MS,
    interval_s=30,
    policy_version=0,
    host=HostFigures("outer", None, None, None, None, None, None, None, None),
    spool=SpoolFigures(0, 0, 0, 0, 0, None),
    delivery=DeliveryFigures(0, 0, 0, None),
    link=LinkFigures(sender=SenderFigures("inbound", 1, 0), receiver=None),
    events=(),
    events_behind=0,
)
# The outer agent's checkpoint of its event 5002, announced as its event 5003
# (agentkit.auditchain.checkpoint_details; the signature is a fixed stand-in: the codec
# carries it as text, the inner agent verifies it with the outer agent's key).
CHECKPOINT_REPORT = dataclasses.replace(
    QUIET_REPORT,
    events=(
        ReportedEvent(
            id=5003,
            ts=1767225595.0,
            mail_id="-",
            step="audit_checkpoint",
            details={
                "event": 5002,
                "link": "5f0c" * 16,
                "signed_at": 1767225595.0,
                "key": "a8b5e8c541ef0bc6",
                "signature": "9e" * 64,
            },
        ),
    ),
)
POLICY = Policy(
    version=3,
    made_ms=MADE_MS,
    rules='default_action = "allow"\n\n[[rules]]\nname = "주민등록번호 차단"\naction = "block"\n'
    'pii = ["rrn"]\n',
)
DECISION = Decision(mail_id="01JGZ8Q2M3N4P5Q6R7S8T9V0WX", action="release",
                    decided_by="head.park@corp.example", decided_at_ms=MADE_MS + 60_000,
                    policy_version=3)  # fmt: skip


@dataclass
class Vector:
    name: str  # path under vectors/control/, e.g. "valid/decision.msgpack"
    data: bytes
    description: str
    direction: str  # the stream it is read on: "inbound" or "outbound"
    code: str | None = None  # ControlRefused code for invalid ones
    record: ControlRecord | None = None  # what a valid one decodes to

    def index_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "file": self.name,
            "description": self.description,
            "direction": self.direction,
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }
        if self.code is None:
            entry["type"] = msgpack.unpackb(self.data)["type"]
        else:
            entry["code"] = self.code
        return entry


def _plain(record: ControlRecord) -> dict[str, Any]:
    plain: dict[str, Any] = msgpack.unpackb(encode_control(record))
    return plain


def _pack(document: object) -> bytes:
    return bytes(msgpack.packb(document, use_bin_type=True))


def _with(record: ControlRecord, path: str, value: object) -> bytes:
    """``record`` encoded with the value at a dotted ``path`` (``events.0.id``) replaced."""
    document = _plain(record)
    *parents, last = path.split(".")
    target: Any = document
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return _pack(document)


def _without(record: ControlRecord, key: str) -> bytes:
    document = _plain(record)
    del document[key]
    return _pack(document)


def valid_vectors() -> list[Vector]:
    return [
        Vector("valid/status-report.msgpack", encode_control(REPORT),
               "status report: host figures, queues, both link ends, two audit events",
               "inbound", record=REPORT),
        Vector("valid/status-report-quiet.msgpack", encode_control(QUIET_REPORT),
               "status report of a host that tells nothing, no outbound link, no events",
               "inbound", record=QUIET_REPORT),
        Vector("valid/status-report-checkpoint.msgpack", encode_control(CHECKPOINT_REPORT),
               "status report carrying one signed audit checkpoint as an audit_checkpoint "
               "event", "inbound", record=CHECKPOINT_REPORT),
        Vector("valid/policy.msgpack", encode_control(POLICY),
               "policy version 3: one inbound rule", "outbound", record=POLICY),
        Vector("valid/decision.msgpack", encode_control(DECISION),
               "decision: release one held mail", "outbound", record=DECISION),
    ]  # fmt: skip


def invalid_vectors() -> list[Vector]:
    decision = encode_control(DECISION)
    event = "events.0.details"
    return [
        Vector("invalid/not-msgpack.msgpack", b"\xc1", "the byte msgpack never uses",
               "outbound", "not_msgpack"),
        Vector("invalid/trailing-byte.msgpack", decision + b"\xc0",
               "a decision followed by a msgpack nil", "outbound", "not_msgpack"),
        Vector("invalid/not-a-map.msgpack", _pack([1, "decision"]), "an array, not a map",
               "outbound", "not_msgpack"),
        Vector("invalid/bin-field.msgpack", _with(DECISION, "decided_by", b"head.park"),
               "a decision whose decided_by is msgpack bin: no control type has binary "
               "fields", "outbound", "not_msgpack"),
        Vector("invalid/bad-version.msgpack", _with(DECISION, "v", 2), "version 2",
               "outbound", "bad_version"),
        Vector("invalid/version-true.msgpack", _with(DECISION, "v", True),
               "version true (a boolean is not the number 1)", "outbound", "bad_version"),
        Vector("invalid/unknown-type.msgpack", _with(DECISION, "type", "command"),
               "type command", "outbound", "unknown_type"),
        Vector("invalid/policy-on-inbound.msgpack", encode_control(POLICY),
               "a policy read on stream inbound", "inbound", "wrong_direction"),
        Vector("invalid/report-on-outbound.msgpack", encode_control(QUIET_REPORT),
               "a status report read on stream outbound", "outbound", "wrong_direction"),
        Vector("invalid/decision-too-large.msgpack",
               _with(DECISION, "decided_by", "a" * MAX_DECISION_BYTES),
               f"a decision of more than {MAX_DECISION_BYTES} bytes", "outbound", "too_large"),
        Vector("invalid/report-extra-key.msgpack", _with(QUIET_REPORT, "body", "Dear Kim"),
               "a status report with an extra key body", "inbound", "bad_field"),
        Vector("invalid/report-missing-key.msgpack", _without(QUIET_REPORT, "events_behind"),
               "a status report without events_behind", "inbound", "bad_field"),
        Vector("invalid/event-detail-list.msgpack",
               _with(REPORT, f"{event}.rcpts", ["lee@corp.example"]),
               "an audit detail that is a list, not a scalar", "inbound", "bad_field"),
        Vector("invalid/event-detail-map.msgpack",
               _with(REPORT, f"{event}.mail_from", {"text": "hello"}),
               "an audit detail that is a map, not a scalar", "inbound", "bad_field"),
        Vector("invalid/event-detail-too-long.msgpack",
               _with(REPORT, f"{event}.mail_from", "x" * 301),
               "an audit detail text of 301 characters", "inbound", "bad_field"),
        Vector("invalid/event-detail-control.msgpack",
               _with(REPORT, f"{event}.mail_from", "kim\u202e@partner.example"),
               "an audit detail with a bidi override character", "inbound", "bad_field"),
        Vector("invalid/event-detail-key.msgpack",
               _with(REPORT, f"{event}.Mail-From", "kim@partner.example"),
               "an audit detail key that is not a snake_case name", "inbound", "bad_field"),
        Vector("invalid/events-out-of-order.msgpack", _with(REPORT, "events.1.id", 5000),
               "audit event ids 5001, 5000", "inbound", "bad_field"),
        Vector("invalid/event-mail-id.msgpack", _with(REPORT, "events.0.mail_id", "../x/y"),
               "an audit event mail id outside [A-Za-z0-9._-]", "inbound", "bad_field"),
        Vector("invalid/cpu-nan.msgpack", _with(REPORT, "host.cpu_percent", float("nan")),
               "cpu_percent NaN", "inbound", "bad_field"),
        Vector("invalid/count-bool.msgpack", _with(REPORT, "spool.received", True),
               "a spool count that is a boolean", "inbound", "bad_field"),
        Vector("invalid/count-negative.msgpack", _with(REPORT, "delivery.queued", -1),
               "a negative queue count", "inbound", "bad_field"),
        Vector("invalid/decision-action.msgpack", _with(DECISION, "action", "approve"),
               "a decision with action approve (release or drop only)", "outbound",
               "bad_field"),
        Vector("invalid/policy-version-zero.msgpack", _with(POLICY, "version", 0),
               "a policy of version 0 (versions start at 1)", "outbound", "bad_field"),
    ]  # fmt: skip


def all_vectors() -> list[Vector]:
    return valid_vectors() + invalid_vectors()


def index_json(vectors: list[Vector]) -> str:
    return json.dumps([v.index_entry() for v in vectors], indent=1, ensure_ascii=False) + "\n"


def shown(vector: Vector) -> str:
    """The vector as the spec shows it: hex, or size and SHA-256 when large."""
    if len(vector.data) > SHOWN_AS_HEX_BYTES:
        return f"({len(vector.data)} bytes, SHA-256 `{hashlib.sha256(vector.data).hexdigest()}`)"
    text = vector.data.hex()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)] or [""]
    return "```hex\n" + "\n".join(lines) + "\n```"


def markdown(vectors: list[Vector]) -> str:
    blocks = []
    for vector in vectors:
        outcome = f"`{vector.code}`" if vector.code else "valid"
        blocks.append(
            f"<!-- control vector: {vector.name} -->\n**`{vector.name}`** — "
            f"{vector.description} (read on `{vector.direction}`) → {outcome}\n\n"
            f"{shown(vector)}\n"
        )
    return "\n".join(blocks)


def write() -> None:
    vectors = all_vectors()
    for vector in vectors:
        path = VECTOR_DIR / vector.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(vector.data)
    (VECTOR_DIR / "index.json").write_text(index_json(vectors), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the vector files")
    args = parser.parse_args()
    if args.write:
        write()
    print(markdown(all_vectors()))


if __name__ == "__main__":
    main()
