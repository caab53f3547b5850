"""The control-payload spec (docs/protocol.md §16), its vector files and the codec agree."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentkit import control
from agentkit.control import ControlRefused, decode_control, encode_control
from tests.agentkit import control_golden as golden

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
SECTION = SPEC.split("## 16. Control payloads")[1]
INDEX: list[dict[str, Any]] = json.loads(
    (golden.VECTOR_DIR / "index.json").read_text(encoding="utf-8")
)
BY_NAME = {vector.name: vector for vector in golden.all_vectors()}


def test_vector_files_are_what_the_code_produces() -> None:
    for vector in golden.all_vectors():
        assert (golden.VECTOR_DIR / vector.name).read_bytes() == vector.data, vector.name
    index = (golden.VECTOR_DIR / "index.json").read_text(encoding="utf-8")
    assert index == golden.index_json(golden.all_vectors())
    files = {str(p.relative_to(golden.VECTOR_DIR)) for p in golden.VECTOR_DIR.rglob("*.msgpack")}
    assert files == set(BY_NAME)


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_vector_decodes_as_the_index_says(entry: dict[str, Any]) -> None:
    data = (golden.VECTOR_DIR / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    if "code" in entry:
        with pytest.raises(ControlRefused) as refused:
            decode_control(data, entry["direction"])
        assert refused.value.code == entry["code"]
        return
    record = decode_control(data, entry["direction"])
    assert record == BY_NAME[entry["file"]].record  # bytes -> record
    assert encode_control(record) == data  # record -> bytes
    assert control.CONTROL_TYPES[entry["type"]] is type(record)


def test_spec_shows_every_vector_file_exactly() -> None:
    found = re.findall(r"<!-- control vector: (\S+) -->\n(.*?)\n\n(```hex\n.*?```|\(.*?\))",
                       SECTION, flags=re.S)  # fmt: skip
    assert sorted(name for name, _, _ in found) == sorted(e["file"] for e in INDEX)
    for name, _, shown in found:
        assert shown == golden.shown(BY_NAME[name]), name


def test_every_control_type_in_the_spec_has_a_valid_vector_and_matches_the_code() -> None:
    types_table = re.findall(r"^\| `([a-z-]+)` \| `(inbound|outbound)` \|", SECTION, flags=re.M)
    assert {name for name, _ in types_table} == set(control.CONTROL_TYPES)
    for name, stream in types_table:
        assert name in control.DIRECTION_TYPES[stream]
    with_vectors = {e["type"] for e in INDEX if "type" in e}
    assert with_vectors == set(control.CONTROL_TYPES)


def test_every_refusal_code_is_in_the_spec_table_and_has_a_vector() -> None:
    codes_table = SECTION.split("| code | step | meaning |")[1].split("\n\n")[0]
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", codes_table, flags=re.M))
    raised = set(re.findall(r'ControlRefused\(\s*"([a-z_]+)"', _codec_source()))
    raised |= {"bad_field"}  # raised through _bad()
    assert codes == raised
    assert {e["code"] for e in INDEX if "code" in e} == codes


def test_every_key_of_every_type_is_in_the_spec() -> None:
    for cls, schema in control._SCHEMAS.items():
        for key in schema:
            assert f"`{key}`" in SECTION, f"{cls.__name__}.{key}"


def test_limits_in_the_spec_are_the_codes() -> None:
    assert "| `MAX_EVENTS_PER_REPORT` (N) | 200 |" in SECTION
    assert control.MAX_EVENTS_PER_REPORT == 200
    assert control.MAX_EVENT_BYTES_PER_REPORT == 256 * 1024
    assert control.MAX_REPORT_BYTES == control.MAX_EVENT_BYTES_PER_REPORT + 64 * 1024
    assert "| `MAX_DETAIL_KEYS` | 24 |" in SECTION
    assert control.MAX_DETAIL_KEYS == 24
    assert "| `MAX_DETAIL_CHARS` | 300 |" in SECTION
    assert control.MAX_DETAIL_CHARS == 300
    assert "| `MAX_GAPS_LISTED` | 64 |" in SECTION
    assert control.MAX_GAPS_LISTED == 64
    assert "| `MAX_DECISION_BYTES` | 4 KiB |" in SECTION
    assert control.MAX_DECISION_BYTES == 4096
    assert control.MAX_RULES_BYTES == 1 << 20
    assert control.MAX_POLICY_BYTES == (1 << 20) + 4096


def _codec_source() -> str:
    return (ROOT / "agentkit" / "control.py").read_text(encoding="utf-8")
