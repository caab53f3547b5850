"""Read sender authentication in child processes with memory, CPU and wall-clock limits.

DKIM verification (dkimpy) parses the whole mail and canonicalises its body: measured in one
process, a 2.4 MiB mail of folded header lines took 18 s of CPU and a 25 MiB body of short
lines 1.4 GB of memory. The outer agent therefore never runs it on internet mail in its own
process: :class:`IsolatedSenderAuth` does both steps of :mod:`mailsafe.senderauth` in a
``python -m mailsafe.senderauth.isolated`` child (:class:`mailsafe.limited.ChildPool`). A
child that dies, runs out of time or hits a limit costs that mail's check only: its DKIM
result is ``permerror`` with the reason, and the child is replaced.

Only small values cross. Frames (see :mod:`mailsafe.limited`)::

    parent -> child   b"F" + u32 length + JSON {"authserv_id"} + the mail's top  read_facts
                      b"D" + u32 length + JSON {"selector", "domain", "record"} + mail
                                                                                  check_dkim
    child -> parent   b"F" + JSON facts | b"D" + JSON check | b"E" + reason code

The parent checks every value of a reply (shape, types, DNS names, words, reason codes)
before it uses it: anything else is the reason ``unexpected``.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any, Final

from mailsafe.limited import ChildFailed, ChildPool, serve_frames, set_limits
from mailsafe.mime import MAX_HEADER_BLOCK_BYTES
from mailsafe.senderauth import (
    DKIM_REASONS,
    MAX_DNS_NAME,
    MAX_KEY_RECORD_BYTES,
    MAX_MAIL_BYTES,
    DkimCheck,
    DkimKey,
    SenderFacts,
    TrustedResults,
    check_dkim,
    dns_name,
    read_facts,
    valid_word,
)

__all__ = [
    "AUTH_CPU_SECONDS",
    "AUTH_MEMORY_BYTES",
    "AUTH_WALL_SECONDS",
    "IsolatedSenderAuth",
]

MIB = 1 << 20
# CPU seconds one check may use: a 25 MiB mail of base64 lines hashes in ~0.5 s, the largest
# mail the parser takes (64 MiB) in ~1.5 s; 10 s is a runaway.
AUTH_CPU_SECONDS: Final = 10
# Wall-clock seconds per check (a child just started first imports dkimpy, ~0.3 s); the CPU
# limit stops a busy child first, this one a stuck one.
AUTH_WALL_SECONDS: Final = 15.0
# Address space of a child: Python with dkimpy takes ~60 MiB; a 25 MiB base64 mail is hashed
# in ~200 MiB. A mail that needs more (short lines multiply dkimpy's copies) is refused.
AUTH_MEMORY_BYTES: Final = 1024 * MIB
# A reply is a few names and words.
MAX_REPLY_BYTES: Final = 8 * 1024
# A job is a mail (or its top) and a few names, a key record among them.
MAX_PARAMS_BYTES: Final = 4 * MAX_DNS_NAME + 2 * MAX_KEY_RECORD_BYTES + 1024
MAX_JOB_BYTES: Final = 1 + 4 + MAX_PARAMS_BYTES + MAX_MAIL_BYTES
_PARAMS_LENGTH: Final = struct.Struct(">I")
# Codes of the child's own failures as the parent sees them (mailsafe.limited's reasons).
_CHILD_REASONS: Final = {"timeout": "timeout", "cpu_limit": "cpu_limit",
                         "memory_limit": "memory_limit"}  # fmt: skip


class IsolatedSenderAuth:
    """The :class:`mailsafe.senderauth.SenderAuthReader` the agent uses: both steps in
    ``processes`` children with limits; thread-safe; never raises on input."""

    def __init__(
        self,
        processes: int = 1,
        *,
        cpu_seconds: int = AUTH_CPU_SECONDS,
        memory_bytes: int = AUTH_MEMORY_BYTES,
        wall_seconds: float = AUTH_WALL_SECONDS,
    ) -> None:
        self.wall_seconds = wall_seconds
        command = [sys.executable, "-m", "mailsafe.senderauth.isolated", str(cpu_seconds),
                   str(memory_bytes)]  # fmt: skip
        self._pool = ChildPool(command, processes)

    def read_facts(self, raw: bytes, authserv_id: str | None) -> SenderFacts:
        params = {"authserv_id": authserv_id}
        reply = self._run(b"F", params, raw[: MAX_HEADER_BLOCK_BYTES + 1])
        if isinstance(reply, str):
            return SenderFacts(failure=reply)
        try:
            return decode_facts(reply)
        except (ValueError, TypeError, KeyError):
            return SenderFacts(failure="unexpected")

    def check_dkim(self, raw: bytes, key: DkimKey, key_record: str) -> DkimCheck:
        if len(raw) > MAX_MAIL_BYTES:
            return DkimCheck.refused("mail_too_big")
        if len(key_record) > MAX_KEY_RECORD_BYTES:
            return DkimCheck.refused("key_too_big")
        params = {"selector": key.selector, "domain": key.domain, "record": key_record}
        reply = self._run(b"D", params, raw)
        if isinstance(reply, str):
            return DkimCheck.refused(reply)
        try:
            return decode_check(reply, key)
        except (ValueError, TypeError, KeyError):
            return DkimCheck.refused("unexpected")

    def _run(self, kind: bytes, params: dict[str, Any], mail: bytes) -> bytes | str:
        """The child's JSON reply to one job, or the reason code of its failure."""
        encoded = json.dumps(params).encode()
        job = kind + _PARAMS_LENGTH.pack(len(encoded)) + encoded + mail
        try:
            untrusted_reply = self._pool.run(job, self.wall_seconds, MAX_REPLY_BYTES)
        except ChildFailed as failure:
            return _CHILD_REASONS.get(failure.reason, "worker_crash")
        if untrusted_reply[:1] == b"E":
            code = untrusted_reply[1:65].decode("ascii", "replace")
            return code if code in DKIM_REASONS else "unexpected"
        if untrusted_reply[:1] != kind:
            return "unexpected"
        return untrusted_reply[1:]

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> IsolatedSenderAuth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- replies


