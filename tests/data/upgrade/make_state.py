"""Make the upgrade test's fixture: state written by the previous release (issue 22.6).

    .venv/bin/python tests/data/upgrade/make_state.py [COMMIT]

1. checks out COMMIT (default 88ef688, main before session 26) into a temporary git worktree;
2. runs ``old_release_run.py`` there with that checkout first on ``sys.path`` (the agents it
   starts inherit it, so every process runs the old code): both agents, Postfix, mail
   delivered and held in each direction, then a clean stop;
3. packs the trial folder (configs, test keys, both agents' state and the link folders; no
   logs, no mailboxes) into ``state-COMMIT.tar.xz`` beside this file;
4. removes the worktree.

The fixture is small (a few mails of a few lines) and holds only made-up test data and keys
made for it. Needs Postfix (as the end-to-end tests do) and this project's virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
RELEASE = "88ef688"
SKIPPED_SUFFIXES = (".log",)


def main(commit: str = RELEASE) -> Path:
    work = Path(tempfile.mkdtemp(prefix="maildiode-upgrade-"))
    checkout = work / "release"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(checkout), commit],
                   check=True)  # fmt: skip
    try:
        root = work / "state" / "trial"
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        subprocess.run([sys.executable, str(HERE / "old_release_run.py"), str(root)],
                       cwd=checkout, env=env, check=True, timeout=900)  # fmt: skip
        return pack(root, HERE / f"state-{commit}.tar.xz")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(checkout)],
                       check=False)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


def pack(root: Path, target: Path) -> Path:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if info.name.endswith(SKIPPED_SUFFIXES):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(target, "w:xz") as tar:
        tar.add(root, arcname="trial", filter=keep)
    return target


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
