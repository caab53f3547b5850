"""Attachments read in a child process: the same locations as in-process reading, and a child
that dies, runs out of memory or stops answering costs one mail's attachments, never the
caller."""

from __future__ import annotations

import base64
import binascii
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack
import pytest

from mailsafe.extract import ExtractLimits, Location, Unreadable, extract_locations
from mailsafe.extract.isolated import AttachmentReader, _decode
from mailsafe.limited import ChildFailed
from mailsafe.mime import parse_message
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.scan import scan_parsed
from tests.support.documents import make_mail, make_pdf, make_xlsx, make_zip

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
# 33 MB of text: the child idles at about 100 MiB of address space and reading this peaks near
# 250, so a child limited to 180 MiB dies of it.
_BIG_TEXT = ("0123456789 " * 3_000_000).encode()
SAMPLE = "주민등록번호 800101-1234560"


@pytest.fixture
def reader() -> Iterator[AttachmentReader]:
    with AttachmentReader() as isolated:
        yield isolated


def documents_mail() -> bytes:
    """A PDF, a ZIP holding a spreadsheet, a file uuencoded into the text body and one linked
    as a data: URI from the HTML body (both read before the attachments: the order the
    child's answers are matched in)."""
    archive = make_zip({"표.xlsx": make_xlsx([["이름", SAMPLE]]), "a.txt": b"plain"})
    encoded = binascii.b2a_uu(SAMPLE.encode()).decode()
    body = f"첨부합니다.\nbegin 644 old.txt\n{encoded}`\nend\n"
    linked = base64.b64encode(make_xlsx([["이름", SAMPLE]])).decode()
    xlsx_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    html = f'<p>첨부합니다.</p><a href="data:{xlsx_type};base64,{linked}">명단</a>'
    return make_mail(
        text=body,
        html=html,
        attachments=[("report.pdf", make_pdf(SAMPLE)), ("files.zip", archive)],
    )


def test_child_reads_what_the_process_itself_would(reader: AttachmentReader) -> None:
    mails = [documents_mail()] + [
        path.read_bytes() for path in sorted(CORPUS.iterdir()) if path.name != "README.md"
    ]
    assert len(mails) > 300
    for raw in mails:
        parsed = parse_message(raw)
        assert reader.read(parsed) == extract_locations(parsed), raw[:200]
    found = reader.read(parse_message(mails[0]))
    places = {i.where for i in found if isinstance(i, Location) and "800101" in i.text}
    assert places == {
        "attachment:old.txt", "attachment:body.html/data-1.xlsx", "attachment:report.pdf",
        "attachment:files.zip/표.xlsx",
    }  # fmt: skip


def test_a_child_killed_while_it_reads_is_replaced_and_the_mail_read_again(
    reader: AttachmentReader,
) -> None:
    """Killed from outside (an operator, the kernel's OOM killer) after it had read other
    mail: not this mail's doing, so the mail gets a second try with a new child."""
    parsed = parse_message(documents_mail())
    reader.read(parsed)  # the child is up
    pid = reader.child_pid
    assert pid is not None
    # Stopped first, so it cannot answer before the kill, whatever the machine's load.
    os.kill(pid, signal.SIGSTOP)
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(reader.read, parsed)
        _wait_for(lambda: reader._lock.locked())
        time.sleep(0.3)  # the job is written to the stopped child's pipe
        os.kill(pid, signal.SIGKILL)
        assert reading.result(timeout=60) == extract_locations(parsed)
    assert reader.child_pid not in (None, pid)


def test_a_file_that_kills_its_reader_costs_the_attachments_only() -> None:
    """A child that dies on this mail (here: of its memory limit, as on a crafted file)
    makes every attachment unreadable; the subject, body and names are still read, the
    policy holds the mail, and the next mail is read by a new child."""
    parsed = parse_message(documents_mail())
    with AttachmentReader(memory_bytes=180 * 1024 * 1024) as reader:
        reader.read(parsed)
        big = parse_message(make_mail(attachments=[("big.txt", _BIG_TEXT)], text="본문"))
        found = reader.read(big)
        assert [(u.where, u.reason) for u in found if isinstance(u, Unreadable)] == [
            ("attachment:big.txt", "reader-failed")
        ]
        places = {i.where for i in found if isinstance(i, Location)}
        assert places == {"subject", "body.text", "attachment-name:big.txt"}
        result = scan_parsed(big, default_rules(), SenderInfo("kim@corp.example"), found=found)
        assert result.decision.action == "approve"
        assert reader.read(parsed) == extract_locations(parsed)


def test_a_child_that_died_while_idle_is_replaced_before_the_next_mail(
    reader: AttachmentReader,
) -> None:
    parsed = parse_message(documents_mail())
    reader.read(parsed)
    pid = reader.child_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{pid}/cmdline").read_bytes())  # gone (a zombie)
    assert reader.read(parsed) == extract_locations(parsed)
    assert reader.child_pid != pid


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_child_that_stops_answering_is_a_timeout() -> None:
    raw = documents_mail()
    parsed = parse_message(raw)
    with AttachmentReader(ExtractLimits(max_seconds=0.5), grace_seconds=0.5) as reader:
        reader.read(parsed)
        pid = reader.child_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a decoder stuck in one call, as the parent sees it
        found = reader.read(parsed)
        assert {i.reason for i in found if isinstance(i, Unreadable)} == {"timeout"}
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed, not left behind
        assert reader.read(parsed) == extract_locations(parsed)


def _reply(items: object) -> bytes:
    return bytes(msgpack.packb(items))


@pytest.mark.parametrize(
    "untrusted",
    [
        b"\xc1 not msgpack",
        _reply({"L": "x"}),
        _reply([]),  # no answer for the one attachment
        _reply([[], []]),  # two answers
        _reply([[["L", "attachment:a"]]]),
        _reply([[["U", "attachment:a", "no-such-reason", ""]]]),
        _reply([[["X", "attachment:a", "text"]]]),
        _reply([[["L", "attachment:a", b"bytes, not text"]]]),
        _reply([[["L", "x" * 70_000, "text"]]]),
        _reply([[["L", "attachment:a", "t" * 11]]]),  # over max_text_chars
        _reply([[["L", "attachment:a", "text"]]]) + b"trailing",
    ],
)
def test_a_reply_that_is_not_one_list_of_places_per_attachment_is_refused(
    untrusted: bytes,
) -> None:
    with pytest.raises(ChildFailed) as refused:
        _decode(untrusted, ExtractLimits(max_text_chars=10), files=1)
    assert refused.value.reason == "reader-failed"


def test_a_well_formed_reply_is_taken() -> None:
    reply = _reply([[["L", "attachment:a", "text"], ["U", "attachment:a/b", "encrypted", "pw"]]])
    assert _decode(reply, ExtractLimits(), files=1) == [
        [Location("attachment:a", "text"), Unreadable("attachment:a/b", "encrypted", "pw")]
    ]
