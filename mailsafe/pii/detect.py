"""``detect(text)``: every piece of personal data in a text, with positions."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from operator import attrgetter
from typing import Final

from mailsafe.pii.context import ContextIndex
from mailsafe.pii.detectors import (
    FINDERS,
    FOUR_DIGITS_SHAPE,
    REPORT_THRESHOLD,
    Candidate,
    ascii_shape,
    number_runs,
)
from mailsafe.pii.halves import find_split_halves
from mailsafe.pii.mask import mask_value
from mailsafe.pii.normalize import normalize
from mailsafe.pii.text_finders import find_text_kinds
from mailsafe.pii.types import PII_TYPES, Finding

_PRIORITY: Final = {kind: rank for rank, kind in enumerate(PII_TYPES)}
# The number finders, and a registration number's halves with words between (halves.py builds
# on the finders' candidates and scores, so their module cannot list it).
_FINDERS: Final = (*FINDERS, find_split_halves)
_START: Final = attrgetter("start")
# Every number type holds at least four digits in a row (a passport's "M123A4567" the fewest), and
# full-width digits are digits here too, so this is checked before normalising. Written out
# rather than "\d{4}": a pattern that starts with a repeat gets no first-character test, so
# the engine would try a match at every position of texts that have no digit at all.
_FOUR_DIGITS_RE: Final = re.compile(r"\d\d\d\d")
# Masked forms remembered by value: a signature's phone number or a table's bank name comes
# back in every quoted reply and row, and masking is a few calls per finding.
MASKED_VALUES_REMEMBERED: Final = 4096
_masked: Final = lru_cache(maxsize=MASKED_VALUES_REMEMBERED)(mask_value)


def detect(text: str) -> list[Finding]:
    """Findings in ``text``, in order of position, never overlapping.

    Where candidates overlap, the more confident one wins; on a tie, the type listed first
    in ``PII_TYPES``.
    """
    plain = text
    candidates = []
    if _may_hold_numbers(text):
        plain = normalize(text)
        regions = number_runs(plain)
        context = ContextIndex(plain, regions)
        candidates = [
            candidate
            for finder in _FINDERS
            for candidate in finder(plain, context, regions)
            if candidate.score >= REPORT_THRESHOLD
        ]
    # Addresses, MRZ lines and secrets need no digits.
    candidates += [c for c in find_text_kinds(plain) if c.score >= REPORT_THRESHOLD]
    if not candidates:
        return []
    findings: list[Finding] = []
    for kind, start, end, score in sorted(_without_overlaps(candidates), key=_START):
        value = text[start:end]
        masked = _masked(value, kind, plain[start:end])
        findings.append(Finding(kind, start, end, value, masked, _confidence(score)))
    return findings


def _may_hold_numbers(text: str) -> bool:
    shape = ascii_shape(text)  # ASCII text is searched through its shape (see detectors)
    if shape is None:
        return _FOUR_DIGITS_RE.search(text) is not None
    return FOUR_DIGITS_SHAPE in shape


@cache  # scores are sums of a few named constants: a handful of values, each rounded once
def _confidence(score: float) -> float:
    return round(score, 2)


def _without_overlaps(candidates: list[Candidate]) -> list[Candidate]:
    """Resolve each cluster of overlapping candidates on its own (clusters are small)."""
    kept: list[Candidate] = []
    cluster: list[Candidate] = []
    cluster_end = -1
    for candidate in sorted(candidates, key=_START):
        _, start, end, _ = candidate
        if start >= cluster_end and cluster:
            kept.extend(cluster if len(cluster) == 1 else _best_of(cluster))
            cluster = [candidate]
        else:
            cluster.append(candidate)
        cluster_end = max(cluster_end, end)
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
