"""The README's "trial with your own mail server" block, run as written against a real Postfix.

Only the four values the README tells the reader to set are replaced (the trial folder, the
domain, the mail server's address, the outer agent's port); every other line runs verbatim in
bash, agents and carriers in the background as the block starts them. Passing means a newcomer
who copies the block gets the notification in their mailbox.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.support.postfix import PostfixInstance, free_port

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### A trial with your own mail server"
VALUES = ("TRIAL", "DOMAIN", "MAILSERVER", "SMTP_PORT")
DELIVERY_TIMEOUT_S = 90.0


def trial_block(readme: str) -> str:
    """The first ```sh block after the trial heading."""
    section = readme[readme.index(HEADING) :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README's trial section has no sh block"
    return match.group(1)


def with_values(block: str, values: dict[str, str]) -> str:
    """``block`` with the reader's own values on the lines that set them, nothing else."""
    lines = block.splitlines()
    for name, value in values.items():
        setting = [i for i, line in enumerate(lines) if line.startswith(f"{name}=")]
        assert len(setting) == 1, f"the README block must set {name} once, at the top"
        lines[setting[0]] = f"{name}={value}"
    return "\n".join(lines) + "\n"


def test_the_block_sets_exactly_the_values_the_readme_names() -> None:
    block = trial_block(README.read_text(encoding="utf-8"))
    assigned = [line.split("=", 1)[0] for line in block.splitlines() if re.match(r"^\w+=", line)]
    assert assigned == list(VALUES)


def _notification(postfix: PostfixInstance, deadline: float) -> EmailMessage | None:
    """The inner agent's notification of the block's mail, once Postfix has delivered it."""
    while time.monotonic() < deadline:
        for path in postfix.messages():
            mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if "first trial" in str(mail["Subject"]):
                assert isinstance(mail, EmailMessage)
                return mail
        time.sleep(0.5)
    return None


def test_following_the_readme_trial_delivers_the_mail(tmp_path: Path) -> None:
    domain = "trial.example"
    with PostfixInstance(domain=domain) as postfix:
        script = with_values(
            trial_block(README.read_text(encoding="utf-8")),
            {
                "TRIAL": str(tmp_path / "trial"),
                "DOMAIN": domain,
                "MAILSERVER": f"127.0.0.1:{postfix.port}",
                "SMTP_PORT": str(free_port()),
            },
        )
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        log = tmp_path / "trial.log"
        with log.open("wb") as out:
            shell = subprocess.Popen(
                ["bash", "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                assert shell.wait(timeout=120) == 0, log.read_text(errors="replace")
                mail = _notification(postfix, time.monotonic() + DELIVERY_TIMEOUT_S)
            finally:  # the agents and carriers the block left running in the background
                os.killpg(shell.pid, signal.SIGTERM)
        output = log.read_text(errors="replace")
        assert mail is not None, f"nothing delivered; the trial printed:\n{output[-3000:]}"
        assert mail["To"] == f"staff@{domain}"
        assert any(part.get_content_type() == "image/png" for part in mail.walk())
        assert "next steps:" in output  # init's own guide, with the carrying step
        assert "maildiode carry" in output
