"""Releasing mail the outer agent quarantined: back into the intake with the same envelope
and bundle id, rendered again; evidence kept; torn records and packages are refused."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from maildiode.cli import main
from outer_agent.requeue import RequeueError, release
from outer_agent.spool import Spool, SpoolRecord
from tests.outer.test_spool import envelope


def _quarantined(spool: Spool, number: int = 1, payload: bytes = b"mail") -> str:
    env = envelope(number)
    spool.quarantine(spool.write_received(env, payload), "render_crash: worker died")
    return env.mail_id


def test_a_released_mail_is_split_again_with_its_envelope_and_bundle_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    mail_id = _quarantined(spool)
    original = spool.read(tmp_path / "quarantine" / mail_id)
    done = release(spool, mail_id)
    assert done.mail_ids == (mail_id,)
    assert list(spool.iter_quarantine()) == []
    assert spool.counts()["quarantine"] == 0
    assert sorted(os.listdir(tmp_path / "quarantine" / "released")) == [
        mail_id,
        mail_id + ".reason",
    ]
    (split,) = spool.split_incoming()  # what the running agent's splitter does within a second
    assert split == original.envelope  # same bundle id: the inner side de-duplicates
    assert spool.pending() == [f"{mail_id}.0"]  # attempts start again
    assert spool.read(tmp_path / "received" / f"{mail_id}.0").payload == b"mail"


def test_a_quarantined_segment_releases_every_mail_in_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    envs = [envelope(n) for n in range(3)]
    segment = spool.write_segment([(env, b"mail %d" % n) for n, env in enumerate(envs)])
    spool.quarantine(segment, "operator hold")
    assert release(spool, segment.name).mail_ids == tuple(e.mail_id for e in envs)
    assert [e.mail_id for e in spool.split_incoming()] == [e.mail_id for e in envs]


def test_torn_records_packages_and_unknown_names_are_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    torn = _quarantined(spool, 1, b"x" * 100)
    path = tmp_path / "quarantine" / torn
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(RequeueError, match="torn"):
        release(spool, torn)
    assert path.exists()  # the evidence stays where it was
    env = envelope(2)
    package = spool.write_received(env, b"pkg")
    package.write_bytes(
        SpoolRecord({"envelope": env.to_json(), "kind": "package"}, b"pkg").encode()
    )
    spool.quarantine(package, "spool_corrupt")
    with pytest.raises(RequeueError, match="not a received mail"):
        release(spool, env.mail_id)
    with pytest.raises(RequeueError, match="no such mail"):
        release(spool, "0" * 32)
    assert os.listdir(tmp_path / "incoming") == []


def test_command_line_with_the_outer_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maildiode.commands.check import load_agent_config

    assert main(["init", str(tmp_path / "trial")]) == 0
    outer_toml = tmp_path / "trial" / "outer.toml"
    config = load_agent_config(outer_toml, "outer")
    spool = Spool(config.spool.dir / "inbound")
    mail_id = _quarantined(spool)
    assert main(["requeue", "-c", str(outer_toml), mail_id]) == 0
    assert f"released {mail_id}" in capsys.readouterr().out
    assert len(os.listdir(config.spool.dir / "inbound" / "incoming")) == 1
    db = sqlite3.connect(config.audit.path)
    assert db.execute("SELECT COUNT(*) FROM events WHERE step = 'requeued'").fetchone() == (1,)
    assert main(["requeue", "-c", str(outer_toml), mail_id]) == 1  # already released


def test_the_running_agent_renders_and_publishes_a_released_mail(tmp_path: Path) -> None:
    """Real agent process: the splitter takes the released segment within a second."""
    import subprocess
    import sys
    import time

    from maildiode.commands.check import load_agent_config
    from tests.outer.agent_support import AgentProcess, make_agent_dir

    directory = make_agent_dir(tmp_path)
    process = AgentProcess(directory)
    process.start()
    try:
        spool = Spool(load_agent_config(directory.config, "outer").spool.dir / "inbound")
        env = envelope(7)
        raw = b"From: a@ext.example\r\nTo: u@corp.example\r\nSubject: held\r\n\r\nhello\r\n"
        spool.quarantine(spool.write_received(env, raw), "operator hold")
        command = [sys.executable, "-m", "maildiode", "requeue", "-c", str(directory.config),
                   env.mail_id]  # fmt: skip
        assert subprocess.run(command, capture_output=True, timeout=60).returncode == 0
        deadline, steps = time.monotonic() + 60, []
        while "published" not in steps and time.monotonic() < deadline:
            time.sleep(0.2)
            with sqlite3.connect(directory.audit_path) as db:
                rows = db.execute(
                    "SELECT step FROM events WHERE mail_id = ? ORDER BY ts", (env.mail_id,)
                )
                steps = [row[0] for row in rows]
        assert steps == ["requeued", "rendered", "published"]
    finally:
        process.stop()
