"""The detector's shortcuts find exactly what the plain way finds (issue 19's speed-up).

Each shortcut is checked against the slow way it replaces, on random texts built from the
pieces the patterns care about: number patterns tried only at starts whose first digit they
can begin with (against every pattern run over every region), secret starts found in one
pass (against a search at every position), context words remembered by window content and
masked forms remembered by value (against a fresh detector's answer on the same texts).
"""

from __future__ import annotations

import random
import re

import pytest

from mailsafe.pii import detect
from mailsafe.pii.context import ContextIndex
from mailsafe.pii.detectors import NUMBER_PATTERNS, Candidate, find_numbers, number_runs
from mailsafe.pii.normalize import normalize
from mailsafe.pii.text_finders import (
    _MRZ_LINE_RE,
    _PRIVATE_KEY_RE,
    _URL_PASSWORD_RE,
    PRIVATE_KEY,
    URL_PASSWORD,
    _secret_at,
    find_secrets,
)

SEED = 19
TEXTS = 1500

NUMBER_PIECES = (
    "010-1234-5678", "02-123-4567", "031 123 4567", "01012345678", "0311234567", "0505-123-4567",
    "800101-1234567", "800101-5234567", "8001011234567", "4111-1111-1111-1111", "4111111111111111",
    "110-123-456789", "1002-123-456789", "11-12-345678-90", "111234567890", "28-12-345678-90",
    "12345678901", "2024-07-15", "٠١٠-١٢٣٤-٥٦٧٨", "０１０－１２３４－５６７８", "연락처 ", "계좌번호 ",
    "카드번호 ", "tel ", "주민번호: ", "\t", ",", "\n", " ", "-", ".", "0", "1", "2", "9", "a", "ab",
)  # fmt: skip
SECRET_PIECES = (
    "sk-", "sk-proj-abcdefghijklmnopqrstuvwxyz12", "rk_live_", "sk_live_abcdefghijklmnopqrstu",
    "k_live_", "npm_", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_" + "a" * 36,
    "github_pat_" + "b" * 22, "glpat-" + "x" * 20, "xoxb-1234567890ab", "xox",
    "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.abcdefghijk", "eyJ", "AKIAA1B2C3D4E5F6G7H8",
    "AIza" + "b" * 35, "PW: x7Gk2!ab", "Pw=abcd1234", "password=hunter22", "Passcode: 9988aa",
    "비밀번호: 1234", "비번 : abcd12", "패스워드=qwer1234", "암호: zz99zz", "id: kim", "pass", "PASS:",
    "://user:secret12@host", "-", "_", "k", "s", "n", "p", "J", "y", "e", " ", "\n", "ab",
)  # fmt: skip


def _texts(pieces: tuple[str, ...], seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30))) for _ in range(TEXTS)]


def _every_pattern_everywhere(text: str, regions: list[tuple[int, int]]) -> list[Candidate]:
    """What ``find_numbers`` replaced: each pattern run over each region on its own."""
    context = ContextIndex(text, regions)
    found = []
    for start, end in regions:
        for pattern, check, _ in NUMBER_PATTERNS:
            for match in pattern.finditer(text, start, end + 2):
                candidate = check(match, context)
                if candidate is not None:
                    found.append(candidate)
    return sorted(found)


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_numbers_tried_by_first_digit_are_what_every_pattern_finds(seed: int) -> None:
    for raw in _texts(NUMBER_PIECES, seed):
        text = normalize(raw)
        regions = number_runs(text)
        fast = sorted(find_numbers(text, ContextIndex(text, regions), regions))
        assert fast == _every_pattern_everywhere(text, regions), raw


