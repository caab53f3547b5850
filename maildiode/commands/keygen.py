"""``maildiode keygen DIR [--name NAME] [--encryption]``: make key files.

Writes ``NAME.key`` (Ed25519 private key, mode 0600) and ``NAME.pub``; with ``--encryption``
also ``NAME-enc.key`` (X25519 private key, 0600) and ``NAME-enc.pub``. Existing files are never
overwritten. Prints the key id, which every chunk header names.

``maildiode keygen --at-rest FILE`` makes an at-rest key file (0600; refused when it exists);
``maildiode keygen --rotate FILE`` adds a new key to it: the new key seals from the agent's
next start, the old ones stay in the file and still open what they sealed (docs/operations.md,
"Keys at rest").
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from protocol import EncryptionKey, ProtocolError, SigningKey
from protocol.atrest import AtRestKeyring

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "rotate", None) or getattr(args, "at_rest", None):
        return _at_rest(args)
    if args.dir is None:
        print("keygen: give DIR (or --at-rest FILE, --rotate FILE)", file=sys.stderr)
        return 2
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


def _at_rest(args: argparse.Namespace) -> int:
    """--at-rest FILE: a new key file; --rotate FILE: one more key in it, the newest sealing."""
    rotate = args.rotate is not None
    path = Path(args.rotate if rotate else args.at_rest)
    try:
        if rotate:
            keyring = AtRestKeyring.load(path).rotated()
        elif path.exists():
            print(f"refusing to overwrite {path}", file=sys.stderr)
            return 1
        else:
            keyring = AtRestKeyring.generate()
        keyring.save(path)
    except (ProtocolError, OSError) as exc:
        print(f"keygen: {exc}", file=sys.stderr)
        return 1
    ids = ", ".join(key.key_id.hex() for key in keyring.keys[:-1]) or "none"
    print(f"{path}: at-rest key {keyring.current.key_id.hex()} seals from the agent's next start")
    print(f"{path}: older keys kept for reading: {ids}")
    return 0