def encode_facts(facts: SenderFacts) -> bytes:
    key = facts.first_key
    trusted = facts.trusted
    return json.dumps({
        "signatures": facts.signatures,
        "key": [key.selector, key.domain] if key else None,
        "problem": facts.dkim_problem,
        "author": facts.author_domain,
        "trusted": [trusted.spf, trusted.dkim, trusted.dmarc] if trusted else None,
    }).encode()  # fmt: skip


def decode_facts(untrusted: bytes) -> SenderFacts:
    """A child's facts, every value checked; ValueError, TypeError or KeyError otherwise."""
    fields = json.loads(untrusted)
    if not isinstance(fields, dict) or set(fields) != {
        "signatures", "key", "problem", "author", "trusted"
    }:  # fmt: skip
        raise ValueError("not the fields of a facts reply")
    signatures = fields["signatures"]
    if type(signatures) is not int or not 0 <= signatures <= MAX_HEADER_BLOCK_BYTES:
        raise ValueError("signature count out of range")
    problem = fields["problem"]
    if problem != "" and problem not in DKIM_REASONS:
        raise ValueError("unknown reason code")
    return SenderFacts(
        signatures=signatures,
        first_key=_key(fields["key"]),
        dkim_problem=problem,
        author_domain=_name(fields["author"]) if fields["author"] is not None else None,
        trusted=_trusted(fields["trusted"]),
    )


def encode_check(check: DkimCheck) -> bytes:
    return json.dumps({"result": check.result, "domain": check.domain,
                       "reason": check.reason}).encode()  # fmt: skip


def decode_check(untrusted: bytes, key: DkimKey) -> DkimCheck:
    """A child's DKIM check, every value checked; a pass must be for the key asked about."""
    fields = json.loads(untrusted)
    if not isinstance(fields, dict) or set(fields) != {"result", "domain", "reason"}:
        raise ValueError("not the fields of a check reply")
    result, domain, reason = fields["result"], fields["domain"], fields["reason"]
    if result == "pass" and domain == key.domain and reason == "":
        return DkimCheck("pass", domain=key.domain)
    if result in ("fail", "permerror") and reason in DKIM_REASONS:
        return DkimCheck.refused(reason)
    raise ValueError("not a check result")


def _name(untrusted: object) -> str:
    name = dns_name(untrusted) if isinstance(untrusted, str) else None
    if name is None or name != untrusted:
        raise ValueError("not a DNS name")
    return name


def _key(untrusted: object) -> DkimKey | None:
    if untrusted is None:
        return None
    if not isinstance(untrusted, list) or len(untrusted) != 2:
        raise ValueError("not a key")
    return DkimKey(_name(untrusted[0]), _name(untrusted[1]))


def _trusted(untrusted: object) -> TrustedResults | None:
    if untrusted is None:
        return None
    if not isinstance(untrusted, list) or len(untrusted) != 3:
        raise ValueError("not three results")
    if not all(isinstance(word, str) and valid_word(word) for word in untrusted):
        raise ValueError("not result words")
    return TrustedResults(*untrusted)


# --------------------------------------------------------------------------- child side


def _answer(job: bytes) -> bytes:
    try:
        kind = job[:1]
        (size,) = _PARAMS_LENGTH.unpack(job[1:5])
        params = json.loads(job[5 : 5 + size])
        mail = job[5 + size :]
        if kind == b"F":
            return b"F" + encode_facts(read_facts(mail, params["authserv_id"]))
        key = DkimKey(params["selector"], params["domain"])
        return b"D" + encode_check(check_dkim(mail, key, params["record"]))
    except MemoryError:
        return b"Ememory_limit"
    except Exception:  # noqa: BLE001 - a reader bug on hostile input costs this mail's check
        return b"Everifier_error"


def _main(argv: list[str]) -> None:
    cpu_seconds, memory_bytes = argv
    set_limits(int(memory_bytes) or None)
    serve_frames(_answer, int(cpu_seconds), MAX_JOB_BYTES)


if __name__ == "__main__":
    _main(sys.argv[1:])
