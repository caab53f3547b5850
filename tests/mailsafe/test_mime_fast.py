"""The fast MIME tree builder in mailsafe.mime gives exactly what the stdlib feedparser gives.

Every real, generated and randomly built (and corrupted) mail is parsed both ways; the
ParsedMail results and the email.message trees themselves must be equal.
"""

from __future__ import annotations

import email.message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsafe import mime
from mailsafe.mime import parse_message
from tests.support import mailmaker

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _tree(message: email.message.Message) -> object:
    """Everything feedparser sets on a message, nested, for equality checks."""
    payload = vars(message).get("_payload")
    if isinstance(payload, list):
        payload = [_tree(part) for part in payload]
    return (
        message.get_unixfrom(),
        list(message.raw_items()),
        message.get_default_type(),
        message.preamble,
        message.epilogue,
        [type(defect).__name__ for defect in message.defects],
        payload,
    )


def _assert_same(raw: bytes) -> None:
    assert _tree(mime._message_tree(raw)) == _tree(mime._stdlib_tree(raw))
    assert parse_message(raw) == parse_message(raw, fast_path=False)


def _fast_path_taken(raw: bytes) -> bool:
    try:
        mime._fast_node(raw, 0)
    except Exception:
        return False
    return True


@cache
def _generated_mails() -> tuple[bytes, ...]:
    from tests.benchmarks.bench_scan import generated_mails
    from tests.support.pii_eval import load_examples

    return tuple(generated_mails(load_examples()))


def _mailmaker_samples() -> list[bytes]:
    return [
        *(mailmaker.korean_legacy_mail(c) for c in ("euc-kr", "cp949", "iso-2022-kr")),
        mailmaker.korean_legacy_mail("euc-kr", "quoted-printable"),
        mailmaker.html_mail(mailmaker.TYPICAL_HTML),
        mailmaker.mail_with_attachment(mailmaker.png(), "a.png", "image", "png"),
        mailmaker.mail_with_attachment(mailmaker.pdf_pages(2), "a.pdf", "application", "pdf"),
    ]


def test_every_corpus_mail_parses_the_same_both_ways() -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.name != "README.md")
    assert len(files) >= 350, f"corpus not found at {CORPUS}"
    taken = 0
    for path in files:
        raw = path.read_bytes()
        _assert_same(raw)
        taken += _fast_path_taken(raw)
    assert taken >= 0.6 * len(files)  # the fast path is really used on real mail


def test_every_generated_benchmark_mail_parses_the_same_both_ways() -> None:
    mails = _generated_mails()
    assert len(mails) >= 100
    for raw in mails:
        _assert_same(raw)
        assert _fast_path_taken(raw)


def test_mailmaker_samples_parse_the_same_both_ways() -> None:
    for raw in _mailmaker_samples():
        _assert_same(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-Type: multipart/mixed; boundary=b\n\npre\n--b\n\nx\n--b--\nepi\n--b\nmore\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b  \r\n\r\nx\r\n--b-- \r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=b\n\nno delimiter\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nnever closed\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n--b\n\nx\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nbroken header\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\nx--b\n--bb\n--b\n\n\x0c--b\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\r\n\nx\r--b\n--b--\n",
        b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: s\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n"
        b"--b\n\nx\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\n"
        b"Content-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n--a\n\nouter\n--a--\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\n"
        b"Subject: in\nContent-Type: multipart/mixed; boundary=c\n\n--c\n\nz\n--c--\nepi\n\n"
        b"--a--\n",
        b"Content-Type: multipart/mixed; boundary*=utf-8''%C3%A9\n\n--\xc3\xa9\n\nx\n--\xc3\xa9--\n",
        b"From someone\nContent-Type: multipart/mixed; boundary=b\n\n--b\nFrom x\n\n\xff\xfe\n--b--\n",
        b"",
        b"\n",
        b"Subject: only headers",
        # Header blocks feedparser parses with defects or a line pushed back into the body.
        b"From someone\r\nSubject: s\r\n\r\nbody\r\n",
        b" continued first\nSubject: s\n\nbody\n",
        b"Subject: s\nFrom misplaced\nX: y\n\nbody\n",
        b"Subject: s\n: no name\n cont\nX: y\n\nbody\n",
        b"Subject: s\n\tcont\r\n  more\nX:\n\nbody\n",
        b"Subject: s\nFrom last\n\nbody\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nFrom x\nA: 1\n\nz\n--b\n"
        b" : c\nFrom y\n\nw\n--b--\n",
    ],
)
def test_edge_cases_parse_the_same_both_ways(raw: bytes) -> None:
    _assert_same(raw)


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (b" continued first\nSubject: s\n\nbody\n", "FirstHeaderLineIsContinuationDefect"),
        (b"Subject: s\nFrom misplaced\nX: y\n\nbody\n", "MisplacedEnvelopeHeaderDefect"),
        (b"Subject: s\n: no name\n cont\nX: y\n\nbody\n", "InvalidHeaderDefect"),
    ],
)
def test_header_defects_are_built_by_the_fast_path(raw: bytes, defect: str) -> None:
    """The fast path parses header blocks itself: these take it, defects and all."""
    assert _fast_path_taken(raw)
    assert defect in [type(found).__name__ for found in mime._message_tree(raw).defects]


