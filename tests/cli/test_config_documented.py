"""Every configuration key the agents accept is in docs/configuration.md, in its section."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from inner_agent.config import InnerConfig
from outer_agent.config import OuterConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _keys(model: type[BaseModel], section: str = "") -> Iterator[tuple[str, str]]:
    """(section, key) for every leaf key; nested tables are sections of their own."""
    for name, field in model.model_fields.items():
        alias = field.alias or name
        tables = [t for t in (field.annotation, *get_args(field.annotation)) if _is_table(t)]
        if tables:  # a table, or an optional one (absent = that part is off)
            yield from _keys(tables[0], f"{section}.{alias}" if section else alias)
        else:
            yield section, alias


def _is_table(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    pieces = re.split(r"^### `\[([\w.]+)\]`.*$", text, flags=re.M)
    return {pieces[i]: pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}


@pytest.mark.parametrize("config", [OuterConfig, InnerConfig], ids=["outer", "inner"])
def test_every_key_is_documented_in_its_section(config: type[BaseModel]) -> None:
    sections = _sections()
    whole = DOC.read_text(encoding="utf-8")  # top-level keys are described above the sections
    keys = list(_keys(config))
    assert len(keys) > 20
    missing = [
        f"[{section}] {key}"
        for section, key in keys
        if f"| `{key}` |" not in (sections.get(section, "") if section else whole)
    ]
    assert missing == []
