"""The at-rest format (docs/protocol.md §17): vectors both ways, the spec shows them, the key
file and its rotation."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from protocol.atrest import (
    CLEAR,
    HEADER_LEN,
    AtRestKey,
    AtRestKeyring,
    is_sealed,
    open_blob,
    seal,
)
from protocol.errors import AtRestError, LocalError
from tests.protocol import atrest_golden as golden

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
VECTORS: list[dict[str, Any]] = json.loads(golden.VECTOR_FILE.read_text(encoding="utf-8"))[
    "vectors"
]


def test_vector_file_is_what_the_code_produces() -> None:
    """Produce: sealing with the vector key and nonce gives exactly the stored bytes."""
    stored = json.loads(golden.VECTOR_FILE.read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(golden.document()))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_vector_opens_or_is_refused_as_described(vector: dict[str, Any]) -> None:
    """Verify: each blob opens to its plaintext, or is refused with its reason."""
    keys = [golden.KEYS[name] for name in vector["keys"]]
    blob = bytes.fromhex(vector["sealed_hex"])
    if vector["refusal"] is None:
        assert open_blob(blob, keys, "vector") == bytes.fromhex(vector["plaintext_hex"])
    else:
        with pytest.raises(AtRestError, match=vector["refusal"]):
            open_blob(blob, keys, "vector")


def test_every_category_has_vectors() -> None:
    assert {v["category"] for v in VECTORS} == {"valid", "invalid", "tampered"}


def test_spec_shows_the_layout_and_the_first_vector_exactly() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    section = spec[spec.index("## 17. Sealed at rest") :]
    assert VECTORS[0]["sealed_hex"] in re.sub(r"\s+", "", section)
    assert golden.KEY_1.key_id.hex() in section
    assert f"{HEADER_LEN}" in section
    assert "at-rest-key-id/v1" in section


def test_seal_header_fields() -> None:
    blob = seal(b"x", golden.KEY_1, golden.NONCE)
    assert blob[:4] == b"MDAR"
    assert blob[4] == 1
    assert blob[5:13] == golden.KEY_1.key_id
    assert blob[13:25] == golden.NONCE
    assert len(blob) == HEADER_LEN + 1 + 16


def test_the_keyring_seals_with_a_fresh_nonce_each_time() -> None:
    keyring = AtRestKeyring.generate()
    first, second = keyring.seal(b"same"), keyring.seal(b"same")
    assert first != second
    assert keyring.open(first, "a") == keyring.open(second, "b") == b"same"


def test_rotation_keeps_old_blobs_readable_and_seals_with_the_new_key(tmp_path: Path) -> None:
    path = tmp_path / "agent-at-rest.keys"
    before = AtRestKeyring.generate()
    before.save(path)
    old_blob = before.seal(b"sealed before the rotation")
    after = AtRestKeyring.load(path).rotated()
    after.save(path)
    reloaded = AtRestKeyring.load(path)
    assert reloaded.open(old_blob, "old") == b"sealed before the rotation"
    new_blob = reloaded.seal(b"after")
    assert new_blob[5:13] == reloaded.current.key_id != before.current.key_id
    with pytest.raises(AtRestError, match="which the key file lacks"):
        before.open(new_blob, "new")


def test_key_file_is_private_and_refused_when_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "k.keys"
    AtRestKeyring.generate().save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    with pytest.raises(AtRestError, match="readable by group or others"):
        AtRestKeyring.load(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no at-rest key"),
        ("0011223344556677 not-base64!\n", "line 1"),
        ("0011223344556677 " + "QUFB" * 11 + "\n", "line 1"),  # 33 bytes, not a key
        (f"0011223344556677 {golden.KEY_1.line().split()[1]}\n", "does not match its key"),
    ],
)
def test_a_bad_key_file_is_refused_by_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "k.keys"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(AtRestError, match=problem):
        AtRestKeyring.load(path)


def test_clear_passes_plaintext_and_refuses_a_sealed_blob() -> None:
    assert CLEAR.seal(b"mail") == b"mail"
    assert CLEAR.open(b"mail", "x") == b"mail"
    with pytest.raises(AtRestError, match="no at-rest key is configured"):
        CLEAR.open(seal(b"mail", golden.KEY_1, golden.NONCE), "x")


def test_open_or_clear_reads_a_record_from_before_the_key() -> None:
    keyring = AtRestKeyring.generate()
    assert keyring.open_or_clear(b"MDOUT1\nold record", "x") == b"MDOUT1\nold record"
    assert keyring.open_or_clear(keyring.seal(b"new"), "x") == b"new"


def test_errors_name_the_place_never_the_key() -> None:
    key = AtRestKey.generate()
    with pytest.raises(AtRestError) as caught:
        open_blob(b"MDAR\x01" + bytes(40), [key], "spool/inbound/received/abc.0")
    assert "spool/inbound/received/abc.0" in str(caught.value)
    assert key.raw.hex() not in str(caught.value)
    assert key.raw.hex() not in repr(key)
    assert isinstance(caught.value, LocalError)
    assert is_sealed(b"MDAR\x01")
    assert not is_sealed(b"MDOUT1\n")
