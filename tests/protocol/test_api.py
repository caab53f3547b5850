"""The public surface of ``protocol`` and the rule that its codec does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import protocol

PACKAGE = Path(protocol.__file__).parent
CODEC_MODULES = ("chunk.py", "bundle.py", "sealing.py", "armor.py", "names.py", "limits.py",
                 "errors.py")  # fmt: skip
IO_MODULES = {"os", "io", "socket", "pathlib", "sqlite3", "time", "shutil", "tempfile",
              "threading", "subprocess", "random", "secrets"}  # fmt: skip


def test_public_names_are_pinned() -> None:
    assert sorted(protocol.__all__) == sorted([
        "Accepted", "BundleIdConflict", "BundleMeta", "Chunk", "ChunkHeader", "ClaimedFile", "DoesNotVerify",
        "EncryptionKey", "EncryptionPublicKey", "FolderIntake", "FolderTransport", "Heartbeat",
        "KeyFileError", "Keyring", "Kind", "LinkReader", "LinkStatus", "LocalError", "Prefix",
        "ProtocolError", "PublishReceipt", "Reason", "ReceivedBundle", "Receiver",
        "RemoteError", "Sender", "SigningKey", "TcpIntake", "TcpTransport", "Transport",
        "VerifyKey", "armor", "build_chunks", "dearmor", "decode_chunk", "encode_chunk",
        "key_id_of",
    ])  # fmt: skip
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None


def test_architecture_contract_names_exist() -> None:
    architecture = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = architecture.split("from protocol import (", 1)[1].split(")", 1)[0]
    names = [n.strip() for line in block.splitlines() for n in line.split("#")[0].split(",")]
    missing = [n for n in names if n and not hasattr(protocol, n)]
    assert missing == []


def test_codec_modules_do_no_io() -> None:
    for module in CODEC_MODULES:
        tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}  # fmt: skip
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
        assert imported & IO_MODULES == set(), module


def test_no_assert_on_input_in_protocol() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), path.name
