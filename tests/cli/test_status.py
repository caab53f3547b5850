"""`maildiode status` reports what the receiving side recorded: sequence, gaps, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from inner_agent.link import build_reader
from maildiode.commands.check import load_agent_config
from protocol import FolderTransport, Kind, Sender, SigningKey


def maildiode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "maildiode", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_status_shows_sequence_gap_and_quarantine(tmp_path: Path) -> None:
    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    quiet = maildiode("status", "-c", str(root / "inner.toml"))
    assert quiet.returncode == 0
    assert "nothing received yet" in quiet.stdout

    # the outer agent's key publishes bundles 1..3; bundle 2 is lost on the way
    sender = Sender(root / "outer/test-sender", "inbound", SigningKey.load(root / "keys/outer.key"),
                    FolderTransport(root / "link/in/send"), chunk_size=4096)  # fmt: skip
    for number in (1, 2, 3):
        sender.publish(b"bundle %d" % number, bytes([number]) * 16, Kind.DATA)
        files = sorted((root / "link/in/send").iterdir())
        for path in files:
            if number != 2:
                shutil.copy(path, root / "link/in/recv" / path.name)
            path.unlink()
    sender.close()
    (root / "link/in/recv/garbage.mdc").write_bytes(b"not a chunk at all")

    toml = root / "inner.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("gap_wait_s = 300", "gap_wait_s = 0.01")
                    .replace("settle_s = 1", "settle_s = 0"), encoding="utf-8")  # fmt: skip
    config = load_agent_config(toml, "inner")
    reader = build_reader(config, config.state.dir)
    delivered: list[bytes] = []
    reader.poll(lambda bundle: delivered.append(bundle.data))
    reader.close()
    assert sorted(delivered) == [b"bundle 1", b"bundle 3"]

    result = maildiode("status", "-c", str(root / "inner.toml"), "--json")
    status = json.loads(result.stdout)
    assert status["highest_seq"] == 3
    assert status["gaps"] == [2]
    assert sum(v for k, v in status["counters"].items() if "quarantin" in k) >= 1
    assert result.returncode == 1  # a gap is something an operator must look at
    text = maildiode("status", "-c", str(root / "inner.toml")).stdout
    assert "gaps:            2" in text
