"""``detect(text)``: every piece of personal data in a text, with positions."""

from __future__ import annotations

import re
from typing import Final

from mailsafe.pii.context import ContextIndex
from mailsafe.pii.detectors import FINDERS, REPORT_THRESHOLD, Candidate, number_runs
from mailsafe.pii.mask import mask_value
from mailsafe.pii.normalize import normalize
from mailsafe.pii.types import PII_TYPES, Finding

_PRIORITY: Final = {kind: rank for rank, kind in enumerate(PII_TYPES)}
# Every type holds at least four digits in a row (a passport's "M123A4567" the fewest), and
# full-width digits are digits here too, so this is checked before normalising.
_FOUR_DIGITS_RE: Final = re.compile(r"\d{4}")


def detect(text: str) -> list[Finding]:
    """Findings in ``text``, in order of position, never overlapping.

    Where candidates overlap, the more confident one wins; on a tie, the type listed first
    in ``PII_TYPES``.
    """
    if _FOUR_DIGITS_RE.search(text) is None:
        return []
    plain = normalize(text)
    regions = number_runs(plain)
    context = ContextIndex(plain, regions)
    candidates = [
        candidate
        for finder in FINDERS
        for candidate in finder(plain, context, regions)
        if candidate.score >= REPORT_THRESHOLD
    ]
    kept = _without_overlaps(candidates)
    return [
        Finding(
            type=c.type,
            start=c.start,
            end=c.end,
            text=text[c.start : c.end],
            masked=mask_value(text[c.start : c.end], c.type, plain[c.start : c.end]),
            confidence=round(c.score, 2),
        )
        for c in sorted(kept, key=lambda c: c.start)
    ]


def _without_overlaps(candidates: list[Candidate]) -> list[Candidate]:
    """Resolve each cluster of overlapping candidates on its own (clusters are small)."""
    kept: list[Candidate] = []
    cluster: list[Candidate] = []
    cluster_end = -1
    for candidate in sorted(candidates, key=lambda c: c.start):
        if candidate.start >= cluster_end and cluster:
            kept.extend(_best_of(cluster))
            cluster = []
        cluster.append(candidate)
        cluster_end = max(cluster_end, candidate.end)
    kept.extend(_best_of(cluster))
    return kept


def _best_of(cluster: list[Candidate]) -> list[Candidate]:
    if len(cluster) == 1:
        return cluster
    ranked = sorted(cluster, key=lambda c: (-c.score, _PRIORITY[c.type], c.start))
    kept: list[Candidate] = []
    for candidate in ranked:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return kept
