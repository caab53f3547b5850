"""Every message of the shared corpus renders or becomes a clear "not displayable" notice.

Read in place from ../shared/corpus (never copied). Two workers, the agent's default limits.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import REASONS, RenderPool

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
# Wall-clock seconds one mail may take in the test (the pool's own limit is the same).
WALL_SECONDS = 20.0


@pytest.mark.slow
def test_whole_corpus_renders_or_is_not_displayable() -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.name != "README.md")
    assert len(files) >= 350, f"corpus not found at {CORPUS}"
    outcomes: dict[str, tuple[str, str | None, float]] = {}
    started = time.monotonic()
    with RenderPool(RenderOptions(), processes=2, wall_seconds=WALL_SECONDS) as pool:

        def render(path: Path) -> tuple[str, str, str | None, float]:
            begin = time.monotonic()
            rendered = pool.render(path.read_bytes())
            return (
                path.name,
                rendered.manifest.status,
                rendered.manifest.reason,
                time.monotonic() - begin,
            )

        with ThreadPoolExecutor(max_workers=2) as executor:
            for name, status, reason, seconds in executor.map(render, files):
                outcomes[name] = (status, reason, seconds)
    elapsed = time.monotonic() - started
    counts = Counter((status, reason) for status, reason, _ in outcomes.values())
    print(f"\ncorpus: {len(files)} mails in {elapsed:.1f} s: {dict(counts)}")
    assert len(outcomes) == len(files)
    for name, (status, reason, seconds) in outcomes.items():
        assert status in {"rendered", "not_displayable"}, name
        assert (status == "rendered") == (reason is None), name
        assert reason is None or reason in REASONS or reason.isidentifier(), name
        assert seconds < 2 * WALL_SECONDS + 5, name  # render + summary at most
    assert counts[("rendered", None)] >= 0.95 * len(files)
    # A package that does not decode is our own worker's reply broken, never the mail's fault
    # (MuPDF's CSS warnings once landed in the reply pipe: two corpus mails).
    assert counts[("not_displayable", "bad_package")] == 0
    assert elapsed < 180
