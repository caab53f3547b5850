"""Fixtures for the protocol tests: fixed keys, a fake clock, and a link on a temp folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol import (
    FolderIntake,
    FolderTransport,
    Keyring,
    LinkReader,
    ReceivedBundle,
    Receiver,
    Sender,
    SigningKey,
)
from tests.protocol.golden import KEY_A, KEY_B

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock the test moves by hand: timeouts without sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Link:
    """A sender and a reader joined by a folder that the test carries files across."""

    root: Path
    clock: FakeClock
    key: SigningKey
    chunk_size: int = 64
    done_group: int = 1  # LinkReader's: done marks per sync to disk
    delivered: list[ReceivedBundle] = field(default_factory=list)
    sender: Sender | None = None
    reader: LinkReader | None = None

    @property
    def send_dir(self) -> Path:
        return self.root / "send"

    @property
    def recv_dir(self) -> Path:
        return self.root / "recv"

    def open_sender(self, **options: object) -> Sender:
        transport = FolderTransport(self.send_dir)
        self.sender = Sender(self.root / "sender-state", "inbound", self.key, transport,
                             chunk_size=self.chunk_size, clock=self.clock, **options)  # type: ignore[arg-type]  # fmt: skip
        return self.sender

    def open_reader(self, keyring: Keyring | None = None, **options: object) -> LinkReader:
        intake = FolderIntake(self.recv_dir, self.root / "work", self.root / "quarantine",
                              settle_s=0, watch=False, clock=self.clock)  # fmt: skip
        receiver = Receiver(self.root / "receiver-state", "inbound",
                            keyring or Keyring([self.key.verify_key]), clock=self.clock,
                            **options)  # type: ignore[arg-type]  # fmt: skip
        self.reader = LinkReader(intake, receiver, done_group=self.done_group)
        return self.reader

    def carry(self) -> list[str]:
        """Move every published file to the delivery folder (the linkage product)."""
        self.recv_dir.mkdir(exist_ok=True)
        names = sorted(os.listdir(self.send_dir))
        for name in names:
            os.rename(self.send_dir / name, self.recv_dir / name)
        return names

    def poll(self) -> int:
        assert self.reader is not None
        return self.reader.poll(self.delivered.append)

    def quarantined(self) -> list[str]:
        """Reason codes of the quarantined files."""
        import json

        return sorted(
            json.loads(p.read_text())["reason"]
            for p in (self.root / "quarantine").glob("*.reason.json")
        )

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        if self.reader is not None:
            self.reader.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def link(tmp_path: Path, clock: FakeClock) -> Iterator[Link]:
    made = Link(tmp_path, clock, KEY_A)
    made.open_sender()
    made.open_reader()
    yield made
    made.close()


@pytest.fixture
def key_a() -> SigningKey:
    return KEY_A


@pytest.fixture
def key_b() -> SigningKey:
    return KEY_B
