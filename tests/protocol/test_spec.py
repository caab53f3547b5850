"""The spec, the vector files and the code agree, in both directions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from protocol import Keyring, Kind, Reason, Receiver, RemoteError, decode_chunk
from protocol.armor import dearmor, is_armored
from protocol.receiver import Accepted
from tests.protocol import golden

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
INDEX = json.loads((golden.VECTOR_DIR / "index.json").read_text(encoding="utf-8"))
STATE_ONLY_REASONS = {Reason.INCOMPLETE, Reason.CAPACITY}  # need time/state: unit tests instead


def spec_vectors() -> dict[str, bytes]:
    found = re.findall(r"<!-- vector: (\S+) -->.*?```hex\n(.*?)```", SPEC, flags=re.S)
    return {name: bytes.fromhex(body.replace("\n", "")) for name, body in found}


def test_vector_files_are_what_the_code_produces() -> None:
    built = golden.all_vectors()
    for vector in built:
        assert (golden.VECTOR_DIR / vector.name).read_bytes() == vector.data, vector.name
    assert (golden.VECTOR_DIR / "index.json").read_text(encoding="utf-8") == golden.index_json(
        built
    )


def test_spec_shows_every_vector_file_exactly() -> None:
    shown = spec_vectors()
    assert sorted(shown) == sorted(entry["file"] for entry in INDEX)
    for name, data in shown.items():
        assert (golden.VECTOR_DIR / name).read_bytes() == data, name


def check(entry: dict[str, Any], data: bytes, state_dir: Path) -> dict[str, Any]:
    """Run one vector through the receiver as its context says; return what happened."""
    context = entry["context"]
    keyring = Keyring(golden.KEYS[k].verify_key for k in context["keyring"])
    decrypt = golden.DECRYPT_KEYS.get(context["decrypt_key"] or "")
    receiver = Receiver(state_dir, context["stream"], keyring, decrypt_key=decrypt,
                        clock=lambda: context["now_ms"] / 1000)  # fmt: skip
    chunk_file = state_dir / "chunk"
    try:
        untrusted = dearmor(data) if is_armored(data) else data
        chunk_file.write_bytes(untrusted)
        outcome = receiver.accept(chunk_file, untrusted)
        if outcome is Accepted.COMPLETE:
            receiver.assemble(receiver.complete()[0])
        chunk = decode_chunk(untrusted, keyring, decrypt_key=decrypt)
    except RemoteError as exc:
        return {"reason": exc.reason.value}
    finally:
        receiver.close()
    return {"expect": golden._expect(chunk.header, chunk.payload)}


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_vector_verifies_as_the_index_says(entry: dict[str, Any], tmp_path: Path) -> None:
    data = (golden.VECTOR_DIR / entry["file"]).read_bytes()
    result = check(entry, data, tmp_path)
    if "reason" in entry:
        assert result == {"reason": entry["reason"]}
    else:
        assert result == {"expect": entry["expect"]}


def test_every_category_has_vectors() -> None:
    categories = {entry["file"].split("/")[0] for entry in INDEX}
    assert categories == {"valid", "invalid", "tampered"}


def test_every_reason_is_in_the_spec_table_and_has_a_vector_or_state_test() -> None:
    section = SPEC.split("## 11. Reason codes")[1].split("\n## ")[0]
    table = re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M)
    assert sorted(table) == sorted(reason.value for reason in Reason)
    with_vectors = {entry["reason"] for entry in INDEX if "reason" in entry}
    missing = {r for r in Reason if r.value not in with_vectors} - STATE_ONLY_REASONS
    assert missing == set()
    receiver_tests = (Path(__file__).parent / "test_receiver.py").read_text(encoding="utf-8")
    for reason in STATE_ONLY_REASONS:
        assert f"Reason.{reason.name}" in receiver_tests


def test_every_kind_is_in_the_spec_table_and_has_a_vector() -> None:
    section = SPEC.split("## 4. Kinds")[1].split("\n## ")[0]
    table = dict(re.findall(r"^\| (\d+) \| `([A-Z]+)` \|", section, flags=re.M))
    assert {int(v): n for v, n in table.items()} == {kind.value: kind.name for kind in Kind}
    kinds = {entry["expect"]["header"]["kind"] for entry in INDEX if "expect" in entry}
    assert kinds == {kind.value for kind in Kind}


def test_key_id_in_spec_matches_vector_key() -> None:
    assert f"key id `{golden.KEY_A.key_id.hex()}`" in SPEC
