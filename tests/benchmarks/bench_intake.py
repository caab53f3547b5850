"""Intake benchmark: mails/s of 10 KB mails from concurrent clients, the outer agent beside
Postfix's own smtpd, both driven by Postfix's ``smtp-source`` in the same run.

Both sides do the same work per mail: take it over SMTP and make it durable before the 250
(our spool: fsync file, rename, fsync folder; Postfix: cleanup fsyncs the queue file). Rendering
is not in the loop (our pipeline is not started) and Postfix puts every mail on hold (no
delivery), so what is compared is intake alone. Each side gets ``ROUNDS`` alternating runs and
the best of each is reported, which cancels most of the noise of a shared machine.

Run: ``.venv/bin/python tests/benchmarks/bench_intake.py`` (as root, with postfix installed).
Writes the figures into the "## Intake" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MAIL_BYTES = 10_240  # the size the issue asks for
SESSIONS = 20  # concurrent smtp-source sessions
MAILS = 2000  # mails per run
ROUNDS = 3  # alternating runs per side; the best counts
DOMAIN = "corp.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(3) == b"220":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on port {port}")


def smtp_source(port: int, mails: int = MAILS, sessions: int = SESSIONS) -> float:
    """Run smtp-source; return mails per second (wall clock of the whole run)."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            "smtp-source",
            "-s",
            str(sessions),
            "-m",
            str(mails),
            "-l",
            str(MAIL_BYTES),
            "-f",
            "a@ext.example",
            "-t",
            f"u@{DOMAIN}",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr.strip()}")
    return mails / elapsed


# ------------------------------------------------------------------------------------ ours


OUR_INTAKE = """
import asyncio, sys
from pathlib import Path
from outer_agent.smtp import IntakeHandler, IntakeLimits, IntakeServer, SpoolCommitter
from outer_agent.spool import Spool

async def main(port, root):
    spool = Spool(Path(root))
    committer = SpoolCommitter(spool)
    limits = IntakeLimits(frozenset({"corp.example"}), 26214400, 100, 1000, 1000)
    server = IntakeServer(IntakeHandler(limits, spool, committer), host="127.0.0.1", port=port,
                          hostname="bench.outer")
    await server.start()
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


@contextmanager
def our_agent(workdir: Path):
    port = free_port()
    spool = workdir / "spool"
    proc = subprocess.Popen([sys.executable, "-c", OUR_INTAKE, str(port), str(spool)], cwd=ROOT)
    try:
        wait_port(port)
        yield port, spool
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def count_spooled(spool: Path) -> int:
    from outer_agent.spool import decode_segment

    segments = (spool / "incoming").iterdir()
    return sum(len(decode_segment(p.read_bytes(), p.name)) for p in segments)


# ------------------------------------------------------------------------------------ postfix


def _postfix_starter():
    """tests/support/postfix.py when it exists; else the minimal starter below."""
    try:
        from tests.support.postfix import PostfixInstance  # type: ignore[import-not-found]
    except ImportError:
        return None
    return PostfixInstance


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
myhostname = bench.postfix
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = static:{domain}/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_mailbox_limit = 0
message_size_limit = 26214400
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# intake only, like our side: every accepted mail goes to the hold queue, nothing is delivered
smtpd_recipient_restrictions = check_client_access static:HOLD
maillog_file = {d}/postfix.log
maillog_file_prefixes = /var, /dev/stdout, {d}
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
anvil_rate_time_unit = 60s
"""