def test_unix_from_line_is_kept_by_the_fast_path() -> None:
    raw = b"From someone\r\nSubject: s\r\n\r\nbody\r\n"
    assert _fast_path_taken(raw)
    assert mime._message_tree(raw).get_unixfrom() == "From someone"


# --------------------------------------------------------------------------- random mail

_BOUNDARY = st.text("abcXYZ09'()+_,-./:=? ", min_size=1, max_size=12).filter(
    lambda b: b.strip() == b and not b.endswith(" ")
)
_TEXT = st.text(st.sampled_from("ab 한\n-\t="), max_size=40)
# Preambles and epilogues are written as they are, so they must be ASCII.
_ASCII_TEXT = st.text(st.sampled_from("ab \n\r-\t="), max_size=40)


def _leaves() -> st.SearchStrategy[email.message.Message]:
    text = st.builds(
        lambda body, subtype, charset: MIMEText(body, subtype, charset),
        _TEXT,
        st.sampled_from(["plain", "html", "calendar"]),
        st.sampled_from(["utf-8", "euc-kr"]),
    )
    binary = st.builds(
        lambda data, name: _named(MIMEApplication(data), name),
        st.binary(max_size=300),
        st.sampled_from(["a.pdf", "표.xlsx", "x"]),
    )
    raw_leaf = st.builds(_raw_part, st.binary(max_size=60))
    return st.one_of(text, binary, raw_leaf)


def _named(part: email.message.Message, name: str) -> email.message.Message:
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def _raw_part(data: bytes) -> email.message.Message:
    part = MIMEBase("application", "octet-stream")
    part.set_payload(data.decode("ascii", "surrogateescape"))
    return part


def _multipart(
    children: list[email.message.Message],
    subtype: str,
    boundary: str,
    preamble: str | None,
    epilogue: str | None,
) -> email.message.Message:
    part = MIMEMultipart(subtype, boundary=boundary)
    for child in children:
        part.attach(child)
    part.preamble = preamble
    part.epilogue = epilogue
    return part


def _forward(inner: email.message.Message) -> email.message.Message:
    inner["Subject"] = "forwarded"
    return MIMEMessage(inner)


_MESSAGES = st.recursive(
    _leaves(),
    lambda inner: st.one_of(
        st.builds(
            _multipart,
            st.lists(inner, min_size=1, max_size=4),
            st.sampled_from(["mixed", "alternative", "related", "signed", "digest"]),
            _BOUNDARY,
            st.none() | _ASCII_TEXT,
            st.none() | _ASCII_TEXT,
        ),
        st.builds(_forward, inner),
    ),
    max_leaves=8,
)


def _serialise(message: email.message.Message, crlf: bool) -> bytes:
    message["Subject"] = "random"
    return message.as_bytes(policy=compat32.clone(linesep="\r\n" if crlf else "\n"))


_SPLICES = st.sampled_from(
    [b"--", b"\n", b"\r\n", b"\r", b"\x0c", b" ", b"\n\n", b"--\n", b"X: y\n", b"--a", b"\xff"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_MESSAGES, crlf=st.booleans())
def test_random_multipart_structures_parse_the_same_both_ways(
    message: email.message.Message, crlf: bool
) -> None:
    _assert_same(_serialise(message, crlf))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=_MESSAGES,
    crlf=st.booleans(),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 6), _SPLICES | st.binary(max_size=4)),
        min_size=1,
        max_size=5,
    ),
)
def test_randomly_corrupted_mail_parses_the_same_both_ways(
    message: email.message.Message, crlf: bool, edits: list[tuple[float, int, bytes]]
) -> None:
    raw = bytearray(_serialise(message, crlf))
    for where, cut, splice in edits:
        at = int(where * len(raw))
        raw[at : at + cut] = splice
    _assert_same(bytes(raw))


def test_random_structures_take_the_fast_path() -> None:
    inner = _multipart([MIMEText("a"), _raw_part(b"\x00\xff")], "alternative", "in", None, None)
    outer = _multipart([inner, _forward(MIMEText("b"))], "mixed", "out", "pre", "epi")
    raw = _serialise(outer, crlf=True)
    assert _fast_path_taken(raw)
    _assert_same(raw)
