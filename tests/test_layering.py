"""The floors of docs/architecture.md, enforced: who may import whom.

    maildiode (cli, commands, demo, trial)        top: the command line; imports anything below
    outer_agent            inner_agent            the agents: never each other
    agentkit                                      what both agents stand on
    protocol               mailsafe               the floor: import nothing of ours

Every module of every package is read, imports inside functions included, so a package that
reaches upward or sideways anywhere fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"protocol", "mailsafe", "agentkit", "outer_agent", "inner_agent", "maildiode"}
COMMAND_LINE = {"maildiode"}

# package -> packages (or dotted prefixes) of ours it must not import
FORBIDDEN = {
    "protocol": OURS - {"protocol"},
    "mailsafe": OURS - {"mailsafe"},
    "agentkit": {"outer_agent", "inner_agent", *COMMAND_LINE},
    "outer_agent": {"inner_agent", *COMMAND_LINE},
    "inner_agent": {"outer_agent", *COMMAND_LINE},
    # inside the command line: the demo and the trial pieces stand under the commands
    "maildiode.trial": {"maildiode.cli", "maildiode.commands", "maildiode.demo"},
    "maildiode.demo": {"maildiode.cli", "maildiode.commands"},
    "maildiode.commands": {"maildiode.cli"},
    # the tests' own helpers build on the product's trial pieces, not on the demo
    "tests.support": {"maildiode.demo", "maildiode.commands", "maildiode.cli"},
}


def imported_names(path: Path) -> set[str]:
    return {name for name in all_imports(path) if name.split(".")[0] in OURS}


def all_imports(path: Path) -> set[str]:
    """Every absolute import of ``path``: modules, and ``module.name`` for from-imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def relative_imports(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]


def modules_of(package: str) -> list[Path]:
    target = ROOT / package.replace(".", "/")
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    return [target.with_suffix(".py")]


def violates(name: str, forbidden: set[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layers(package: str) -> None:
    modules = modules_of(package)
    assert modules, f"{package} has no modules: the table names a package that moved"
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules
        for name in sorted(imported_names(path))
        if violates(name, FORBIDDEN[package])
    ]
    assert bad == []


def test_every_package_of_ours_has_a_floor() -> None:
    """A new top-level package must be placed in the table, or it escapes every rule."""
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == OURS
    assert {name.split(".")[0] for name in FORBIDDEN} - {"tests"} == OURS


def test_no_relative_imports() -> None:
    """The rules read absolute names; a relative import would slip past them."""
    bad = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in sorted(OURS)
        for path in modules_of(package)
        for line in relative_imports(path)
    ]
    assert bad == []


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from outer_agent.smtp import Handler\nimport inner_agent\n"
        "def later():\n    from maildiode.commands import check\n"
    )
    names = imported_names(sample)
    assert violates("outer_agent.smtp", FORBIDDEN["inner_agent"])
    assert violates("maildiode.commands", FORBIDDEN["agentkit"])
    assert not violates("agentkit.settings", FORBIDDEN["outer_agent"])
    assert names == {
        "outer_agent.smtp",
        "outer_agent.smtp.Handler",
        "inner_agent",
        "maildiode.commands",
        "maildiode.commands.check",
    }


def test_pymupdf_is_imported_only_through_mailsafe_mupdf() -> None:
    """mailsafe.mupdf keeps PyMuPDF 2.0's ML add-ons out of every process (see its docstring);
    a direct ``import pymupdf`` anywhere that runs first would load them again."""
    sources = [p for package in sorted(OURS) for p in modules_of(package)]
    sources += sorted((ROOT / "tests").rglob("*.py"))
    bad = [
        str(path.relative_to(ROOT))
        for path in sources
        if path != ROOT / "mailsafe" / "mupdf.py"
        and any(n.split(".")[0] in ("pymupdf", "fitz") for n in all_imports(path))
    ]
    assert bad == []
