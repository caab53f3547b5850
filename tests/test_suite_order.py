"""The suite's order (tests/conftest.py): the files measured heaviest are handed out first, so
the two workers of `make test` finish together (docs/performance.md, "The suite's time")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import HEAVY_FILES_S

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_named_heavy_exists() -> None:
    missing = [name for name in HEAVY_FILES_S if not (ROOT / name).is_file()]
    assert missing == [], "renamed or removed: update HEAVY_FILES_S in tests/conftest.py"


def test_the_heaviest_files_come_first_and_xdist_keeps_the_order(
    request: pytest.FixtureRequest,
) -> None:
    files = list(dict.fromkeys(item.path.relative_to(ROOT).as_posix()
                               for item in request.session.items))  # fmt: skip
    heavy = [name for name in files if name in HEAVY_FILES_S]
    assert files[: len(heavy)] == sorted(heavy, key=lambda name: -HEAVY_FILES_S[name])
    # xdist's own re-sorting, by number of tests, is off (absent when xdist is not loaded)
    assert getattr(request.config.option, "loadscopereorder", False) is False
