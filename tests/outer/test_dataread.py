"""DATA read in one piece: same bytes and replies as a line-by-line reader, fed any way."""

from __future__ import annotations

import asyncio
import random
import smtplib
import socket

import pytest

from outer_agent.dataread import REPLY_LINE_TOO_LONG, REPLY_TOO_MUCH, read_data

CASES = [  # (wire bytes after 354, expected content or refusal, what follows)
    (b".\r\n", b"", b""),
    (b"a\r\n.\r\n", b"a\r\n", b""),
    (b"..\r\n.\r\n", b".\r\n", b""),
    (b".x\r\n..y\r\nz\r\n.\r\n", b"x\r\n.y\r\nz\r\n", b""),
    (b"one\r\n\r\n.\r\nQUIT\r\n", b"one\r\n\r\n", b"QUIT\r\n"),
    (b"bare\n.\nstill data\r\n.\r\n", b"bare\n.\nstill data\r\n", b""),  # no smuggling
    (b"cr\r.\r\nstill\r\n.\r\n", b"cr\r.\r\nstill\r\n", b""),
    (b"x" * 999 + b"\r\n.\r\n", b"x" * 999 + b"\r\n", b""),
    (b"x" * 1000 + b"\r\n.\r\n", REPLY_LINE_TOO_LONG, b""),
    (b"y" * 2000 + b"\r\n.\r\nNOOP\r\n", REPLY_TOO_MUCH, b"NOOP\r\n"),
]


async def feed_and_read(wire: bytes, pieces: list[bytes], limit: int):
    reader = asyncio.StreamReader(limit=1001)

    async def feeder():
        for piece in pieces:
            reader.feed_data(piece)
            await asyncio.sleep(0)
        reader.feed_eof()

    task = asyncio.create_task(feeder())
    result = await read_data(reader, limit)
    await task
    rest = await reader.read()
    return result, rest


def split_randomly(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = (
        sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 8))))
        if len(data) > 1
        else []
    )
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize(("wire", "expected", "after"), CASES)
@pytest.mark.parametrize("feeding", ["whole", "bytewise", "random"])
def test_cases_fed_whole_bytewise_and_in_random_pieces(wire, expected, after, feeding):
    rng = random.Random(hash(wire) & 0xFFFF)
    pieces = {
        "whole": [wire],
        "bytewise": [wire[i : i + 1] for i in range(len(wire))],
        "random": split_randomly(wire, rng),
    }[feeding]
    result, rest = asyncio.run(feed_and_read(wire, pieces, limit=1500))
    if isinstance(expected, bytes):
        assert result.content == expected
        assert result.refusal is None
    else:
        assert result.content is None
        assert result.refusal == expected
    assert rest == after


def test_oversize_then_a_second_transaction_in_the_same_session(intake):
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        code, _ = client.data(b"z" * 990 + b"\r\n" + (b"w" * 990 + b"\r\n") * 120)
        assert code == 552
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        assert client.data(b"Subject: ok\r\n\r\nfine\r\n")[0] == 250


def test_pipelined_transaction_in_one_write(intake):
    sock = socket.create_connection(("127.0.0.1", intake.port))
    sock.settimeout(5)
    sock.recv(1024)
    sock.sendall(b"EHLO x\r\n")
    data = b""
    while b"250 " not in data:
        data += sock.recv(4096)
    sock.sendall(b"MAIL FROM:<a@ext.example>\r\nRCPT TO:<u@corp.example>\r\nDATA\r\n")
    replies = b""
    while b"354" not in replies:
        replies += sock.recv(4096)
    sock.sendall(b"Subject: p\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
    while b"221" not in replies:
        chunk = sock.recv(4096)
        if not chunk:
            break
        replies += chunk
    sock.close()
    assert b"250 2.0.0 OK" in replies
    assert b"221" in replies