@contextmanager
def minimal_postfix(workdir: Path):
    """A private Postfix on loopback (see /work/shared/notes/postfix-on-loopback.md)."""
    d = workdir / "postfix"
    etc = d / "etc"
    etc.mkdir(parents=True)
    workdir.chmod(0o755)  # Postfix's unprivileged daemons must reach their folders
    d.chmod(0o755)
    for sub in ("queue", "data", "mail"):
        (d / sub).mkdir()
    shutil.chown(d / "data", "postfix", "postfix")
    shutil.chown(d / "mail", "nobody", "nogroup")
    port = free_port()
    (etc / "main.cf").write_text(MAIN_CF.format(d=d, domain=DOMAIN))
    master = Path("/etc/postfix/master.cf").read_text()
    master = re.sub(r"^smtp\s+inet.*$", lambda m: "#" + m.group(0), master, flags=re.M)
    master += f"\n127.0.0.1:{port} inet n - n - - smtpd\n"
    (etc / "master.cf").write_text(master)
    current = subprocess.run(
        ["postconf", "-h", "alternate_config_directories"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if str(etc) not in current:
        value = f"{current}, {etc}" if current else str(etc)
        subprocess.run(["postconf", "-e", f"alternate_config_directories = {value}"], check=True)
    try:
        subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True)
        wait_port(port)
        yield port, d
    finally:
        subprocess.run(["postfix", "-c", str(etc), "stop"], capture_output=True)
        _forget_config_dir(etc)


def _forget_config_dir(etc: Path) -> None:
    current = subprocess.run(
        ["postconf", "-h", "alternate_config_directories"], capture_output=True, text=True
    ).stdout
    kept = [p.strip() for p in current.split(",") if p.strip() and p.strip() != str(etc)]
    subprocess.run(["postconf", "-e", f"alternate_config_directories = {', '.join(kept)}"])


@contextmanager
def postfix(workdir: Path):
    starter = _postfix_starter()
    if starter is None:
        with minimal_postfix(workdir) as (port, d):
            yield port, lambda: _count_queue(d / "queue")
        return
    instance = starter(workdir / "postfix", domain=DOMAIN, hold=True)
    with instance:
        yield instance.port, lambda: _count_queue(Path(instance.queue_dir))


def _count_queue(queue: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(queue / "hold"))


# ------------------------------------------------------------------------------------ run


def measure(rounds: int, mails: int) -> dict[str, float]:
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory(
        dir=ROOT.parent if os.access(ROOT.parent, os.W_OK) else None
    ) as tmp:
        work = Path(tmp)
        with our_agent(work) as (our_port, spool), postfix(work) as (pf_port, pf_count):
            smtp_source(our_port, 200)  # warm-up both
            smtp_source(pf_port, 200)
            for _ in range(rounds):
                ours.append(smtp_source(our_port, mails))
                theirs.append(smtp_source(pf_port, mails))
            spooled = count_spooled(spool)
            held = _settle(pf_count, 200 + rounds * mails)
    return {
        "ours": max(ours),
        "postfix": max(theirs),
        "ours_all": ours,
        "postfix_all": theirs,
        "spooled": spooled,
        "held": held,
        "expected": 200 + rounds * mails,
    }


def _settle(count, expected: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    found = count()
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        found = count()
    return found


def write_doc(result: dict) -> None:
    doc = ROOT / "docs" / "performance.md"
    ratio = result["ours"] / result["postfix"]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"""## Intake

`tests/benchmarks/bench_intake.py` ({stamp}): {MAILS} mails of {MAIL_BYTES // 1024} KB per run from
{SESSIONS} concurrent `smtp-source` sessions, {ROUNDS} alternating runs per side, best run counts.
Both sides make each mail durable before the 250 (ours: file fsync, rename, folder fsync with
group commit; Postfix: cleanup fsyncs the queue file) and neither delivers or renders during
the run (Postfix holds every mail; our pipeline is not started).

| side | mails/s (best) | all runs | ratio |
| --- | --- | --- | --- |
| outer agent intake | {result["ours"]:.0f} | {", ".join(f"{v:.0f}" for v in result["ours_all"])} | {ratio:.2f} |
| Postfix 3.7 smtpd (ceiling/peer) | {result["postfix"]:.0f} | {", ".join(f"{v:.0f}" for v in result["postfix_all"])} | 1.00 |

Target: at least 0.90 of Postfix in the same run. Mails stored: ours {result["spooled"]} of
{result["expected"]}, Postfix {result["held"]} of {result["expected"]}.
"""
    text = doc.read_text() if doc.exists() else "# Performance\n"
    pattern = re.compile(r"^## Intake\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    doc.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--mails", type=int, default=MAILS)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    result = measure(args.rounds, args.mails)
    ratio = result["ours"] / result["postfix"]
    print(f"outer agent intake: {result['ours']:8.0f} mails/s  (runs {result['ours_all']})")
    print(f"postfix smtpd:      {result['postfix']:8.0f} mails/s  (runs {result['postfix_all']})")
    print(f"ratio ours/postfix: {ratio:8.2f}  (target >= 0.90)")
    print(
        f"stored: ours {result['spooled']}/{result['expected']}, postfix {result['held']}/{result['expected']}"
    )
    if not args.no_doc:
        write_doc(result)
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
