"""Protocol throughput through the folder transport, beside its ceiling, in the same run.

    .venv/bin/python tests/benchmarks/bench_protocol.py [--mib N] [--rounds R] [--no-write]

For 64 KiB and 1 MiB chunks it measures:

* ceiling: plain write + fsync + rename of the same bytes, one file per chunk;
* publish+sign: ``Sender.publish`` (seq commit, Ed25519 per chunk, staging write, fsync,
  kept-copy hard link, rename, folder fsync per bundle);
* verify+reassemble: ``LinkReader.poll`` (claim by rename, read, verify, hold in SQLite,
  reassemble from the chunk files, SHA-256, mark done with a full sync, delete).

Rounds alternate ceiling / publish / receive and the median of each is reported, as MiB/s
and as a ratio of the ceiling. The figures are written into the "## Protocol" section of
docs/performance.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from protocol import (  # noqa: E402
    FolderIntake,
    FolderTransport,
    Keyring,
    LinkReader,
    ReceivedBundle,
    Receiver,
    Sender,
    SigningKey,
)
from tests.support.perfdoc import replace_section  # noqa: E402

BUNDLE_BYTES = 8 << 20  # 8 MiB bundles: a large rendered mail
TARGET_RATIO = 0.70  # "done" threshold of the issue: 70 % of the ceiling at 1 MiB chunks
MiB = 1 << 20


def ceiling(folder: Path, payloads: list[bytes]) -> float:
    """Seconds to write + fsync + rename each payload as its own file."""
    staging, target = folder / "staging", folder / "target"
    staging.mkdir()
    target.mkdir()
    start = time.perf_counter()
    for i, data in enumerate(payloads):
        tmp = staging / f"{i:08d}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target / tmp.name)
    return time.perf_counter() - start


def publish(folder: Path, key: SigningKey, bundles: list[bytes], chunk_size: int) -> float:
    transport = FolderTransport(folder / "send")
    sender = Sender(folder / "sender", "inbound", key, transport, chunk_size=chunk_size)
    start = time.perf_counter()
    for n, bundle in enumerate(bundles):
        sender.publish(bundle, n.to_bytes(16, "big"))
    elapsed = time.perf_counter() - start
    sender.close()
    return elapsed


def receive(folder: Path, key: SigningKey, expected: int) -> float:
    os.rename(folder / "send", folder / "recv")
    intake = FolderIntake(folder / "recv", folder / "work", folder / "q", settle_s=0, watch=False)
    receiver = Receiver(folder / "receiver", "inbound", Keyring([key.verify_key]))
    reader = LinkReader(intake, receiver)
    got: list[int] = []

    def handler(bundle: ReceivedBundle) -> None:
        got.append(len(bundle.data))

    start = time.perf_counter()
    for _ in range(1000):  # a poll claims at most 1000 files
        if len(got) == expected:
            break
        reader.poll(handler)
    else:
        raise RuntimeError(f"only {len(got)} of {expected} bundles arrived")
    elapsed = time.perf_counter() - start
    reader.close()
    return elapsed


def slices(bundles: list[bytes], chunk_size: int) -> list[bytes]:
    return [b[i : i + chunk_size] for b in bundles for i in range(0, len(b), chunk_size)]


def measure(base: Path, chunk_size: int, total: int, rounds: int) -> dict[str, float]:
    """Paired rounds: ceiling, publish, receive, ceiling again. Each round's ratios use the mean
    of its two ceilings (the shared disk drifts within seconds); medians over the rounds."""
    key = SigningKey.generate()
    bundles = [os.urandom(BUNDLE_BYTES) for _ in range(max(1, total // BUNDLE_BYTES))]
    payloads = slices(bundles, chunk_size)
    size = sum(map(len, bundles)) / MiB
    rates: dict[str, list[float]] = {"ceiling": [], "publish": [], "receive": []}
    ratios: dict[str, list[float]] = {"publish": [], "receive": []}
    for r in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix=f"r{r}-", dir=base))
        (folder / "c1").mkdir()
        (folder / "c2").mkdir()
        before = ceiling(folder / "c1", payloads)
        published = publish(folder / "p", key, bundles, chunk_size)
        received = receive(folder / "p", key, len(bundles))
        after = ceiling(folder / "c2", payloads)
        shutil.rmtree(folder)
        ceiling_rate = size / ((before + after) / 2)
        rates["ceiling"].append(ceiling_rate)
        rates["publish"].append(size / published)
        rates["receive"].append(size / received)
        ratios["publish"].append(size / published / ceiling_rate)
        ratios["receive"].append(size / received / ceiling_rate)
    figures = {name: statistics.median(values) for name, values in rates.items()}
    figures |= {f"{name}_ratio": statistics.median(values) for name, values in ratios.items()}
    return figures


def report(results: dict[int, dict[str, float]], total_mib: int, rounds: int) -> str:
    lines = [
        f"`tests/benchmarks/bench_protocol.py`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores (shared). {total_mib} MiB in 8 MiB bundles per measurement, "
        f"rounds of ceiling, publish, receive, ceiling again; ratios against the mean of each "
        f"round's two ceilings, medians of {rounds} rounds (64 KiB) and {rounds + 2} (1 MiB); "
        "files on the disk of the repository.",
        "",
        "| chunk size | ceiling: write+fsync+rename | publish+sign | ratio | "
        "verify+reassemble | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for chunk_size, figures in results.items():
        ceil = figures["ceiling"]
        lines.append(
            f"| {chunk_size // 1024} KiB | {ceil:.0f} MiB/s | {figures['publish']:.0f} MiB/s | "
            f"{figures['publish_ratio']:.0%} | {figures['receive']:.0f} MiB/s | "
            f"{figures['receive_ratio']:.0%} |"
        )
    lines += [
        "",
        "The ceiling writes the same bytes, one file per chunk, with the same fsync discipline "
        "but no signing, no state and no verification. Target: at least "
        f"{TARGET_RATIO:.0%} of the ceiling at 1 MiB chunks in both directions.",
        "",
        "How publishing keeps up: four writer threads take chunks in turn; each writes its "
        "chunk's payload at its final offset while the bundle's SHA-256 is still being computed "
        "(hashing releases the interpreter lock), then adds prefix, header and signature, "
        "fsyncs and renames; the signature covers SHA-256 of the payload, so signing is a "
        "hash plus a short Ed25519 call; the seq commit's WAL fsync runs beside the bundle "
        "hash; the folder is fsynced once per bundle; kept copies for resends are hard links, "
        "not second writes. With several fsyncs in flight, small chunks can beat the sequential "
        "ceiling. Bundles up to 1 MiB (a rendered mail is typically ~100 KB) skip the helpers: "
        "they are hashed and their seq committed on the publishing thread, and a single chunk "
        "is written without the writer pool, because for them the thread hand-offs cost more "
        "CPU than they overlap (this measurement uses 8 MiB bundles, which take the overlapped "
        "path).",
        "",
        "Why receiving is faster than the ceiling: it writes no data. Claiming is a rename, each "
        "chunk is verified once (SHA-256 in place + one Ed25519 verify), held chunks are "
        "recorded with `synchronous=NORMAL` (files claimed but not recorded are re-verified at "
        "start), and the only full sync is marking a bundle done; storing the bundle durably is "
        "the handler's job.",
        "",
        "The shared disk of the development machine is noisy: the ceiling at 1 MiB chunks "
        "varied from about 70 to 800 MiB/s between runs of the same day, hence the paired "
        "rounds. On 2026-11-23, with fsync reaching the disk (ceiling ~100-250 MiB/s), "
        "publishing at 1 MiB chunks measured 60%, 91% and 101% of the ceiling in three bench "
        "runs (an earlier two-writer version: 58-79%). When fsync is nearly free (the host's write cache "
        "absorbs it, ceiling above ~500 MiB/s) publishing becomes bound by the CPU cost of "
        "hashing every byte twice (the bundle's SHA-256, then each chunk's for its signature) "
        "on two shared cores, and the two-writer version measured 40-50% in such runs. "
        "Runs with fsync nearly free measured 68-75% publishing and 63-89% receiving at 1 MiB "
        "chunks (ceilings 543-832 MiB/s): both directions hash every byte twice (the chunk's "
        "SHA-256 for its signature, the bundle's SHA-256 for the reassembly check), and when "
        "fsync costs nothing that CPU (about 1.1 ms per MiB of 2 ms) is what separates them "
        "from the ceiling. Verifying in two threads and keeping payloads in memory to skip the "
        "second read were tried and measured: more CPU (2.5 against 2.0 ms per MiB) for no "
        "faster receiving, so they were not kept. Removing one pass needs a format change (a "
        "bundle hash over the chunk hashes), which is for a protocol version 2.",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    replace_section(f"## Protocol\n\n{text}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB per measurement (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per chunk size (default 3)")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    options = parser.parse_args()
    base = ROOT / "bench-out"
    base.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="protocol-", dir=base))
    results: dict[int, dict[str, float]] = {}
    try:
        for chunk_size in (64 * 1024, 1 << 20):
            rounds = options.rounds if chunk_size < MiB else options.rounds + 2
            results[chunk_size] = measure(work, chunk_size, options.mib * MiB, rounds)
            figures = results[chunk_size]
            print(
                f"chunk {chunk_size // 1024:5d} KiB: ceiling {figures['ceiling']:7.1f} MiB/s | "
                f"publish+sign {figures['publish']:7.1f} MiB/s "
                f"({figures['publish_ratio']:.0%}) | "
                f"verify+reassemble {figures['receive']:7.1f} MiB/s "
                f"({figures['receive_ratio']:.0%})",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results, options.mib, options.rounds)
    if not options.no_write:
        write_section(text)
    one_mib = results[1 << 20]
    met = min(one_mib["publish_ratio"], one_mib["receive_ratio"]) >= TARGET_RATIO
    print(f"1 MiB chunks at >= {TARGET_RATIO:.0%} of the ceiling in both directions: "
          f"{'yes' if met else 'NO'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
