"""The at-rest format's vectors (docs/protocol.md §17), built from fixed keys and nonces.

``python -m tests.protocol.atrest_golden --write`` rewrites tests/protocol/vectors/atrest/
vectors.json. The tests check the file, the spec and the code agree, in both directions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from protocol.atrest import AtRestKey, seal

VECTOR_FILE = Path(__file__).resolve().parent / "vectors" / "atrest" / "vectors.json"

KEY_1 = AtRestKey(bytes(range(160, 192)))  # the key before a rotation
KEY_2 = AtRestKey(bytes(range(192, 224)))  # the key after it
OTHER = AtRestKey(bytes(range(224, 256)))  # a key the file does not hold
NONCE = bytes(range(12))
PLAINTEXT = "홍길동 800101-1234567 marker\n".encode()
KEYS = {"1": KEY_1, "2": KEY_2, "X": OTHER}


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def _other_id(blob: bytes) -> bytes:
    return blob[:5] + KEY_2.key_id + blob[13:]


def vectors() -> list[dict[str, Any]]:
    """Each vector: the blob, the keys it is opened with, and the plaintext or the refusal."""
    one = seal(PLAINTEXT, KEY_1, NONCE)
    two = seal(PLAINTEXT, KEY_2, NONCE)
    # (category, description, blob, keys, refusal: None = opens to PLAINTEXT, "" = to b"")
    cases: list[tuple[str, str, bytes, list[str], str | None]] = [
        ("valid", "sealed with key 1, opened with [1]", one, ["1"], None),
        ("valid", "sealed with key 1, opened after a rotation [1, 2]", one, ["1", "2"], None),
        ("valid", "sealed with key 2 (the newest), opened with [1, 2]", two, ["1", "2"], None),
        ("valid", "empty plaintext", seal(b"", KEY_1, NONCE), ["1"], ""),
        ("invalid", "no magic (a clear file)", PLAINTEXT, ["1"], "not sealed at rest"),
        ("invalid", "version 2", one[:4] + b"\x02" + one[5:], ["1"], "format version 2"),
        ("invalid", "shorter than header and tag", one[:40], ["1"], "shorter than"),
        ("invalid", "key id not in the key file", one, ["2", "X"], "which the key file lacks"),
        ("tampered", "one ciphertext bit flipped", _flip(one, 30), ["1"], "does not verify"),
        ("tampered", "one tag bit flipped", _flip(one, len(one) - 1), ["1"], "does not verify"),
        ("tampered", "nonce changed (header is AAD)", _flip(one, 20), ["1"], "does not verify"),
        (
            "tampered",
            "a key id of another key the file holds",
            _other_id(one),
            ["1", "2"],
            "does not verify",
        ),
    ]
    return [
        {
            "category": category,
            "description": description,
            "sealed_hex": blob.hex(),
            "keys": keys,
            "plaintext_hex": PLAINTEXT.hex() if refusal is None else "",
            "refusal": refusal or None,
        }
        for category, description, blob, keys, refusal in cases
    ]


def document() -> dict[str, Any]:
    return {
        "keys": {name: key.raw.hex() for name, key in KEYS.items()},
        "key_ids": {name: key.key_id.hex() for name, key in KEYS.items()},
        "nonce_hex": NONCE.hex(),
        "vectors": vectors(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = json.dumps(document(), indent=1, ensure_ascii=False) + "\n"
    if args.write:
        VECTOR_FILE.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
