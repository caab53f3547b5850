"""The layering of PRODUCT.md, enforced: who may import whom.

protocol imports none of ours; mailsafe imports none of ours; the two agents never import each
other, nor the command line; the shared parts of maildiode import no agent.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"protocol", "mailsafe", "outer_agent", "inner_agent", "maildiode"}

# package -> top-level packages (or dotted prefixes) of ours it must not import
FORBIDDEN = {
    "protocol": {"mailsafe", "outer_agent", "inner_agent", "maildiode"},
    "mailsafe": {"protocol", "outer_agent", "inner_agent", "maildiode"},
    "outer_agent": {"inner_agent", "maildiode.cli", "maildiode.commands", "maildiode.demo"},
    "inner_agent": {"outer_agent", "maildiode.cli", "maildiode.commands", "maildiode.demo"},
    "maildiode.settings": {"outer_agent", "inner_agent", "mailsafe", "protocol"},
    "maildiode.audit": {"outer_agent", "inner_agent", "mailsafe", "protocol"},
    "maildiode.logs": {"outer_agent", "inner_agent", "mailsafe", "protocol"},
    "maildiode.links": {"outer_agent", "inner_agent", "mailsafe"},
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


def modules_of(package: str) -> list[Path]:
    target = ROOT / package.replace(".", "/")
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    return [target.with_suffix(".py")]


def violates(name: str, forbidden: set[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layers(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules_of(package)
        for name in sorted(imported_names(path))
        if violates(name, FORBIDDEN[package])
    ]
    assert bad == []


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from outer_agent.smtp import Handler\nimport inner_agent\n")
    names = imported_names(sample)
    assert violates("outer_agent.smtp", FORBIDDEN["inner_agent"])
    assert names == {"outer_agent.smtp", "outer_agent.smtp.Handler", "inner_agent"}


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
