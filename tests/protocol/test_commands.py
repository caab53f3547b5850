"""The protocol commands: keygen, inspect (every byte flipped), carry, resend."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maildiode.cli import main
from protocol import FolderTransport, Keyring, Sender, SigningKey, decode_chunk
from tests.protocol.golden import KEY_A, VECTOR_DIR


@pytest.fixture
def pub_a(tmp_path: Path) -> Path:
    path = tmp_path / "a.pub"
    KEY_A.verify_key.save(path)
    return path


def test_keygen_writes_private_0600_and_public_files(tmp_path: Path, capsys: object) -> None:
    assert main(["keygen", str(tmp_path / "k"), "--name", "outer", "--encryption"]) == 0
    folder = tmp_path / "k"
    for name in ("outer.key", "outer-enc.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    key = SigningKey.load(folder / "outer.key")
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert key.key_id.hex() in out
    assert (folder / "outer.pub").exists()
    assert (folder / "outer-enc.pub").exists()
    assert main(["keygen", str(folder), "--name", "outer"]) == 1  # never overwrites


def test_inspect_valid_vector_prints_header_and_exits_0(pub_a: Path, capsys: object) -> None:
    assert main(["inspect", str(VECTOR_DIR / "valid" / "data-0.mdc"), "--key", str(pub_a)]) == 0
    report = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert report["verdict"] == f"verifies under key {KEY_A.key_id.hex()}"
    assert report["header"]["seq"] == 1
    assert report["header"]["count"] == 2
    assert report["header"]["kind"] == "1 (DATA)"


def test_inspect_shows_unverified_header_of_a_tampered_file(pub_a: Path, capsys: object) -> None:
    path = VECTOR_DIR / "tampered" / "payload-bit.mdc"
    assert main(["inspect", str(path), "--key", str(pub_a)]) == 1
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    report = json.loads(captured.out)
    assert report["verdict"] == "does not verify"
    assert report["reason"] == "bad-signature"
    assert "unverified_header" in report
    assert "header" not in report
    assert "does not verify" in captured.err


def test_inspect_every_single_byte_flipped_does_not_verify(tmp_path: Path, pub_a: Path) -> None:
    """Through the real console script, once per byte position of the smallest valid vector."""
    original = (VECTOR_DIR / "valid" / "data-1.mdc").read_bytes()
    flipped_dir = tmp_path / "flipped"
    flipped_dir.mkdir()
    paths = []
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= 0xFF
        path = flipped_dir / f"{position:04d}.mdc"
        path.write_bytes(bytes(data))
        paths.append(path)
    script = (
        "import sys, io, contextlib\n"
        "from maildiode.cli import main\n"
        "key, paths = sys.argv[1], sys.argv[2:]\n"
        "for p in paths:\n"
        "    out, err = io.StringIO(), io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "        code = main(['inspect', p, '--key', key])\n"
        "    ok = code != 0 and 'does not verify' in err.getvalue()\n"
        "    print(p, code, 'OK' if ok else 'FAIL')\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(pub_a), *map(str, paths)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(lines) == len(original)
    assert [line for line in lines if not line.endswith("OK")] == []
    # and the unmodified file verifies through the same console script
    ok = subprocess.run([sys.executable, "-m", "maildiode", "inspect",
                         str(VECTOR_DIR / "valid" / "data-1.mdc"), "--key", str(pub_a)],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_inspect_with_config_uses_its_keys(tmp_path: Path, capsys: object) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    KEY_A.save(keys / "own.key")
    SigningKey.generate().verify_key.save(keys / "peer.pub")
    config = tmp_path / "outer.toml"
    config.write_text('[keys]\nsigning_key = "keys/own.key"\npeer_keys = ["keys/peer.pub"]\n')
    path = VECTOR_DIR / "valid" / "control.mdc"
    assert main(["inspect", str(path), "-c", str(config)]) == 0
    assert main(["inspect", str(VECTOR_DIR / "invalid" / "bad-magic.mdc"), "-c",
                 str(config)]) == 1  # fmt: skip


def test_inspect_without_keys_is_a_usage_error(capsys: object) -> None:
    assert main(["inspect", str(VECTOR_DIR / "valid" / "data-0.mdc")]) == 2


def test_carry_moves_complete_files_and_leaves_others(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a.mdc").write_bytes(b"a" * 1000)
    (src / "sub").mkdir()
    (src / "link").symlink_to(src / "a.mdc")
    assert main(["carry", str(src), str(dst), "--once", "--interval", "0.05"]) == 0
    assert (dst / "a.mdc").read_bytes() == b"a" * 1000
    assert not (src / "a.mdc").exists()
    assert (src / "sub").is_dir()
    assert (src / "link").is_symlink()
    assert sorted(p.name for p in dst.iterdir()) == ["a.mdc"]


def test_carry_leaves_a_file_that_is_still_being_written(tmp_path: Path) -> None:
    from maildiode.trial.carrier import carry_pass, snapshot, staging_for

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "grow.mdc").write_bytes(b"part")
    previous = snapshot(src)
    with (src / "grow.mdc").open("ab") as handle:
        handle.write(b"more")
    carried, previous = carry_pass(src, dst, staging_for(dst), previous)
    assert carried == 0
    assert list(dst.iterdir()) == []
    carried, _ = carry_pass(src, dst, staging_for(dst), previous)
    assert carried == 1
    assert (dst / "grow.mdc").read_bytes() == b"partmore"


def test_carry_runs_until_stopped(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "maildiode", "carry", str(src), str(dst),
                             "--interval", "0.05"])  # fmt: skip
    try:
        (src / "x.mdc").write_bytes(b"x")
        deadline = time.monotonic() + 10
        while not (dst / "x.mdc").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (dst / "x.mdc").read_bytes() == b"x"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def write_outer_config(root: Path) -> Path:
    keys = root / "keys"
    keys.mkdir()
    KEY_A.save(keys / "outer.key")
    KEY_A.verify_key.save(keys / "inner.pub")
    (root / "link" / "in" / "send").mkdir(parents=True)
    (root / "link" / "out" / "recv").mkdir(parents=True)
    config = root / "outer.toml"
    config.write_text(
        '[smtp]\ndomains = ["corp.example"]\n[spool]\ndir = "spool"\n'
        '[link]\nsend_dir = "link/in/send"\nrecv_dir = "link/out/recv"\nchunk_size = 4096\n'
        '[keys]\nsigning_key = "keys/outer.key"\npeer_keys = ["keys/inner.pub"]\n'
    )
    return config


def test_resend_command_republishes_kept_bundles(tmp_path: Path, capsys: object) -> None:
    config = write_outer_config(tmp_path)
    send_dir = tmp_path / "link" / "in" / "send"
    sender = Sender(tmp_path / "spool" / "sender", "inbound", KEY_A,
                    FolderTransport(send_dir), chunk_size=4096)  # fmt: skip
    for n in range(1, 4):
        sender.publish(os.urandom(5000), bytes([n]) * 16)
    sender.close()
    for path in send_dir.iterdir():
        path.unlink()
    assert main(["resend", "-c", str(config), "2", "3"]) == 0
    ring = Keyring([KEY_A.verify_key])
    seqs = sorted(decode_chunk(p.read_bytes(), ring).header.seq for p in send_dir.iterdir())
    assert seqs == [2, 2, 3, 3]
    assert "re-sent 2 of 2" in capsys.readouterr().out  # type: ignore[attr-defined]
    assert main(["resend", "-c", str(config), "7", "8"]) == 1  # never sent
    assert main(["resend", "-c", str(config), "3", "2"]) == 2


def test_inspect_encrypted_vector_verifies_without_decryption_key(
    pub_a: Path, capsys: object
) -> None:
    assert main(["inspect", str(VECTOR_DIR / "valid" / "encrypted.mdc"), "--key", str(pub_a)]) == 0
    report = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert report["prefix"]["encrypted"] is True
    assert report["header"]["kind"] == "1 (DATA)"
    assert "no decryption key" in report["payload"]
