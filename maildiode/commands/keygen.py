"""``maildiode keygen DIR [--name NAME] [--encryption]``: make key files.

Writes ``NAME.key`` (Ed25519 private key, mode 0600) and ``NAME.pub``; with ``--encryption``
also ``NAME-enc.key`` (X25519 private key, 0600) and ``NAME-enc.pub``. Existing files are never
overwritten. Prints the key id, which every chunk header names.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from protocol import EncryptionKey, ProtocolError, SigningKey

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    name = getattr(args, "name", None) or "signing"
    if not NAME_PATTERN.fullmatch(name):
        print(f"--name {name!r}: use letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    encryption = bool(getattr(args, "encryption", False))
    targets = [folder / f"{name}.key", folder / f"{name}.pub"]
    if encryption:
        targets += [folder / f"{name}-enc.key", folder / f"{name}-enc.pub"]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        print(f"refusing to overwrite {', '.join(existing)}", file=sys.stderr)
        return 1
    try:
        folder.mkdir(parents=True, exist_ok=True)
        signing = SigningKey.generate()
        signing.save(targets[0])
        signing.verify_key.save(targets[1])
        print(f"{targets[0]}: Ed25519 signing key, key id {signing.key_id.hex()}")
        print(f"{targets[1]}: its public key (give this to the receiving agent)")
        if encryption:
            enc = EncryptionKey.generate()
            enc.save(targets[2])
            enc.public_key.save(targets[3])
            print(f"{targets[2]}: X25519 decryption key (keep on the receiving side)")
            print(f"{targets[3]}: its public key (give this to the sending agent)")
    except (ProtocolError, OSError) as exc:
        print(f"keygen: {exc}", file=sys.stderr)
        return 1
    return 0
