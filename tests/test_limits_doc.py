"""The limits the docs state are the code's: every row of the limit tables in docs/protocol.md
§12, docs/rendering.md (ParseLimits, RenderOptions) and docs/outer-agent.md (sender
authentication) is read and compared with the constant or default it names."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import mailsafe.senderauth
import mailsafe.senderauth.isolated
import protocol.limits
import protocol.receiver
import protocol.refusals
from agentkit.settings import LinkSection
from mailsafe.mime import ParseLimits
from mailsafe.render.options import RenderOptions
from protocol import FolderIntake, Receiver

DOCS = Path(__file__).resolve().parents[1] / "docs"
UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "Mi chars": 1 << 20}


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells, backticks removed) of the first table at or after ``heading``, without
    its header row and its --- line."""
    rows = []
    for line in text[text.index(heading) :].splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))  # "\|" is a pipe in a cell
            rows.append([cell.strip().strip("`") for cell in cells])
        elif rows:
            break
    return rows[2:]


def doc_value(text: str) -> Any:
    """ "16 MiB + 48" -> 16777264, "65 536" -> 65536, "true" -> True, '"pymupdf"' -> "pymupdf",
    "{}" -> an empty set, "()" -> an empty tuple."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text == "{}":  # an empty set (RenderOptions.mask_types)
        return frozenset()
    if text == "()":  # an empty tuple (RenderOptions.mask_known)
        return ()
    if text.startswith('"') or text.startswith("/"):
        return text.strip('"')
    total = 0
    for term in text.split("+"):
        match = re.fullmatch(r"([\d ]+(?:\.\d+)?)\s*(KiB|MiB|GiB|Mi chars)?", term.strip())
        assert match, f"cannot read {text!r} as a number"
        number = float(match.group(1).replace(" ", ""))
        total += number * UNITS.get(match.group(2) or "", 1)
    return int(total) if total == int(total) else total


def code_constant(name: str) -> Any:
    for module in (protocol.limits, protocol.receiver, protocol.refusals, mailsafe.senderauth,
                   mailsafe.senderauth.isolated):  # fmt: skip
        if hasattr(module, name):
            return getattr(module, name)
    for function in (Receiver.__init__, FolderIntake.__init__):
        parameter = inspect.signature(function).parameters.get(name)
        if parameter is not None:
            return parameter.default
    field = LinkSection.model_fields.get(name)  # a [link] key whose default is the limit
    if field is not None:
        return field.default
    raise AssertionError(f"{name} is in the docs but not in the code")


def test_protocol_limits_table_is_the_code():
    rows = table_after((DOCS / "protocol.md").read_text(encoding="utf-8"), "## 12. Limits")
    assert len(rows) >= 10
    for name, value, _why in rows:
        assert doc_value(value) == code_constant(name), name


def test_every_limit_of_protocol_limits_is_in_the_table():
    rows = table_after((DOCS / "protocol.md").read_text(encoding="utf-8"), "## 12. Limits")
    shown = {row[0] for row in rows}
    limits = {n for n in protocol.limits.__all__ if n.startswith("MAX_") and n != "MAX_U64"}
    assert limits - shown == {"MAX_CHUNK_FILE_BYTES"}  # derived: prefix + header + payload + sig


def test_parse_limits_table_is_the_code():
    text = (DOCS / "rendering.md").read_text(encoding="utf-8")
    defaults = ParseLimits()
    rows = table_after(text, "| limit (`ParseLimits`)")
    for names, value, _why in rows:
        for name, part in zip(names.split(" / "), value.split(" / "), strict=True):
            assert doc_value(part) == getattr(defaults, name.strip().strip("`")), name
    assert {f.name for f in dataclasses.fields(ParseLimits)} == {
        n.strip().strip("`") for row in rows for n in row[0].split(" / ")
    }


def test_render_options_table_is_the_code():
    text = (DOCS / "rendering.md").read_text(encoding="utf-8")
    table = text.rindex("| key |", 0, text.index("| `backend` |"))
    rows = table_after(text[table:], "| key |")
    defaults = RenderOptions()
    skipped = {"font_dir"}  # documented with the [render] section (configuration.md)
    shown = {row[0] for row in rows}
    assert {f.name for f in dataclasses.fields(RenderOptions)} - shown == skipped
    for name, _type, value, _meaning in rows:
        assert doc_value(value) == getattr(defaults, name), name


def test_sender_authentication_limits_table_is_the_code():
    text = (DOCS / "outer-agent.md").read_text(encoding="utf-8")
    rows = table_after(text, "| limit (`mailsafe.senderauth`, `.isolated`) |")
    assert len(rows) >= 8
    for name, value, _why in rows:
        assert doc_value(value) == code_constant(name), name
