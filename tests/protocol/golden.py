"""The golden test vectors: built here from fixed keys, times and bundles (no randomness).

``python -m tests.protocol.golden --write`` rewrites tests/protocol/vectors/ and prints the
Markdown block for docs/protocol.md. The tests check the files, the spec and the code agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from protocol.armor import armor
from protocol.bundle import BundleMeta, build_chunks, encode_heartbeat
from protocol.chunk import ChunkHeader, Kind, encode_chunk, encode_header, sign_chunk
from protocol.keys import EncryptionKey, SigningKey
from protocol.limits import PREFIX_LEN

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"

KEY_A = SigningKey.from_seed(bytes(range(32)))  # the vector signing key
KEY_B = SigningKey.from_seed(bytes(range(32, 64)))  # the "next" key of a rotation
RECIPIENT = EncryptionKey.from_raw(bytes(range(64, 96)))  # receiver's X25519 key
EPHEMERAL = EncryptionKey.from_raw(bytes(range(96, 128)))  # fixed "fresh" key for the vector
OTHER_RECIPIENT = EncryptionKey.from_raw(bytes(range(128, 160)))

STREAM = "inbound"
CREATED_MS = 1767225600000  # 2026-01-01T00:00:00Z
NOW_MS = CREATED_MS + 60_000  # the receiver's clock when checking the vectors
BUNDLE_ID = bytes(range(16))
BUNDLE = "maildiode golden bundle — 한글 ✓\n".encode()  # 40 bytes: two chunks at csize 32
CHUNK_SIZE = 32

KEYS = {"A": KEY_A, "B": KEY_B}
DECRYPT_KEYS = {"R": RECIPIENT, "O": OTHER_RECIPIENT}


@dataclass
class Vector:
    name: str  # path under vectors/, e.g. "valid/data-0.mdc"
    data: bytes
    description: str
    reason: str | None = None  # expected refusal code; None for valid
    expect: dict[str, Any] = field(default_factory=dict)  # header fields / payload of valid ones
    context: dict[str, Any] = field(default_factory=dict)  # receiver settings for the check

    def index_entry(self) -> dict[str, Any]:
        context = {"keyring": ["A"], "decrypt_key": None, "stream": STREAM, "now_ms": NOW_MS}
        context.update(self.context)
        entry: dict[str, Any] = {
            "file": self.name,
            "description": self.description,
            "context": context,
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }
        if self.reason is None:
            entry["expect"] = self.expect
        else:
            entry["reason"] = self.reason
        return entry


def _meta(kind: Kind = Kind.DATA, seq: int = 1, bundle_id: bytes = BUNDLE_ID) -> BundleMeta:
    return BundleMeta(STREAM, 1, seq, bundle_id, CREATED_MS, kind)


def _header(**changes: Any) -> ChunkHeader:
    values: dict[str, Any] = {
        "stream": STREAM, "epoch": 1, "seq": 7, "bundle": bytes(range(16, 32)), "index": 0,
        "count": 1, "csize": 32, "blen": 5, "bsha": hashlib.sha256(b"hello").digest(),
        "created": CREATED_MS, "kind": Kind.DATA,
    }  # fmt: skip
    values.update(changes)
    return ChunkHeader(**values)


def _expect(header: ChunkHeader, payload: bytes) -> dict[str, Any]:
    fields = {k: (v.hex() if isinstance(v, bytes) else int(v) if isinstance(v, Kind) else v)
              for k, v in header.as_dict().items()}  # fmt: skip
    return {"header": fields, "payload": payload.hex()}


def _signed_map(values: dict[str, Any], payload: bytes = b"hello") -> bytes:
    return sign_chunk(KEY_A, msgpack.packb(values, use_bin_type=True), payload)


def _with_prefix(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def _flip(data: bytes, position: int, bit: int = 0) -> bytes:
    patched = bytearray(data)
    patched[position] ^= 1 << bit
    return bytes(patched)


def valid_vectors() -> list[Vector]:
    data = list(build_chunks(BUNDLE, _meta(), CHUNK_SIZE, KEY_A))
    vectors = []
    for index, chunk in enumerate(data):
        header = _header(seq=1, bundle=BUNDLE_ID, index=index, count=2, blen=len(BUNDLE),
                         bsha=hashlib.sha256(BUNDLE).digest())  # fmt: skip
        part = BUNDLE[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
        vectors.append(Vector(f"valid/data-{index}.mdc", chunk,
                              f"chunk {index} of a 40-byte DATA bundle, csize 32",
                              expect=_expect(header, part)))  # fmt: skip
    beat = encode_heartbeat(1, 1)
    hb_id = bytes(range(32, 48))
    hb = next(build_chunks(beat, _meta(Kind.HEARTBEAT, 1, hb_id), len(beat), KEY_A))
    hb_header = _header(seq=1, bundle=hb_id, csize=16, blen=16,
                        bsha=hashlib.sha256(beat).digest(), kind=Kind.HEARTBEAT)  # fmt: skip
    vectors.append(Vector("valid/heartbeat.mdc", hb, "HEARTBEAT: last seq 1, epoch 1",
                          expect=_expect(hb_header, beat)))  # fmt: skip
    control = b'{"op":"ping"}'
    ctl_header = _header(seq=2, bundle=bytes(range(48, 64)), csize=64, blen=len(control),
                         bsha=hashlib.sha256(control).digest(), kind=Kind.CONTROL)  # fmt: skip
    vectors.append(Vector("valid/control.mdc", encode_chunk(ctl_header, control, KEY_A),
                          "CONTROL bundle, single chunk, seq 2",
                          expect=_expect(ctl_header, control)))  # fmt: skip
    enc_header = _header()
    encrypted = encode_chunk(enc_header, b"hello", KEY_A, encrypt_to=RECIPIENT.public_key,
                             ephemeral=EPHEMERAL)  # fmt: skip
    vectors.append(Vector("valid/encrypted.mdc", encrypted,
                          "encrypted payload (flag bit 0) to recipient key R",
                          expect=_expect(enc_header, b"hello"),
                          context={"decrypt_key": "R"}))  # fmt: skip
    armored = armor(data[0]).replace(b"\n", b"\r\n")
    vectors.append(Vector("valid/data-0-armored-crlf.txt", armored,
                          "data-0 in ASCII armour, line ends rewritten to CRLF",
                          expect=vectors[0].expect))  # fmt: skip
    rotated = encode_chunk(_header(), b"hello", KEY_B)
    vectors.append(Vector("valid/rotation-key-b.mdc", rotated,
                          "signed by key B; keyring holds A and B (rotation)",
                          expect=_expect(_header(), b"hello"),
                          context={"keyring": ["A", "B"]}))  # fmt: skip
    return vectors


def invalid_vectors() -> list[Vector]:
    good = encode_chunk(_header(), b"hello", KEY_A)
    header_values = _header().as_dict() | {"kind": 1}
    return [
        Vector("invalid/empty.mdc", b"", "empty file", "truncated"),
        Vector("invalid/short-prefix.mdc", good[:19], "19 bytes: shorter than the prefix",
               "truncated"),
        Vector("invalid/bad-magic.mdc", b"MDLX" + good[4:], "magic is MDLX", "bad-magic"),
        Vector("invalid/bad-version.mdc", _with_prefix(good, 4, ">B", 2), "version 2",
               "bad-version"),
        Vector("invalid/bad-flags.mdc", _with_prefix(good, 5, ">B", 0x02),
               "reserved flag bit 1 set", "bad-flags"),
        Vector("invalid/header-too-large.mdc", _with_prefix(good, 6, ">H", 1025)[:PREFIX_LEN],
               "header_len 1025 (> 1024); refused from the prefix alone", "too-large"),
        Vector("invalid/payload-too-large.mdc",
               _with_prefix(good, 8, ">I", (16 << 20) + 49)[:PREFIX_LEN],
               "payload_len 16 MiB + 49; refused from the prefix alone", "too-large"),
        Vector("invalid/truncated.mdc", good[:-1], "last byte of the signature missing",
               "truncated"),
        Vector("invalid/trailing-byte.mdc", good + b"\x00", "one byte after the signature",
               "truncated"),
        Vector("invalid/unknown-key.mdc", encode_chunk(_header(), b"hello", KEY_B),
               "signed by key B; keyring holds only A", "unknown-key"),
        Vector("invalid/bad-header-extra-key.mdc", _signed_map(header_values | {"x": 1}),
               "signed header with an extra key", "bad-header"),
        Vector("invalid/bad-header-type.mdc", _signed_map(header_values | {"seq": "7"}),
               "signed header with seq as a string", "bad-header"),
        Vector("invalid/bad-header-order.mdc",
               _signed_map(dict(reversed(list(header_values.items())))),
               "signed header with keys out of canonical order", "bad-header"),
        Vector("invalid/bad-header-not-canonical.mdc", _non_canonical(),
               "signed header with epoch as uint64 instead of a fixint", "bad-header"),
        Vector("invalid/bad-header-trailing.mdc",
               sign_chunk(KEY_A, encode_header(_header()) + b"\xc0", b"hello"),
               "signed header followed by an extra msgpack nil", "bad-header"),
        Vector("invalid/unknown-kind.mdc", _signed_map(header_values | {"kind": 9}),
               "signed header with kind 9", "unknown-kind"),
        Vector("invalid/limits-csize.mdc", _signed_map(header_values | {"csize": 0}),
               "signed header with csize 0", "limits"),
        Vector("invalid/limits-stream.mdc", _signed_map(header_values | {"stream": "In/../x"}),
               "signed header with a stream id outside [a-z0-9._-]", "limits"),
        Vector("invalid/inconsistent-length.mdc", _signed_map(header_values, b"hello!"),
               "payload 6 bytes, header says blen 5", "inconsistent"),
        Vector("invalid/cannot-decrypt.mdc",
               encode_chunk(_header(), b"hello", KEY_A, encrypt_to=OTHER_RECIPIENT.public_key,
                            ephemeral=EPHEMERAL),
               "encrypted to key O, receiver holds key R", "cannot-decrypt",
               context={"decrypt_key": "R"}),
        Vector("invalid/bad-armor.txt", b"-----BEGIN MAILDIODE CHUNK-----\n!!!!\n"
               b"-----END MAILDIODE CHUNK-----\n", "armour with a non-base64 body", "bad-armor"),
        Vector("invalid/wrong-stream.mdc", good, "valid chunk of stream inbound, receiver of "
               "stream outbound", "wrong-stream", context={"stream": "outbound"}),
        Vector("invalid/expired.mdc", good, "created 8 days before the receiver's clock "
               "(resend window 7 days)", "expired", context={"now_ms": CREATED_MS + 8 * 86400000}),
        Vector("invalid/bad-hash.mdc",
               encode_chunk(_header(bsha=hashlib.sha256(b"HELLO").digest()), b"hello", KEY_A),
               "single-chunk bundle whose payload does not match the signed bsha; "
               "refused after reassembly", "bad-hash"),
    ]  # fmt: skip


def _non_canonical() -> bytes:
    canonical = encode_header(_header())
    # epoch=1 is the fixint 0x01 right after the key "epoch"; re-encode it as uint64 (0xcf).
    marker = msgpack.packb("epoch") + b"\x01"
    wide = msgpack.packb("epoch") + b"\xcf" + (1).to_bytes(8, "big")
    return sign_chunk(KEY_A, canonical.replace(marker, wide, 1), b"hello")


def tampered_vectors() -> list[Vector]:
    good = encode_chunk(_header(), b"hello", KEY_A)
    header_len = len(encode_header(_header()))
    payload_at = PREFIX_LEN + header_len
    forged_id = good[:12] + KEY_B.key_id + good[20:]
    return [
        Vector("tampered/payload-bit.mdc", _flip(good, payload_at), "one payload bit flipped",
               "bad-signature"),
        Vector("tampered/header-bit.mdc", _flip(good, PREFIX_LEN + 10),
               "one header bit flipped (inside the stream id)", "bad-signature"),
        Vector("tampered/signature-bit.mdc", _flip(good, len(good) - 1, 7),
               "last signature bit flipped", "bad-signature"),
        Vector("tampered/prefix-bit.mdc", _with_prefix(good, 5, ">B", 0x01),
               "flag bit 0 (encrypted) set on a plain chunk", "bad-signature"),
        Vector("tampered/key-id-swapped.mdc", forged_id,
               "key id of B on a chunk signed by A (keyring A and B)", "bad-signature",
               context={"keyring": ["A", "B"]}),
        Vector("tampered/payload-replaced.mdc", good[:payload_at] + b"HELLO" + good[-64:],
               "payload replaced, same length", "bad-signature"),
    ]  # fmt: skip


def all_vectors() -> list[Vector]:
    return valid_vectors() + invalid_vectors() + tampered_vectors()


def index_json(vectors: list[Vector]) -> str:
    return json.dumps([v.index_entry() for v in vectors], indent=1, ensure_ascii=False) + "\n"


def write(vectors: list[Vector]) -> None:
    for vector in vectors:
        path = VECTOR_DIR / vector.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(vector.data)
    (VECTOR_DIR / "index.json").write_text(index_json(vectors), encoding="utf-8")


def markdown(vectors: list[Vector]) -> str:
    """The vectors section of docs/protocol.md (hex, 64 characters a line)."""
    out = []
    for vector in vectors:
        hexed = vector.data.hex()
        lines = [hexed[i : i + 64] for i in range(0, len(hexed), 64)] or [""]
        verdict = "valid" if vector.reason is None else f"`{vector.reason}`"
        out.append(f"<!-- vector: {vector.name} -->\n**`{vector.name}`** — {vector.description}"
                   f" → {verdict}\n\n```hex\n" + "\n".join(lines) + "\n```\n")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="rewrite the vector files")
    options = parser.parse_args()
    built = all_vectors()
    if options.write:
        write(built)
    print(markdown(built))
