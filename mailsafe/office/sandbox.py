"""The command line of the converter's sandbox: bubblewrap around Debian's python3 and
LibreOffice, with no network and nothing of ours but the child script.

Why bubblewrap and not ``unshare -n``: ``unshare`` needs root (CI is root, a production agent
should not be), gives only the network namespace, and leaves the whole file system visible.
bubblewrap builds the namespaces and a file system of bind mounts in one step, for root and,
where user namespaces are allowed, for an unprivileged agent. docs/rendering.md has the
threat model.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = ["BWRAP", "CHILD_IN_SANDBOX", "PYTHON", "SOFFICE", "missing_tools", "sandbox_command"]

BWRAP: Final = "/usr/bin/bwrap"
# Debian's python3: the only interpreter with LibreOffice's uno module (python3-uno).
PYTHON: Final = "/usr/bin/python3"
SOFFICE: Final = "/usr/lib/libreoffice/program/soffice.bin"
UNO_MODULE: Final = "/usr/lib/python3/dist-packages/uno.py"
# Where the child script appears inside the sandbox.
CHILD_IN_SANDBOX: Final = "/opt/maildiode/sandbox_child.py"


def child_script() -> Path:
    return Path(str(resources.files("mailsafe.office") / "sandbox_child.py"))


def missing_tools() -> list[str]:
    """The programs the sandboxed converter needs that are not installed (``make deps``)."""
    return [path for path in (BWRAP, PYTHON, SOFFICE, UNO_MODULE) if not os.path.exists(path)]


def sandbox_command(cpu_seconds: int) -> list[str]:
    """bwrap's arguments, each flag with its reason, then the child's command."""
    return [
        BWRAP,
        # New namespaces of every kind: network (only a loopback of its own, so a document's
        # remote image, linked object or external data reaches nothing, not even our own
        # loopback services), PID (LibreOffice cannot see or signal our processes, and dies
        # with the sandbox's first process), IPC, UTS, cgroup, and user where allowed.
        "--unshare-all",
        # The sandbox dies when the render worker that started it dies (killed on a limit).
        "--die-with-parent",
        # A new session: no terminal to push keystrokes into (TIOCSTI).
        "--new-session",
        # No capabilities inside, even when the agent runs as root.
        "--cap-drop", "ALL",
        # Programs and libraries read-only; /bin, /lib... are symlinks into /usr on Debian.
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/sbin", "/sbin",
        # Font configuration, and LibreOffice's registry (its program dir links there).
        "--ro-bind", "/etc/fonts", "/etc/fonts",
        "--ro-bind", "/etc/libreoffice", "/etc/libreoffice",
        # A private /proc and a minimal /dev (null, zero, random, tty...).
        "--proc", "/proc",
        "--dev", "/dev",
        # The only writable place: the empty profile and the document being converted; gone
        # when the sandbox ends. Nothing else of the host (spool, keys, home) is visible.
        "--tmpfs", "/tmp",  # noqa: S108 - a tmpfs of the sandbox's own, not the host's /tmp
        "--ro-bind", str(child_script()), CHILD_IN_SANDBOX,
        # A clean environment: nothing of the agent's (paths, tokens) leaks in.
        "--clearenv",
        "--setenv", "HOME", "/tmp",  # noqa: S108 - the sandbox's own tmpfs
        "--setenv", "PATH", "/usr/bin",
        "--setenv", "LANG", "C.UTF-8",
        # Address space by the document, not by the host's CPUs: glibc reserves 64 MiB of
        # address space per malloc arena, up to 8 per CPU, and LibreOffice sizes its thread
        # pool by the CPUs. Near the sandbox's RLIMIT_AS, LibreOffice leaves out what it could
        # not allocate (a Hangul font: a document's Korean words missing from the PDF, no
        # error); measured on 2 CPUs, a warm converter's peak fell from 1008 to 490 MiB.
        "--setenv", "MALLOC_ARENA_MAX", "2",
        "--setenv", "MAX_CONCURRENCY", "2",
        "--setenv", "MAILDIODE_OFFICE_CPU_SECONDS", str(cpu_seconds),
        "--",
        PYTHON, "-I", CHILD_IN_SANDBOX,
    ]  # fmt: skip
