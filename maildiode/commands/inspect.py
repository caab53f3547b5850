"""``maildiode inspect FILE [-c CONFIG | --key PUBFILE ...]``: a chunk's header and verdict.

Prints one JSON object: the prefix, the header (decoded from the verified bytes, or marked
``unverified`` when the file does not verify), and the verdict. Exit status 0 when the file
verifies under one of the keys, 1 when it does not (or cannot be read), 2 for usage errors.
Keys: ``--key`` files, else the ``[keys]`` of ``-c CONFIG`` (the peer keys and our own key,
so files of both directions can be inspected).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from protocol import (
    EncryptionKey,
    Keyring,
    Kind,
    ProtocolError,
    Reason,
    RemoteError,
    SigningKey,
    VerifyKey,
    decode_chunk,
)
from protocol.armor import dearmor, is_armored
from protocol.chunk import peek_header
from protocol.limits import MAX_CHUNK_FILE_BYTES

MAX_INSPECT_BYTES = 2 * MAX_CHUNK_FILE_BYTES  # armour included; anything bigger is not a chunk


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Kind):
        return f"{int(value)} ({value.name})"
    return value


def _keys_from_config(path: Path) -> tuple[list[VerifyKey], EncryptionKey | None]:
    """The [keys] section: peer public keys, our own signing key's public half, decrypt key."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    section = data.get("keys", {})
    base = path.resolve().parent

    def resolve(value: str) -> Path:
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    keys = [VerifyKey.load(resolve(p)) for p in section.get("peer_keys", [])]
    if section.get("signing_key"):
        keys.append(SigningKey.load(resolve(section["signing_key"])).verify_key)
    decrypt = section.get("decrypt_key")
    return keys, EncryptionKey.load(resolve(decrypt)) if decrypt else None


def _load_keys(args: argparse.Namespace) -> tuple[list[VerifyKey], EncryptionKey | None]:
    if args.key:
        return [VerifyKey.load(Path(p)) for p in args.key], None
    if args.config:
        return _keys_from_config(Path(args.config))
    raise ValueError("give -c CONFIG or --key PUBFILE to verify against")


def inspect_bytes(
    untrusted: bytes,
    keys: list[VerifyKey],
    decrypt_key: EncryptionKey | None,
    report: dict[str, Any],
) -> None:
    """Fill ``report``; raise RemoteError when the chunk does not verify."""
    if is_armored(untrusted):
        report["armored"] = True
        untrusted = dearmor(untrusted)
    prefix, unverified = peek_header(untrusted)
    report["prefix"] = {
        "version": prefix.version,
        "flags": prefix.flags,
        "encrypted": prefix.encrypted,
        "header_len": prefix.header_len,
        "payload_len": prefix.payload_len,
        "key_id": prefix.key_id.hex(),
    }
    by_id = {key.key_id: key for key in keys}
    report["unverified_header"] = {k: _json_value(v) for k, v in (unverified or {}).items()}
    key = by_id.get(prefix.key_id)
    if key is None:
        raise RemoteError(Reason.UNKNOWN_KEY, "no given key has this key id")
    try:
        chunk = decode_chunk(untrusted, Keyring([key]), decrypt_key=decrypt_key)
    except RemoteError as exc:
        if exc.reason is not Reason.CANNOT_DECRYPT or decrypt_key is not None:
            raise
        report["payload"] = "encrypted; no decryption key given (signature verified)"
        report.pop("unverified_header", None)
        verified = dict(unverified or {})
        verified["kind"] = Kind(verified["kind"])  # the header passed all checks before this
        report["header"] = {k: _json_value(v) for k, v in verified.items()}
        return
    report.pop("unverified_header", None)
    report["header"] = {k: _json_value(v) for k, v in chunk.header.as_dict().items()}
    report["payload_bytes"] = len(chunk.payload)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        keys, decrypt_key = _load_keys(args)
    except (ProtocolError, OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"inspect: {exc}", file=sys.stderr)
        return 2
    try:
        with path.open("rb") as handle:
            untrusted = handle.read(MAX_INSPECT_BYTES + 1)
    except OSError as exc:
        print(f"inspect: {path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    report: dict[str, Any] = {"file": str(path)}
    try:
        if len(untrusted) > MAX_INSPECT_BYTES:
            raise RemoteError(Reason.TOO_LARGE, "file is larger than any chunk")
        inspect_bytes(untrusted, keys, decrypt_key, report)
        verified = True
        report["verdict"] = f"verifies under key {report['prefix']['key_id']}"
    except RemoteError as exc:
        verified = False
        report["verdict"] = "does not verify"
        report["reason"] = exc.reason.value
        report["detail"] = exc.detail
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if not verified:
        print(f"{path}: does not verify ({report['reason']})", file=sys.stderr)
        return 1
    return 0
