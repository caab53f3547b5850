"""Releasing a quarantined bundle after its cause is fixed: checked again, queued once, the
evidence kept; still-bad bundles stay in quarantine."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from inner_agent.bundle_check import ImagePolicy
from inner_agent.bundle_handler import BundleHandler
from inner_agent.inject import InjectionQueue
from inner_agent.notify import NotifyOptions
from inner_agent.requeue import BundleRefused, RequeueError, release
from maildiode.cli import main
from mailsafe.payload import encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import make_handler, rendered

WIDE: dict[str, int] = {"pages": 1, "width": 400, "height": 300}  # 120 000 px


def _handler(tmp_path: Path, max_pixels: int) -> BundleHandler:
    return make_handler(tmp_path, max_pixels=max_pixels)


def _quarantine_one(tmp_path: Path, n: int = 7) -> Path:
    """A bundle refused for a page over a (too strict) pixel cap; returns its .bin file."""
    strict = _handler(tmp_path, max_pixels=50_000)
    strict(ReceivedBundle("inbound", n, bytes([n]) * 16, Kind.DATA,
                          encode_package(rendered(**WIDE)), 1_800_000_000_000, 1))  # fmt: skip
    (found,) = strict.quarantine_dir.glob("bundle-*.bin")
    assert json.loads(found.with_suffix(".reason.json").read_text())["reason"] == "image_pixels"
    return found


def test_released_after_the_cap_is_raised_queued_once_evidence_kept(tmp_path: Path) -> None:
    path = _quarantine_one(tmp_path)
    fixed = _handler(tmp_path, max_pixels=1_000_000)
    done = release(path, fixed)
    assert (done.notifications, done.already_queued) == (1, False)
    assert fixed.queue.counts() == {"queued": 1}
    assert not path.exists()
    released = path.parent / "released"
    assert sorted(p.name for p in released.iterdir()) == [path.name, path.stem + ".reason.json"]
    (event,) = fixed.audit.query(step="requeued")
    assert event.details["previous_reason"] == "image_pixels"
    # the link replaying the same bundle later changes nothing: it is handled
    fixed(ReceivedBundle("inbound", 7, bytes([7]) * 16, Kind.DATA,
                         encode_package(rendered(**WIDE)), 1_800_000_000_000, 1))  # fmt: skip
    assert fixed.queue.counts() == {"queued": 1}


def test_still_refused_stays_in_quarantine(tmp_path: Path) -> None:
    path = _quarantine_one(tmp_path)
    with pytest.raises(BundleRefused) as refused:
        release(path, _handler(tmp_path, max_pixels=50_000))
    assert refused.value.code == "image_pixels"
    assert path.exists()
    assert _handler(tmp_path, 1).queue.counts() == {}


def test_files_that_are_not_quarantined_bundles_are_refused(tmp_path: Path) -> None:
    handler = _handler(tmp_path, max_pixels=1_000_000)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(RequeueError):
        release(other, handler)
    with pytest.raises(RequeueError):
        release(tmp_path / "bundle-00.bin", handler)  # no such file
    path = _quarantine_one(tmp_path)
    reason = path.with_suffix(".reason.json")
    reason.write_text(json.dumps({**json.loads(reason.read_text()), "reason": "unexpected_kind"}))
    with pytest.raises(RequeueError):
        release(path, handler)


def test_command_line_releases_with_the_agents_config(tmp_path: Path, capsys) -> None:
    assert main(["init", str(tmp_path / "trial")]) == 0
    from maildiode.commands.check import load_agent_config

    inner_toml = tmp_path / "trial" / "inner.toml"
    config = load_agent_config(inner_toml, "inner")
    state = Path(config.state.dir)
    strict = BundleHandler(
        InjectionQueue(state / "inject.db"), AuditLog(config.audit.path),
        NotifyOptions(our_domains=tuple(config.notify.our_domains)),
        ImagePolicy(max_pixels=50_000), state / "quarantine",
    )  # fmt: skip
    mail = rendered(**WIDE, rcpt=(f"user@{config.notify.our_domains[0]}",))
    strict(ReceivedBundle("inbound", 3, b"\x03" * 16, Kind.DATA, encode_package(mail),
                          1_800_000_000_000, 1))  # fmt: skip
    strict.queue.close()
    (path,) = (state / "quarantine").glob("bundle-*.bin")
    assert main(["requeue", "-c", str(inner_toml), str(path)]) == 0
    assert "1 notification(s) queued" in capsys.readouterr().out
    db = sqlite3.connect(state / "inject.db")
    assert db.execute("SELECT COUNT(*) FROM messages WHERE state = 'queued'").fetchone() == (1,)
    assert main(["requeue", "-c", str(inner_toml), str(path)]) == 1  # gone: moved to released/


def test_a_second_release_of_a_copy_does_not_queue_twice(tmp_path: Path) -> None:
    path = _quarantine_one(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for source in (path, path.with_suffix(".reason.json")):
        (copy / source.name).write_bytes(source.read_bytes())
    fixed = _handler(tmp_path, max_pixels=1_000_000)
    release(path, fixed)
    again = release(copy / path.name, fixed)
    assert again.already_queued
    assert fixed.queue.counts() == {"queued": 1}


def test_the_command_writes_no_queue_the_host_no_longer_holds(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """D108: the injection queue is what the active host's agent sends from. The old command
    queued the release from a standby host, and from a host whose lease a standby took while
    the command ran (exit 0, one notification queued each time). Now: refused at the start on
    a standby host; refused at the write after a takeover meanwhile (the hook: right after the
    start's check); exit 4 both times, the queue empty, the files still in quarantine."""
    from agentkit.lease import Claimant
    from agentkit.leasekeeper import LeaseStore
    from maildiode.commands import requeue
    from maildiode.commands.check import load_agent_config

    assert main(["init", str(tmp_path / "trial")]) == 0
    inner_toml = tmp_path / "trial" / "inner.toml"
    config = load_agent_config(inner_toml, "inner")
    state = Path(config.state.dir)
    strict = BundleHandler(
        InjectionQueue(state / "inject.db"), AuditLog(config.audit.path),
        NotifyOptions(our_domains=tuple(config.notify.our_domains)),
        ImagePolicy(max_pixels=50_000), state / "quarantine",
    )  # fmt: skip
    mail = rendered(**WIDE, rcpt=(f"user@{config.notify.our_domains[0]}",))
    strict(ReceivedBundle("inbound", 3, b"\x03" * 16, Kind.DATA, encode_package(mail),
                          1_800_000_000_000, 1))  # fmt: skip
    strict.queue.close()
    (path,) = (state / "quarantine").glob("bundle-*.bin")
    lease, other = LeaseStore(state), Claimant("the-other-host", 5353, 600.0)
    taken = lease.attempt(other)
    assert main(["requeue", "-c", str(inner_toml), str(path)]) == 4
    assert "requeue: refused: this host" in capsys.readouterr().err
    lease.release(other, taken.lease.token)  # type: ignore[union-attr]
    checked = requeue.standby_refusal

    def check_then_freeze(*args, **kwargs):
        refusal = checked(*args, **kwargs)
        lease.attempt(other)  # the standby takes over while the command runs
        return refusal

    monkeypatch.setattr(requeue, "standby_refusal", check_then_freeze)
    assert main(["requeue", "-c", str(inner_toml), str(path)]) == 4
    lease.close()
    err = capsys.readouterr().err
    assert "held by the-other-host (it was taken while this command ran)" in err
    db = sqlite3.connect(state / "inject.db")
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
    db.close()
    assert path.exists()  # still in quarantine