def test_secret_starts_in_one_pass_are_a_search_at_every_position() -> None:
    for text in _texts(SECRET_PIECES, SEED):
        expected = {c for start in range(len(text)) for c in _secret_at(text, start)}
        expected |= {
            Candidate("secret", m.start(1), m.end(1), URL_PASSWORD)
            for m in _URL_PASSWORD_RE.finditer(text)
        }
        expected |= {
            Candidate("secret", m.start(), m.end(), PRIVATE_KEY)
            for m in _PRIVATE_KEY_RE.finditer(text)
        }
        assert set(find_secrets(text)) == expected, text


def test_remembered_context_and_masks_answer_as_a_first_reading() -> None:
    """The same window in many texts (a quoted signature, a template line) and the same
    value in many findings: the second reading answers as the first did."""
    line = "문의는 연락처 02-3456-7890 으로, 계좌 110-123-456789 (신한)."
    first = [(f.type, f.start, f.end, f.masked, f.confidence) for f in detect(line)]
    assert [kind for kind, *_ in first] == ["phone", "bank_account"]
    for prefix in ("", "x\n", "회신:\n> "):
        again = detect(prefix + line)
        shifted = [(f.type, f.start - len(prefix), f.end - len(prefix), f.masked, f.confidence)
                   for f in again]  # fmt: skip
        assert shifted == first
    table = "이름,전화\n" + "".join(f"직원{i},010-1234-{i:04d}\n" for i in range(50))
    assert {f.type for f in detect(table)} == {"phone"}
    assert len(detect(table)) == 50


# The MRZ line pattern as first written: the look-behind first, tested at every position.
MRZ_LINE_AS_WRITTEN = re.compile(
    r"(?<![A-Z0-9<])(?:P[A-Z<][A-Z<]{3}[A-Z<]{39}"
    r"|[A-Z0-9<]{9}[0-9][A-Z<]{3}[0-9]{7}[MFX<][0-9]{7}[A-Z0-9<]{14}[0-9<][0-9])(?![A-Z0-9<])"
)
MRZ_PIECES = (
    "P<KORHONG<<GILDONG<<<<<<<<<<<<<<<<<<<<<<<<<<", "M123456784KOR8001019M3001012<<<<<<<<<<<<<<06",
    "PMKOR", "<<<", "<", "P", "A", "0", "9", "M", "x", " ", "\n",
)  # fmt: skip


def test_mrz_lines_led_by_their_first_character_match_as_written() -> None:
    texts = _texts(MRZ_PIECES, SEED)
    lines = {m.group()[0] for text in texts for m in MRZ_LINE_AS_WRITTEN.finditer(text)}
    assert lines == {"P", "M"}  # the pieces make both lines of a zone
    for text in texts:
        for start in (0, 1, 5):
            fast = [m.span() for m in _MRZ_LINE_RE.finditer(text, start)]
            assert fast == [m.span() for m in MRZ_LINE_AS_WRITTEN.finditer(text, start)], text


def test_findings_made_by_the_fast_constructor_behave_as_frozen_dataclasses() -> None:
    """Finding and LocatedFinding write their fields directly (the frozen __init__ was a tenth
    of a dense list's scan): still frozen, equal, hashable, replaceable and picklable."""
    import dataclasses
    import pickle

    from mailsafe.pii.types import Finding
    from mailsafe.scan import LocatedFinding

    finding = Finding("phone", 3, 16, "010-1234-5678", "010-****-****", 0.95)
    assert dataclasses.astuple(finding) == (
        "phone", 3, 16, "010-1234-5678", "010-****-****", 0.95,
    )  # fmt: skip
    assert finding == Finding("phone", 3, 16, "010-1234-5678", "010-****-****", 0.95)
    assert hash(finding) == hash(pickle.loads(pickle.dumps(finding)))
    assert dataclasses.replace(finding, start=4).start == 4
    assert repr(finding).startswith("Finding(type='phone', start=3, end=16,")
    located = LocatedFinding("body", finding)
    assert (located.where, located.finding) == ("body", finding)
    assert located == LocatedFinding("body", finding)
    for frozen, field in ((finding, "start"), (located, "where")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, field, 0)
