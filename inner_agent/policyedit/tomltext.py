"""A rules document (what ``tomllib`` read) written back as TOML: top-level values, then
tables, then the arrays of tables (``[[rule]]`` with its ``[[rule.condition]]``). Only what a
rules file holds: strings, integers, booleans, lists of those, tables of those. Comments of
the file are not kept (the version history keeps every text as it was)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["to_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(document: Mapping[str, Any]) -> str:
    """``document`` as TOML text that ``tomllib.loads`` reads back equal."""
    lines = _values(document)
    for key, value in document.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{_key(key)}]", *_values(value)]
    for key, value in document.items():
        if _is_table_list(value):
            for item in value:
                lines += _table_item(_key(key), item)
    return "\n".join(lines).strip("\n") + "\n"


def _table_item(name: str, item: Mapping[str, Any]) -> list[str]:
    lines = ["", f"[[{name}]]", *_values(item)]
    for key, value in item.items():
        if _is_table_list(value):
            for inner in value:
                lines += _table_item(f"{name}.{_key(key)}", inner)[1:]
    return lines


def _values(table: Mapping[str, Any]) -> list[str]:
    return [
        f"{_key(key)} = {_value(value)}"
        for key, value in table.items()
        if not isinstance(value, Mapping) and not _is_table_list(value)
    ]


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"a rules file holds no {type(value).__name__}")


def _string(value: str) -> str:
    # A JSON string is a TOML basic string once DEL (which TOML wants escaped) is escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
