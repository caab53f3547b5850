"""The versions of a rules file: every text saved from the console, with who saved it, when
and what they did; the diff between two (pure); kept one JSON file per version, written
durably (``protocol.durable.write_durably``), numbered from 1, never rewritten.

The first save of a file made outside the console records the file as it was as version 1
(``who = "file"``), so a roll back can return to it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from protocol.durable import write_durably

__all__ = ["MAX_VERSIONS_LISTED", "Version", "VersionStore", "text_diff"]

RECORD_VERSION: Final = 1
# The history page lists this many of the newest versions (each is a file of a few kB).
MAX_VERSIONS_LISTED: Final = 200
_NAME_RE: Final = re.compile(r"(\d{6})\.json")


@dataclass(frozen=True)
class Version:
    number: int
    who: str  # the account that saved it; "file" for the text found on disk
    when_ms: int
    what: str  # what was done, in the console's words ("규칙 추가: hold-secret")
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def text_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    """A unified diff of two texts ("" when equal)."""
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 before_name, after_name)  # fmt: skip
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class VersionStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def numbers(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (_NAME_RE.fullmatch(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def newest(self, count: int = MAX_VERSIONS_LISTED) -> list[Version]:
        return [self.get(n) for n in reversed(self.numbers()[-count:])]

    def latest(self) -> Version | None:
        numbers = self.numbers()
        return self.get(numbers[-1]) if numbers else None

    def get(self, number: int) -> Version:
        """Version ``number``; FileNotFoundError when there is none."""
        data = json.loads((self.folder / f"{number:06d}.json").read_text(encoding="utf-8"))
        return Version(int(data["number"]), str(data["who"]), int(data["when_ms"]),
                       str(data["what"]), str(data["text"]))  # fmt: skip

    def add(self, text: str, who: str, what: str, when_ms: int) -> Version:
        numbers = self.numbers()
        version = Version((numbers[-1] if numbers else 0) + 1, who, when_ms, what, text)
        record = {"v": RECORD_VERSION, "number": version.number, "who": who, "when_ms": when_ms,
                  "what": what, "sha256": version.sha256, "text": text}  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        write_durably(self.folder / f"{version.number:06d}.json",
                      json.dumps(record, ensure_ascii=False).encode(), overwrite=False)  # fmt: skip
        return version
