"""What encryption at rest (issue 21.3) and link encryption cost the agents per mail.

Three pairs of agents run side by side on the same machine, each the whole inbound path of
bench_agents.py (outer agent with its render workers, a carrier, inner agent, a private
Postfix as the internal server), from the same ``maildiode init`` layout:

* **clear**: ``[keys] at_rest_key`` commented out and ``[link] encrypt = false`` (as before
  issue 21.3);
* **at rest**: stored mail sealed, the link in clear;
* **both**: what ``maildiode init`` writes now (sealed at rest, link encrypted both ways).

Rounds of ``ROUND_MAILS`` mails (the typical HTML mail of bench_e2e, from smtp-source with 8
sessions) go to each pair in turn, the order rotated each round, so all three see the same
machine; CPU per mail of the outer and inner agents (render workers not counted) is read
from /proc as in bench_agents.py. Medians of the rounds are reported.

Run: ``.venv/bin/python tests/benchmarks/bench_atrest.py`` (as root, Postfix installed).
Writes "## Encryption at rest" of docs/performance.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_agents import WARM_UP_MAILS, Round, agents_round  # noqa: E402
from tests.benchmarks.bench_e2e import RENDER_PROCESSES, html_mail  # noqa: E402
from tests.support.inbound import InboundStack  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

ROUNDS = 6
ROUND_MAILS = 240
VARIANTS = ("clear", "at rest", "both")


def configure(stack: InboundStack, variant: str) -> None:
    """Turn off what ``variant`` leaves off in both configs, before the agents start."""
    for agent in ("outer", "inner"):
        path = stack.root / f"{agent}.toml"
        text = path.read_text(encoding="utf-8")
        if variant == "clear":
            text = text.replace("\nat_rest_key = ", "\n# at_rest_key = ")
        if variant in {"clear", "at rest"}:
            text = text.replace("\nencrypt = true", "\nencrypt = false")
        path.write_text(text, encoding="utf-8")


def measure(stacks: dict[str, InboundStack]) -> dict[str, list[Round]]:
    raw = html_mail(0)
    rounds: dict[str, list[Round]] = {name: [] for name in stacks}
    with tempfile.TemporaryDirectory(prefix="bench-atrest-load-") as name:
        folder = Path(name)
        for stack in stacks.values():
            agents_round(stack, raw, WARM_UP_MAILS, folder)
        for index in range(ROUNDS):
            order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]
            for variant in order:
                rounds[variant].append(agents_round(stacks[variant], raw, ROUND_MAILS, folder))
            print(f"  round {index + 1}: " + "; ".join(
                f"{v} {rounds[v][-1].outer:.2f} + {rounds[v][-1].inner:.2f}" for v in VARIANTS
            ), flush=True)  # fmt: skip
    return rounds


def micro() -> dict[str, float]:
    """Microseconds of the added operations on one 8.4 kB mail, best of five."""
    from protocol.atrest import AtRestKeyring
    from protocol.keys import EncryptionKey
    from protocol.sealing import open_sealed, seal

    keyring, peer, data = AtRestKeyring.generate(), EncryptionKey.generate(), html_mail(0)
    sealed, chunk = keyring.seal(data), seal(data, peer.public_key, EncryptionKey.generate(), b"")
    operations = {
        "at-rest seal": lambda: keyring.seal(data),
        "at-rest open": lambda: keyring.open(sealed, "bench"),
        "link seal (X25519 + HKDF + AES-GCM, one chunk)":
            lambda: seal(data, peer.public_key, EncryptionKey.generate(), b""),
        "link open (one chunk)": lambda: open_sealed(chunk, peer, b""),
    }  # fmt: skip
    return {
        name: min(timeit.repeat(operation, number=500, repeat=5)) / 500 * 1e6
        for name, operation in operations.items()
    }


def report(rounds: dict[str, list[Round]]) -> str:
    def median(variant: str, part: str) -> float:
        return float(statistics.median(getattr(r, part) for r in rounds[variant]))

    lines = [
        "## Encryption at rest",
        "",
        "`tests/benchmarks/bench_atrest.py`: three agent pairs side by side (the inbound path of "
        f"bench_agents.py), {ROUND_MAILS} typical HTML mails (8.4 kB) per round and pair, "
        f"{ROUNDS} rounds in rotated order; CPU ms per mail from /proc, median of the rounds "
        "(render workers not counted).",
        "",
        "| pair | outer agent | inner agent | both agents |",
        "| --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        outer, inner = median(variant, "outer"), median(variant, "inner")
        lines.append(f"| {variant} | {outer:.2f} | {inner:.2f} | {outer + inner:.2f} |")
    lines += ["", "The added operations alone (µs per 8.4 kB mail, best of five):", ""]
    lines += [f"- {name}: {micro_s:.1f}" for name, micro_s in micro().items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-atrest-") as folder:
        stacks = {}
        try:
            for variant in VARIANTS:
                stack = InboundStack(Path(folder) / variant.replace(" ", "-"),
                                     render_processes=RENDER_PROCESSES)  # fmt: skip
                configure(stack, variant)
                stacks[variant] = stack.start()
            rounds = measure(stacks)
        finally:
            for stack in stacks.values():
                stack.stop()
    text = report(rounds)
    print(text)
    replace_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
